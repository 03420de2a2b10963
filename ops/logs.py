"""Structured logs: one JSON object a line when `[log] json = true`, plain text otherwise, in the
service and in the crawl children alike.

Every record carries what it is about when that is known: `job` (the scheduler job id), `marketplace`
and `listing` (the listing key, "shopee:2301467"). They come from three places, most specific first:
`extra={"listing": ...}` on the logging call, a `log_context(...)` block around the work (context
variables, so each scheduler thread has its own), and the process (a crawl child knows its marketplace
and job from its command line).

    {"ts": "2026-11-24T03:00:00.123+00:00", "level": "INFO", "logger": "ops.jobs", "msg": "job crawl:shopee ok",
     "job": "crawl:shopee", "marketplace": "shopee", "component": "service", "pid": 4242}
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CONTEXT_FIELDS = ("job", "marketplace", "listing", "run")
_ctx: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("tiswatch_log_context", default=None)
_process: dict[str, Any] = {}
# attributes every LogRecord has; anything else on a record came from `extra=` and is kept
_STD = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "color_message"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Records logged inside the block (in this thread or task) carry these fields."""
    token = _ctx.set({**(_ctx.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _ctx.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_ctx.get() or {})


def _enrich(record: logging.LogRecord) -> None:
    """Put the process fields and the current context on a record (never over `extra=` fields)."""
    for src in (_ctx.get() or {}, _process):
        for k, v in src.items():
            if not hasattr(record, k):
                setattr(record, k, v)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        _enrich(record)
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "msg": record.getMessage(), "pid": record.process,
        }
        for k, v in vars(record).items():
            if k not in _STD and not k.startswith("_") and k not in out:
                out[k] = v if isinstance(v, str | int | float | bool | type(None)) else str(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger: message [job=… marketplace=… listing=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        _enrich(record)
        line = super().format(record)
        tags = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if getattr(record, k, None))
        return f"{line} [{tags}]" if tags else line


def formatter(json_logs: bool) -> logging.Formatter:
    return JsonFormatter() if json_logs else TextFormatter()


def setup_logging(settings: Any, process: str = "service", stream: Any = None) -> None:
    """Logging of the service (`tiswatch run`, `tiswatch jobs run`): standard error (the journal under
    systemd) and, when `[log] file` is set, that file too."""
    _process.clear()
    _process.update({"component": process})
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_tiswatch", False):
            root.removeHandler(h)
            h.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    if settings.log.file:
        path = Path(settings.log.file)
        if not path.is_absolute():
            path = settings.home / path
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    for h in handlers:
        h._tiswatch = True  # type: ignore[attr-defined]
        h.setFormatter(formatter(settings.log.json_))
        root.addHandler(h)
    root.setLevel(settings.log.level)
    for noisy in ("apscheduler.executors", "apscheduler.scheduler", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger(noisy).level))


def configure_crawl_logging(settings: Any, marketplace: str, job: str = "") -> None:
    """In a crawl child, once Scrapy has (re)installed its root handler for the crawler (the crawl log
    file; call it after `CrawlerProcess.crawl`): the same format as the service, and every record
    carries the marketplace and the job."""
    _process.clear()
    _process.update({"component": "crawl", "marketplace": marketplace})
    if job:
        _process["job"] = job
    fmt = formatter(settings.log.json_)
    for h in logging.getLogger().handlers:
        h.setFormatter(fmt)
