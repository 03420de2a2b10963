"""What was read from a picture, kept by the picture's SHA-256 (images.sqlite in the data directory).

Sellers re-use photos across listings and shops, and every crawl sees the same pictures again: the
QR codes and the text of a picture are read once. A reading made without OCR is replaced when the
picture is later read with OCR. Safe for the crawl children running at once (SQLite WAL, short writes).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from listings.sqlite_util import enable_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
  sha256 TEXT PRIMARY KEY, ocr INTEGER NOT NULL, reader TEXT NOT NULL, data TEXT NOT NULL, at TEXT NOT NULL
);
"""


class ReadingCache:
    """sha256 -> the JSON record of an ImageReading. `reader` names the reader's options: a reading
    made with other OCR settings (languages, pre-processing) is not reused."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        enable_wal(self.db)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def get(self, sha256: str, reader: str, need_ocr: bool) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT ocr, data FROM readings WHERE sha256=? AND reader=?", (sha256, reader)).fetchone()
        if row is None or (need_ocr and not row[0]):
            return None
        return json.loads(row[1])

    def put(self, sha256: str, reader: str, record: dict[str, Any]) -> None:
        ocr = 1 if record.get("ocr") else 0
        with self._lock:
            # never replace a reading with OCR by one without
            self.db.execute(
                "INSERT INTO readings(sha256, ocr, reader, data, at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(sha256) DO UPDATE SET ocr=excluded.ocr, reader=excluded.reader, data=excluded.data, at=excluded.at "
                "WHERE excluded.ocr >= readings.ocr OR excluded.reader != readings.reader",
                (sha256, ocr, reader, json.dumps(record, ensure_ascii=False), datetime.now(UTC).isoformat(timespec="seconds")))

    def __len__(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT count(*) FROM readings").fetchone()[0])

    def close(self) -> None:
        self.db.close()
