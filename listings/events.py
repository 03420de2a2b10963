"""The listing event log: what happened to listings, in order, for whoever needs to react to it.

Producers append; consumers read forward from the last id they handled (a cursor), so a consumer that
was down catches up with nothing missed and nothing read twice. It is the seam between the packages
that decide things about listings and the ones that act on them:

| kind              | written by                                   | data                                           |
|-------------------|----------------------------------------------|------------------------------------------------|
| `verdict`         | crawl pipeline (source "crawl"), registry     | verdict, risk, tis_no, licence_no, reasons,     |
|                   | re-check (source "registry")                  | previous, marketplace, source                   |
| `delisted`        | crawl (a listing no longer listed)            | marketplace, last_seen                          |
| `relisted`        | crawl                                         | marketplace                                     |
| `decision`        | review app (an officer's decision)            | decision, by, note, previous                    |
| `partner_status`  | alerts (a partner's feedback on an alert)     | partner, status, reason                         |

A verdict event is written only when the verdict, risk, standard, licence or reasons changed, so the
same observation ingested twice writes one event. `dedupe` makes any append idempotent: a second
append with the same dedupe key is ignored.

The embedded backend is SQLite (`events.sqlite` in the data directory, WAL), which several processes
(crawl children, the app, the scheduler) may write at once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from listings.sqlite_util import enable_wal

KINDS = ("verdict", "delisted", "relisted", "decision", "partner_status")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
  data TEXT NOT NULL, dedupe TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS events_key ON events(key, id);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, id);
"""


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    kind: str
    key: str  # the listing's key, "marketplace:item_id"
    data: dict[str, Any] = field(default_factory=dict)


def _iso(dt: datetime | None) -> str:
    dt = dt or datetime.now(UTC)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


class EventLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        enable_wal(self.db)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def append(self, kind: str, key: str, data: dict[str, Any] | None = None, *, at: datetime | None = None,
               dedupe: str | None = None) -> int | None:
        """Append one event; returns its id, or None when `dedupe` was seen before."""
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(KINDS)})")
        with self._lock:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO events(at, kind, key, data, dedupe) VALUES (?,?,?,?,?)",
                (_iso(at), kind, key, json.dumps(data or {}, ensure_ascii=False, default=str), dedupe))
            return cur.lastrowid if cur.rowcount else None

    def append_many(self, events: Iterable[tuple[str, str, dict[str, Any]]], at: datetime | None = None) -> int:
        """Append (kind, key, data) triples in one transaction; returns how many were written."""
        rows = [(_iso(at), k, key, json.dumps(d, ensure_ascii=False, default=str), None) for k, key, d in events]
        for r in rows:
            if r[1] not in KINDS:
                raise ValueError(f"unknown event kind {r[1]!r}")
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("INSERT INTO events(at, kind, key, data, dedupe) VALUES (?,?,?,?,?)", rows)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return len(rows)

    def read(self, after: int = 0, limit: int = 1000, kinds: Iterable[str] | None = None,
             key: str | None = None) -> list[Event]:
        """Events with id > `after`, oldest first."""
        sql, params = "SELECT id, at, kind, key, data FROM events WHERE id > ?", [after]
        if kinds:
            ks = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(ks))})"
            params += ks
        if key is not None:
            sql += " AND key = ?"
            params.append(key)
        sql += " ORDER BY id LIMIT ?"
        params.append(max(1, limit))
        return [Event(r[0], datetime.fromisoformat(r[1]), r[2], r[3], json.loads(r[4]))
                for r in self.db.execute(sql, params)]

    def last_of(self, kind: str, key: str) -> Event | None:
        """The latest event of `kind` for one listing (None when it has none)."""
        with self._lock:
            row = self.db.execute("SELECT id, at, kind, key, data FROM events WHERE key=? AND kind=? "
                                  "ORDER BY id DESC LIMIT 1", (key, kind)).fetchone()
        if row is None:
            return None
        return Event(row[0], datetime.fromisoformat(row[1]), row[2], row[3], json.loads(row[4]))

    def last_id(self) -> int:
        return self.db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]


def open_events(settings) -> EventLog:
    """The event log of a data directory (events.sqlite)."""
    settings.ensure_home()
    return EventLog(settings.home / "events.sqlite")


def verdict_event(verdict: Any, previous: str | None, marketplace: str, source: str) -> dict[str, Any]:
    """The data of a `verdict` event from a matching.Verdict."""
    return {"verdict": verdict.verdict, "risk": verdict.risk, "tis_no": verdict.tis_no,
            "licence_no": verdict.licence_no, "reasons": list(verdict.reasons), "previous": previous,
            "marketplace": marketplace, "source": source, "registry_version": verdict.registry_version}
