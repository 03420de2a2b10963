"""The durable crawl frontier: what a crawl still has to fetch, kept so that a crawl killed at any
moment (kill -9 included) continues where it stopped, with no listing lost and none fetched twice.

Why not Scrapy's JOBDIR: it writes its queue state and the seen-requests file when the crawl closes
(and buffers the latter), so after a kill -9 the queue is gone while the request fingerprints that
survived make the next run skip exactly the pages it still needed.

Here every request a spider yields is written to SQLite (WAL, one transaction per response) before the
response that produced it is marked done, and a response is marked done only once everything it
yielded has passed the item pipelines (the listing is stored). A run is the unit of resumption: it
stays open until a crawl finishes it; the next crawl of the marketplace re-issues its pending requests.
Requests are kept with `Request.to_dict(spider=...)` (callbacks by name) and pickled.

File: home/crawl/<marketplace>/frontier.sqlite.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from listings.sqlite_util import enable_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT, state TEXT NOT NULL DEFAULT 'open', reason TEXT
);
CREATE TABLE IF NOT EXISTS requests (
  run INTEGER NOT NULL, fp TEXT NOT NULL, url TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
  data BLOB, added TEXT NOT NULL, done TEXT, PRIMARY KEY (run, fp)
);
CREATE INDEX IF NOT EXISTS requests_pending ON requests(run, state);
"""
PENDING, DONE, FAILED = "pending", "done", "failed"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Run:
    id: int
    started: datetime
    resumed: bool  # True when this run was begun by an earlier crawl that did not finish it


class Frontier:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        enable_wal(self.db)
        self.db.execute("PRAGMA synchronous=NORMAL")  # a committed write survives the process being killed
        self.db.executescript(SCHEMA)
        self.run: Run | None = None

    def close(self) -> None:
        self.db.close()

    # ---- runs ------------------------------------------------------------------------------------
    def open_run(self, fresh: bool = False) -> Run:
        """The open run to resume (its pending requests come back from `pending()`), or a new one.
        `fresh` abandons an open run."""
        with self._lock:
            r = self.db.execute("SELECT id, started FROM runs WHERE state='open' ORDER BY id DESC LIMIT 1").fetchone()
            if r is not None and fresh:
                self.db.execute("UPDATE runs SET state='abandoned', finished=? WHERE id=?", (_now(), r[0]))
                self.db.execute("DELETE FROM requests WHERE run=?", (r[0],))
                r = None
            if r is not None:
                self.run = Run(r[0], datetime.fromisoformat(r[1]), True)
            else:
                started = _now()
                cur = self.db.execute("INSERT INTO runs(started) VALUES (?)", (started,))
                self.run = Run(int(cur.lastrowid or 0), datetime.fromisoformat(started), False)
        return self.run

    def finish_run(self, reason: str) -> None:
        """The run is over: its requests are forgotten (only counts are kept)."""
        assert self.run is not None
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE runs SET state='finished', finished=?, reason=? WHERE id=?", (_now(), reason, self.run.id))
            self.db.execute("DELETE FROM requests WHERE run=?", (self.run.id,))
            self.db.execute("DELETE FROM runs WHERE state!='open' AND id < ?", (self.run.id - 20,))
            self.db.execute("COMMIT")

    def note(self, reason: str) -> None:
        """Why the open run stopped for now (blocked, shutdown, ...); it stays open."""
        assert self.run is not None
        with self._lock:
            self.db.execute("UPDATE runs SET reason=? WHERE id=?", (reason, self.run.id))

    # ---- requests --------------------------------------------------------------------------------
    def known(self) -> set[str]:
        """Fingerprints already in this run (pending, done or failed)."""
        assert self.run is not None
        return {r[0] for r in self.db.execute("SELECT fp FROM requests WHERE run=?", (self.run.id,))}

    def add(self, rows: Iterable[tuple[str, str, dict[str, Any] | bytes]]) -> None:
        """Record requests (fingerprint, url, request dict or its pickle) as pending; known ones are
        left as they are."""
        assert self.run is not None
        data = [(self.run.id, fp, url, d if isinstance(d, bytes) else pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL), _now())
                for fp, url, d in rows]
        if not data:
            return
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("INSERT OR IGNORE INTO requests(run, fp, url, data, added) VALUES (?,?,?,?,?)", data)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def mark(self, fp: str, url: str, state: str = DONE) -> None:
        """A request is handled: done (its items are stored) or failed (given up after retries)."""
        assert self.run is not None
        with self._lock:
            self.db.execute(
                "INSERT INTO requests(run, fp, url, state, added, done) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(run, fp) DO UPDATE SET state=excluded.state, done=excluded.done, data=NULL",
                (self.run.id, fp, url, state, _now(), _now()))

    def mark_many(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """mark() for many (fingerprint, url, state) in one transaction."""
        assert self.run is not None
        now = _now()
        data = [(self.run.id, fp, url, state, now, now) for fp, url, state in rows]
        if not data:
            return
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(
                    "INSERT INTO requests(run, fp, url, state, added, done) VALUES (?,?,?,?,?,?)"
                    " ON CONFLICT(run, fp) DO UPDATE SET state=excluded.state, done=excluded.done, data=NULL", data)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def pending(self) -> Iterator[dict[str, Any]]:
        """Request dicts still to fetch in this run, in the order they were added."""
        assert self.run is not None
        rows = self.db.execute("SELECT data FROM requests WHERE run=? AND state='pending' AND data IS NOT NULL ORDER BY rowid",
                               (self.run.id,)).fetchall()
        for (blob,) in rows:
            yield pickle.loads(blob)

    def counts(self) -> dict[str, int]:
        assert self.run is not None
        return dict(self.db.execute("SELECT state, count(*) FROM requests WHERE run=? GROUP BY state", (self.run.id,)).fetchall())


def request_dict(request: Any, spider: Any) -> dict[str, Any]:
    """`request.to_dict(spider=spider)`, the same dict, made faster: Scrapy finds the name of a callback
    by listing every attribute of the spider (inspect.getmembers, which also evaluates each property)
    for every request; here a method of the spider is found by its own name first, and anything else
    (a function from elsewhere, a renamed method) goes the way Scrapy's does."""
    def name(f: Any) -> Any:
        if not callable(f):
            return f
        n = getattr(f, "__name__", None)
        fn = getattr(f, "__func__", None)
        if n and fn is not None and getattr(getattr(spider, n, None), "__func__", None) is fn:
            return n
        raise LookupError(n)

    from scrapy import Request

    try:
        d = {"url": request.url, "callback": name(request.callback), "errback": name(request.errback),
             "headers": dict(request.headers)}
    except LookupError:
        return request.to_dict(spider=spider)
    for attr in request.attributes:
        d.setdefault(attr, getattr(request, attr))
    if type(request) is not Request:
        d["_class"] = request.__module__ + "." + request.__class__.__name__
    return d


class Tracker:
    """The crawl-side bookkeeping on top of a Frontier: records every request once, drops requests
    this run already handled (also those handled by a crawl that was killed), and marks a response
    done once its output is recorded and its items have left the pipelines."""

    def __init__(self, frontier: Frontier, fingerprint, to_dict):
        """`fingerprint(request) -> bytes` (the crawler's request fingerprinter) and
        `to_dict(request) -> dict` (Request.to_dict bound to the spider)."""
        self.frontier = frontier
        self._fingerprint = fingerprint
        self._to_dict = to_dict
        self.recorded: set[str] = set()   # pending in this run
        self.finished: set[str] = set()   # done or failed in this run
        for fp, state in frontier.db.execute("SELECT fp, state FROM requests WHERE run=?", (frontier.run.id,)):  # type: ignore[union-attr]
            (self.recorded if state == PENDING else self.finished).add(fp)
        self._items: dict[str, int] = {}   # key -> items still in the pipelines
        self._output_done: set[str] = set()
        self._unwritten: list[tuple[str, str, bytes]] = []
        self._held: list[tuple[str, str, str]] | None = None  # done marks waiting for release() (hold())
        self.unpicklable = 0

    def key(self, request) -> str:
        """The request's identity in the frontier: its fingerprint, or meta["frontier_key"] for a request
        that fetches the same URL for another purpose (rendering a page for a screenshot)."""
        return request.meta.get("frontier_key") or self._fingerprint(request).hex()

    def record(self, request) -> bool:
        """Record a request about to be scheduled; False when this run already handled it."""
        k = self.key(request)
        if k in self.finished:
            return False
        if k not in self.recorded:
            blob: bytes | None
            try:
                d = self._to_dict(request)
                for m in ("_captured", "playwright_page", "download_slot", "download_latency"):
                    d.get("meta", {}).pop(m, None)
                blob = pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                blob = None  # kept as a key only: it cannot come back after a kill (its search page will)
                self.unpicklable += 1
            if blob is not None:
                self._unwritten.append((k, request.url, blob))
                if len(self._unwritten) >= 500:
                    self.flush()
            else:
                self.frontier.mark(k, request.url, PENDING)
            self.recorded.add(k)
        return True

    def flush(self) -> None:
        """Write the requests recorded since the last flush, in one transaction. Called before any
        request is marked done, so a response is never done before what it yielded is on disk."""
        rows = getattr(self, "_unwritten", None)  # None in a subclass that writes at once (cluster.crawl.RedisTracker)
        if rows:
            self._unwritten = []
            self.frontier.add(rows)

    def item_started(self, key: str, item: Any) -> None:
        if isinstance(item, dict) and "_frontier" not in item:
            item["_frontier"] = key
            self._items[key] = self._items.get(key, 0) + 1

    def item_finished(self, item: Any) -> None:
        key = item.get("_frontier") if isinstance(item, dict) else None
        if key is None or key not in self._items:
            return
        self._items[key] -= 1
        if self._items[key] <= 0:
            del self._items[key]
            if key in self._output_done:
                self._done(key, item.get("url") or "")

    def output_done(self, key: str, url: str) -> None:
        self._output_done.add(key)
        if not self._items.get(key):
            self._done(key, url)

    def mark(self, key: str, url: str, state: str) -> None:
        """Handled without output: failed after retries, or done (e.g. a page that says the item is gone)."""
        self._items.pop(key, None)
        self._done(key, url, state)

    def hold(self) -> None:
        """From now on a response counts as done on disk only at release(): the listing store batches
        its writes (crawlers/batch.py), and a page must not be done on disk before its listing is."""
        if self._held is None:
            self._held = []

    def release(self, stop: bool = False) -> None:
        """Write the requests recorded and the done marks held since the last release (requests
        first), each in one transaction; `stop` ends holding."""
        held, self._held = self._held, (None if stop else [])
        self.flush()
        if held:
            self.frontier.mark_many(held)

    # the store worker (crawlers/storeworker.py) commits in another process: the done marks held when
    # it is asked to commit are written once it answers, those held since wait for the next commit
    def take_held(self) -> list[tuple[str, str, str]]:
        """The done marks held so far (holding goes on)."""
        held = self._held or []
        if self._held is not None:
            self._held = []
        return held

    def release_marks(self, marks: list[tuple[str, str, str]]) -> None:
        """Write the requests recorded so far, then these done marks (their pages' writes are committed)."""
        self.flush()
        if marks:
            self.frontier.mark_many(marks)

    def put_back(self, marks: list[tuple[str, str, str]]) -> None:
        """A commit failed: its pages' marks wait for the next one."""
        if self._held is None:
            self._held = []
        self._held[:0] = marks

    def forget_held(self) -> None:
        """The writes of the held pages are lost (the worker died): they stay pending, for the next run."""
        if self._held:
            self._held = []

    def _done(self, key: str, url: str, state: str = DONE) -> None:
        self._output_done.discard(key)
        self.recorded.discard(key)
        self.finished.add(key)
        if self._held is not None:
            self._held.append((key, url, state))
            return
        self.flush()
        self.frontier.mark(key, url, state)
