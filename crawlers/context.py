"""What every spider and pipeline of one crawl process shares: tiswatch settings, the registry (loaded
once), the listing store, the evidence writer and the crawl status file. Built lazily, once per crawler."""

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
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    seen: set[str] = field(default_factory=set)
    blocked: dict[str, Any] | None = None
    complete: bool = True  # False when a page failed or a block stopped the crawl
    _registry: Any = None
    _store: Any = None
    _evidence: Any = None
    _events: Any = None

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
        return self._store

    @property
    def evidence(self):
        if self._evidence is None:
            from listings.evidence import EvidenceWriter

            self._evidence = EvidenceWriter(self.settings.evidence_dir)
        return self._evidence

    @property
    def events(self):
        if self._events is None:
            from listings.events import open_events

            self._events = open_events(self.settings)
        return self._events

    def write_status(self, state: str, **extra: Any) -> None:
        """home/crawl/status.json: the last state of each marketplace's crawl, read by the review app."""
        path = self.settings.crawl_dir / "status.json"
        with _LOCK:
            try:
                data = json.loads(path.read_text("utf-8")) if path.exists() else {}
            except json.JSONDecodeError:
                data = {}
            data[self.marketplace] = {"state": state, "at": datetime.now(UTC).isoformat(timespec="seconds"), **extra}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), "utf-8")
            os.replace(tmp, path)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._events is not None:
            self._events.close()


def context_for(crawler, marketplace: str | None = None) -> CrawlContext:
    ctx = getattr(crawler, "tiswatch", None)
    if ctx is None:
        home = crawler.settings.get("TISWATCH_HOME") or os.environ.get("TISWATCH_HOME")
        ts = load_settings(config=crawler.settings.get("TISWATCH_CONFIG") or None, home=home)
        ts.ensure_home()
        mp = marketplace or getattr(crawler.spidercls, "marketplace", None) or crawler.spidercls.name
        ctx = CrawlContext(ts, mp)
        crawler.tiswatch = ctx
    return ctx


def read_status(home: Path) -> dict[str, Any]:
    p = Path(home) / "crawl" / "status.json"
    try:
        return json.loads(p.read_text("utf-8")) if p.exists() else {}
    except json.JSONDecodeError:
        return {}
