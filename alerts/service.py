"""The pieces of alerts/ opened on one data directory, for the CLI, the web routes and the worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.clock import Clock, SystemClock
from alerts.engine import AlertEngine, Publisher
from alerts.store import AlertStore, open_alert_store


def public_base_url(settings: Any) -> str:
    """Where partners reach this installation (evidence links); `[alerts] public_url`, else the app's
    own address."""
    return settings.alerts.public_url or f"http://{settings.review.host}:{settings.review.port}"


@dataclass
class AlertService:
    settings: Any
    store: AlertStore
    events: Any
    listings: Any
    catalogue: Any
    engine: AlertEngine
    publisher: Publisher
    clock: Clock
    _own_listings: bool = True

    def close(self) -> None:
        self.store.close()
        self.events.close()
        if self._own_listings and self.listings is not None:
            self.listings.close()


def _catalogue(settings: Any) -> Any:
    from registry.catalogue import CatalogueError, load_catalogue

    try:
        return load_catalogue(settings.catalogue_path)
    except CatalogueError:
        return None  # standard names are a courtesy in alerts; the TIS number is always there


def open_service(settings: Any, *, clock: Clock | None = None, listings: Any = None) -> AlertService:
    from alerts.verify import removal_watcher
    from listings.events import open_events
    from listings.store import open_store

    clock = clock or SystemClock()
    store = open_alert_store(settings)
    events = open_events(settings)
    own = listings is None
    listings = listings if listings is not None else open_store(settings)
    cat = _catalogue(settings)
    engine = AlertEngine(store, events, listings, cat, clock, on_event=removal_watcher(store, clock))
    pub = Publisher(store, listings, public_base_url(settings), settings.alerts.evidence_link_days, clock)
    return AlertService(settings, store, events, listings, cat, engine, pub, clock, own)
