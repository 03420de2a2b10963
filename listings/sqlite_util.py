"""One helper for every SQLite file of the data directory."""

from __future__ import annotations

import sqlite3
import time


def enable_wal(db: sqlite3.Connection, timeout: float = 30.0) -> None:
    """Put the database in WAL mode, waiting for other processes that do the same.

    On a new file, `PRAGMA journal_mode=WAL` needs the file to itself and answers "database is locked" at
    once, without the busy timeout, when another connection is switching it too. That happens when the
    demo or the scheduler starts several crawl processes on a new data directory. So retry for up to
    `timeout` seconds; on a file already in WAL mode the first try succeeds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(0.2, delay * 2)
