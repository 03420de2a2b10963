"""What every spider, middleware and pipeline of one crawl process shares: tiswatch settings, the
registry (loaded once), the listing store, the evidence writer, the event log, the durable frontier
and the crawl status file. Built lazily, once per crawler.

home/crawl/status.json holds the last known state of each marketplace's crawl (read by the review
app and `tiswatch crawl`); the fields are documented in README.md ("Crawl status and reports").
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from settings import Settings, load_settings

_LOCK = threading.Lock()


@dataclass
class CrawlContext:
    settings: Settings
    marketplace: str
    fresh: bool = False
    revisit: bool = False
    seen: set[str] = field(default_factory=set)
    blocked: dict[str, Any] | None = None
    complete: bool = True  # False when a page failed or a block stopped the crawl
    consecutive_429: int = 0  # pages given up on with HTTP 429 since the last good answer
    _registry: Any = None
    _store: Any = None
    _evidence: Any = None
    _events: Any = None
    _frontier: Any = None
    tracker: Any = None  # crawlers.frontier.Tracker, set when the spider opens
    _batch: Any = None  # crawlers.batch.WriteBatch ([crawl] store_batch), started by the store pipeline
    # or crawlers.storeworker.RemoteBatch ([crawl] store_worker): the worker's config file and log
    config_path: str | None = None
    log_file: str | None = None
    _store_view: Any = None  # (batch, store, the store as the crawl sees it in that batch)

    @property
    def registry(self):
        if self._registry is None:
            from registry.catalogue import load_catalogue
            from registry.index import Registry
            from registry.store import RegistryStore

            rs = RegistryStore(self.settings.registry_db)
            try:
                self._registry = Registry.from_store(rs, load_catalogue(self.settings.catalogue_path))
            finally:
                rs.close()
        return self._registry

    @property
    def store(self):
        if self._store is None:
            from listings.store import open_store

            self._store = open_store(self.settings)
        batch = self.batch
        if batch is not None:
            view = self._store_view  # the wrapper, made once per store and batch (asked several times a listing)
            if view is None or view[0] is not batch or view[1] is not self._store:
                if getattr(batch, "remote", False):
                    from crawlers.storeworker import RemoteStore

                    wrapper: Any = RemoteStore(self._store, batch)
                else:
                    from crawlers.batch import BatchedStore

                    wrapper = BatchedStore(self._store, batch)
                view = self._store_view = (batch, self._store, wrapper)
            return view[2]
        return self._store

    @property
    def batch(self):
        """The crawl's batched writes (crawlers/batch.py), or None ([crawl] store_batch <= 1, or a
        store without batches). The store pipeline starts it; until then writes go through at once."""
        if self._batch is None and self.settings.crawl.store_batch > 1:
            if self._store is None:
                from listings.store import open_store

                self._store = open_store(self.settings)
            c = self.settings.crawl
            from crawlers.storeworker import wanted

            if hasattr(self._store, "begin_batch") and wanted(c):
                from crawlers.storeworker import RemoteBatch

                self._batch = RemoteBatch(str(self.settings.home), self.config_path, self.marketplace,
                                          lambda: self.tracker, c.store_batch, c.store_batch_seconds,
                                          lambda: self.frontier.run.resumed, self.log_file, self.settings.log.level)
            elif hasattr(self._store, "begin_batch"):
                from crawlers.batch import WriteBatch

                if self._events is None:
                    from listings.events import open_events

                    self._events = open_events(self.settings)
                self._batch = WriteBatch(self._store, self._events, lambda: self.tracker, c.store_batch,
                                         c.store_batch_seconds)
        return self._batch

    @property
    def evidence(self):
        if self._evidence is None:
            from listings.evidence import EvidenceWriter

            self._evidence = EvidenceWriter(self.settings.evidence_dir)
        return self._evidence

    @property
    def events(self):
        batch = self.batch
        if batch is not None and getattr(batch, "remote", False):
            from crawlers.storeworker import RemoteEvents

            return RemoteEvents(batch)
        if self._events is None:
            from listings.events import open_events

            self._events = open_events(self.settings)
        if batch is not None:
            from crawlers.batch import BatchedEvents

            return BatchedEvents(self._events, batch)
        return self._events

    @property
    def frontier(self):
        """The durable frontier of this marketplace, with its open run (resumed or new)."""
        if self._frontier is None:
            from crawlers.frontier import Frontier

            # a revisit job (the scheduler's) keeps a frontier of its own: it never resumes a regular
            # crawl's run, nor leaves one behind for it
            name = "frontier-revisit.sqlite" if self.revisit else "frontier.sqlite"
            self._frontier = Frontier(self.crawl_dir / name)
            self._frontier.open_run(fresh=self.fresh or self.revisit)
        return self._frontier

    def tracker_for(self, crawler):
        """The frontier tracker of this crawl (crawlers/frontier.py), made on first use."""
        if self.tracker is None:
            from crawlers.frontier import Tracker, request_dict

            spider = crawler.spider
            self.tracker = Tracker(self.frontier, crawler.request_fingerprinter.fingerprint,
                                   lambda r: request_dict(r, spider))
            if self._batch is not None and self._batch.active:
                self.tracker.hold()  # pages are done on disk once the batch holding their listings is
        return self.tracker

    @property
    def started(self) -> datetime:
        """When this run began (an earlier, interrupted crawl's start when it is resumed)."""
        return self.frontier.run.started

    @property
    def crawl_dir(self) -> Path:
        d = self.settings.crawl_dir / self.marketplace
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def policy(self):
        from crawlers.incremental import RefetchPolicy

        return RefetchPolicy.from_settings(self.settings.crawl)

    def write_status(self, state: str, **extra: Any) -> None:
        write_status(self.settings.home, self.marketplace, state, **extra)

    def close(self) -> None:
        if self._batch is not None:
            self._batch.stop()
            if hasattr(self._batch, "close"):
                self._batch.close()  # the store worker
        for x in (self._store, self._events, self._frontier):
            if x is not None:
                x.close()


def context_for(crawler, marketplace: str | None = None) -> CrawlContext:
    ctx = getattr(crawler, "tiswatch", None)
    if ctx is None:
        home = crawler.settings.get("TISWATCH_HOME") or os.environ.get("TISWATCH_HOME")
        ts = load_settings(config=crawler.settings.get("TISWATCH_CONFIG") or None, home=home)
        ts.ensure_home()
        mp = marketplace or getattr(crawler.spidercls, "marketplace", None) or crawler.spidercls.name
        ctx = CrawlContext(ts, mp, fresh=crawler.settings.getbool("TISWATCH_FRESH"),
                           revisit=crawler.settings.get("TISWATCH_FRONTIER") == "revisit",
                           config_path=crawler.settings.get("TISWATCH_CONFIG") or None,
                           log_file=crawler.settings.get("LOG_FILE") or None)
        crawler.tiswatch = ctx
    return ctx


def _status_path(home: Path) -> Path:
    return Path(home) / "crawl" / "status.json"


def read_status(home: Path) -> dict[str, Any]:
    """home/crawl/status.json: {marketplace: {"state": ..., "at": ..., ...}}; {} when there is none."""
    p = _status_path(home)
    try:
        data = json.loads(p.read_text("utf-8")) if p.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def write_status(home: Path, marketplace: str, state: str, **extra: Any) -> None:
    """Replace one marketplace's entry in status.json (atomically: written aside, then renamed).
    Several crawl processes update it; a file lock keeps their read-modify-write cycles apart."""
    import fcntl

    path = _status_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_status(home)
        data[marketplace] = {"state": state, "at": datetime.now(UTC).isoformat(timespec="seconds"), **extra}
        tmp = path.with_name(f"status.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), "utf-8")
        os.replace(tmp, path)
