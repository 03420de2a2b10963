"""Batched writes of one crawl process: the listing store, the event log and the frontier's done marks
are committed every `[crawl] store_batch` listings or `store_batch_seconds`, whichever comes first, and
when the crawl goes idle or closes, instead of once per listing.

Why: a commit per listing (store, events, crawl bookkeeping, frontier) was a third of a crawl's CPU on
the sandbox; SQLite's full-text indexes merge a new segment per commit.

What a kill -9 costs: the writes since the last commit. Nothing is lost for good, because a commit
happens in this order (each step one transaction):

1. the store: listings, observations, verdicts, evidence rows, pictures (SqliteStore.begin_batch);
2. the event log: the events those writes caused (verdict changes, delistings, relistings);
3. the store again: what the incremental crawl compares search cards with (`record_fetch`), noted after
   the events so a page whose events were lost is never skipped as unchanged (crawlers/pipelines.py);
4. the frontier: the requests the pages yielded, then the pages' done marks (Tracker.hold).

A page is done on disk only after all it caused is on disk, so the next run fetches again exactly the
pages whose writes were not committed (at most a batch, plus those in flight), and a kill between 1 and
2 is repaired as before (the resumed run writes the verdict event the store has but the log lacks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class WriteBatch:
    def __init__(self, store: Any, events: Any, tracker: Callable[[], Any], max_items: int, max_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.events = events
        self._tracker = tracker
        self.max_items = max(1, max_items)
        self.max_seconds = max_seconds
        self.clock = clock
        self.active = False
        self.items = 0
        self.since: float | None = None  # when the first write of the open batch came
        self._events: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        self._fetches: list[tuple[Any, ...]] = []
        self.commits = 0

    def start(self) -> None:
        if self.active:
            return
        self.store.begin_batch()
        tr = self._tracker()
        if tr is not None:
            tr.hold()
        self.active = True

    # ---- what the crawl writes meanwhile --------------------------------------------------------
    def _touch(self) -> None:
        if self.since is None:
            self.since = self.clock()

    def event(self, kind: str, key: str, data: dict[str, Any] | None, kw: dict[str, Any]) -> None:
        self._touch()
        self._events.append((kind, key, data or {}, kw))

    def last_event(self, kind: str, key: str) -> Any:
        """The latest event of this kind for this listing, those not yet written included."""
        for k, ky, data, _ in reversed(self._events):
            if k == kind and ky == key:
                return _Pending(k, ky, data)
        return self.events.last_of(kind, key)

    def fetch(self, args: tuple[Any, ...]) -> None:
        self._touch()
        self._fetches.append(args)

    def item_stored(self) -> None:
        """A listing went into the batch: commit when the batch is full or old enough."""
        self._touch()
        self.items += 1
        if self.due():
            self.flush()

    def due(self) -> bool:
        if self.items >= self.max_items:
            return True
        return self.since is not None and self.clock() - self.since >= self.max_seconds

    def flush_if_due(self) -> None:
        """The timer's call: an error is logged and the next call tries again (the writes stay in the
        open transaction; a LoopingCall that raised would stop for good)."""
        if self.active and self.due():
            try:
                self.flush()
            except Exception:
                log.exception("committing the crawl's batched writes failed; trying again")

    # ---- committing -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Commit in the order the module docstring gives."""
        if not self.active:
            return
        self.store.commit_batch()
        events = self._events  # cleared once written: a failed commit is tried again with them
        plain = [(k, key, d) for k, key, d, kw in events if not kw]
        if len(plain) == len(events):
            if plain:
                self.events.append_many(plain)
        else:
            for k, key, d, kw in events:
                self.events.append(k, key, d, **kw)
        self._events = []
        fetches, self._fetches = self._fetches, []
        for args in fetches:  # into the store's next transaction, committed at once
            self.store.record_fetch(*args)
        self.store.commit_batch()
        tr = self._tracker()
        if tr is not None:
            tr.release()
        self.items = 0
        self.since = None
        self.commits += 1

    def stop(self) -> None:
        """Commit what is pending and go back to writing at once (the crawl is closing)."""
        if not self.active:
            return
        self.flush()
        self.store.end_batch()
        tr = self._tracker()
        if tr is not None:
            tr.release(stop=True)
        self.active = False


class _Pending:
    """An event not yet written, shaped like listings.events.Event for what the pipelines read."""

    def __init__(self, kind: str, key: str, data: dict[str, Any]):
        self.kind, self.key, self.data = kind, key, data


class BatchedEvents:
    """The event log as the crawl sees it while a batch is open: appends wait for the batch's commit."""

    def __init__(self, events: Any, batch: WriteBatch):
        self._events = events
        self._batch = batch

    def append(self, kind: str, key: str, data: dict[str, Any] | None = None, **kw: Any) -> None:
        if not self._batch.active:
            return self._events.append(kind, key, data, **kw)
        from listings.events import KINDS

        if kind not in KINDS:  # the same error as at once, not at the commit
            raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(KINDS)})")
        self._batch.event(kind, key, data, kw)
        return None

    def last_of(self, kind: str, key: str) -> Any:
        return self._batch.last_event(kind, key) if self._batch.active else self._events.last_of(kind, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._events, name)


class BatchedStore:
    """The listing store as the crawl sees it while a batch is open: `record_fetch` waits for the
    events (step 3); everything else goes to the store's open transaction."""

    def __init__(self, store: Any, batch: WriteBatch):
        self._store = store
        self._batch = batch

    def record_fetch(self, *args: Any) -> None:
        if self._batch.active:
            self._batch.fetch(args)
        else:
            self._store.record_fetch(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
