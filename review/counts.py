"""Facet and status counts for the queue and search pages, computed once and kept for a short while.

A page of 50 listings is cheap to read from the store; counting *every* matching listing by
marketplace, verdict, standard, seller and review status is not (it reads all of them: the bulk of a
queue page's time with 100,000 flagged listings). An officer pages through the queue, switches tabs
and decides listing after listing under the same filters, so the counts are kept per filter set:

- kept counts are at most `ttl` seconds old ([review] count_cache_seconds, 15 by default; 0 turns the
  cache off): new listings from a crawl, a re-check or a colleague's decisions show within that;
- a bulk decision from the queue (which reloads the page) clears them, so its effect shows at once;
  the one-row decisions of keyboard triage (htmx, no reload) do not, or no page would ever find
  its counts kept while officers work;
- the listing rows, and the total of the list shown (the current tab), are never kept: they are
  read for every page.
Pure apart from the clock, which is passed in.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class CountCache:
    def __init__(self, ttl: float, size: int = 256, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.size, self.clock = ttl, size, clock
        self._d: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def peek(self, key: Hashable) -> Any | None:
        """The kept value for `key` if it was computed less than `ttl` seconds ago, else None."""
        if self.ttl <= 0:
            return None
        now = self.clock()
        with self._lock:
            e = self._d.get(key)
            if e is not None and now - e[0] < self.ttl:
                self._d.move_to_end(key)
                self.hits += 1
                return e[1]
        self.misses += 1
        return None

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._d[key] = (self.clock(), value)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """peek(), or `compute()` (outside the lock: two requests may both compute, which is harmless)
        and put()."""
        v = self.peek(key)
        if v is None:
            v = compute()
            self.put(key, v)
        return v

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


def filters_key(kind: str, params: dict[str, Any], drop: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """A hashable cache key of a filter set (the page's `ListFilters.params()`), without `drop`."""
    return (kind, *sorted((k, str(v)) for k, v in params.items() if k not in drop and k != "order"))
