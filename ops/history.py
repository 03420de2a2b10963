"""Job run history, crawl runs and small operational state, kept in jobs.sqlite next to APScheduler's
own job table (`apscheduler_jobs`).

- `runs`: one row per job run (scheduled, made up after downtime, or by hand): when, how long, how it
  ended (`ok`, `failed`, `blocked`, `timed_out`, `stopped`, `skipped`) and a small JSON result. Read by
  `tiswatch jobs`, the status page and /metrics.
- `crawls`: one row per crawl child run (from the scheduler, or a manual `tiswatch crawl`, picked up
  from the crawl report it wrote), keyed by marketplace and start time; /metrics sums them.
- `kv`: cursors and remembered facts (the registry version last re-checked, the ETag of the
  registry source, ...).

Several processes write here (the service, `tiswatch jobs run`, the status page reading): WAL mode,
short transactions, a busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from listings.sqlite_util import enable_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, kind TEXT NOT NULL, trigger TEXT NOT NULL,
  scheduled_at TEXT, started_at TEXT NOT NULL, finished_at TEXT, seconds REAL,
  status TEXT NOT NULL, error TEXT, result TEXT, pid INTEGER
);
CREATE INDEX IF NOT EXISTS runs_job ON runs(job, id);
CREATE TABLE IF NOT EXISTS crawls (
  marketplace TEXT NOT NULL, started TEXT NOT NULL, finished TEXT, reason TEXT, job TEXT,
  listings INTEGER DEFAULT 0, pages INTEGER DEFAULT 0, requests INTEGER DEFAULT 0, errors INTEGER DEFAULT 0,
  blocked INTEGER DEFAULT 0, captcha INTEGER DEFAULT 0, block_why TEXT, block_url TEXT, seconds REAL,
  PRIMARY KEY (marketplace, started)
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run_totals (job TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (job, status));
CREATE TABLE IF NOT EXISTS duration_totals (job TEXT NOT NULL, le TEXT NOT NULL, n REAL NOT NULL, PRIMARY KEY (job, le));
"""
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400)
STATUSES = ("running", "ok", "failed", "blocked", "timed_out", "stopped", "skipped")


def _iso(dt: datetime | None = None) -> str:
    dt = dt or datetime.now(UTC)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


class History:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        enable_wal(self.db)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    # ---- runs -------------------------------------------------------------------------------------
    def start(self, job: str, kind: str, trigger: str, scheduled_at: datetime | None, pid: int,
              at: datetime | None = None) -> int:
        with self._tx() as db:
            cur = db.execute("INSERT INTO runs(job, kind, trigger, scheduled_at, started_at, status, pid)"
                             " VALUES (?,?,?,?,?,?,?)",
                             (job, kind, trigger, _iso(scheduled_at) if scheduled_at else None, _iso(at), "running", pid))
            return int(cur.lastrowid or 0)

    def finish(self, run_id: int, status: str, seconds: float, result: dict[str, Any] | None = None,
               error: str | None = None, at: datetime | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._tx() as db:
            db.execute("UPDATE runs SET finished_at=?, seconds=?, status=?, error=?, result=? WHERE id=?",
                       (_iso(at), round(seconds, 3), status, (error or None) and error[:2000],
                        json.dumps(result or {}, ensure_ascii=False, default=str), run_id))

    def abandon_running(self, alive: set[int] | None = None) -> int:
        """Runs still marked `running` whose process is gone (the service was killed): mark them
        `stopped`, so the history does not show them running for ever. `alive`: pids still running."""
        alive = alive or set()
        with self._tx() as db:
            rows = db.execute("SELECT id, pid FROM runs WHERE status='running'").fetchall()
            gone = [r["id"] for r in rows if r["pid"] not in alive]
            for rid in gone:
                db.execute("UPDATE runs SET status='stopped', error='the process running it ended without finishing it',"
                           " finished_at=? WHERE id=?", (_iso(), rid))
        return len(gone)

    @staticmethod
    def _run(r: sqlite3.Row) -> dict[str, Any]:
        d = dict(r)
        d["result"] = json.loads(d["result"]) if d.get("result") else {}
        return d

    def runs(self, job: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if job:
            rows = self.db.execute("SELECT * FROM runs WHERE job=? ORDER BY id DESC LIMIT ?", (job, limit))
        else:
            rows = self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [self._run(r) for r in rows]

    def last_runs(self) -> dict[str, dict[str, Any]]:
        """The latest run of each job."""
        rows = self.db.execute("SELECT r.* FROM runs r JOIN (SELECT job, max(id) AS id FROM runs GROUP BY job) m"
                               " ON r.id = m.id")
        return {r["job"]: self._run(r) for r in rows}

    def last_finished(self) -> dict[str, dict[str, Any]]:
        """The latest finished (not running, not skipped) run of each job."""
        rows = self.db.execute("SELECT r.* FROM runs r JOIN (SELECT job, max(id) AS id FROM runs"
                               " WHERE status NOT IN ('running','skipped') GROUP BY job) m ON r.id = m.id")
        return {r["job"]: self._run(r) for r in rows}

    def run_counts(self) -> list[tuple[str, str, int]]:
        return [(r[0], r[1], r[2]) for r in self.db.execute("SELECT job, status, count(*) FROM runs GROUP BY job, status")]

    def durations(self, since_id: int = 0) -> list[tuple[str, float]]:
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT job, seconds FROM runs WHERE id > ? AND seconds IS NOT NULL AND status != 'skipped'", (since_id,))]

    def prune(self, before: datetime, keep_last: int = 50) -> int:
        """Forget runs started before `before`, except each job's latest `keep_last`. Their counts and
        durations are rolled up (run_totals, duration_totals), so /metrics counters never go back."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, job, status, seconds FROM runs r WHERE started_at < ? AND status != 'running' AND id NOT IN"
                " (SELECT id FROM runs r2 WHERE r2.job = r.job ORDER BY id DESC LIMIT ?)", (_iso(before), keep_last)).fetchall()
            for r in rows:
                db.execute("INSERT INTO run_totals VALUES (?,?,1) ON CONFLICT(job, status) DO UPDATE SET n = n + 1",
                           (r["job"], r["status"]))
                if r["seconds"] is not None and r["status"] != "skipped":
                    les = [str(b) for b in DURATION_BUCKETS if r["seconds"] <= b] + ["+Inf", "count"]
                    for le in les:
                        db.execute("INSERT INTO duration_totals VALUES (?,?,1) ON CONFLICT(job, le) DO UPDATE SET n = n + 1",
                                   (r["job"], le))
                    db.execute("INSERT INTO duration_totals VALUES (?,'sum',?) ON CONFLICT(job, le) DO UPDATE SET n = n + ?",
                               (r["job"], r["seconds"], r["seconds"]))
                db.execute("DELETE FROM runs WHERE id=?", (r["id"],))
        return len(rows)

    def rolled_up(self) -> list[tuple[str, str, int]]:
        return [(r[0], r[1], r[2]) for r in self.db.execute("SELECT job, status, n FROM run_totals")]

    def rolled_durations(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for job, le, n in self.db.execute("SELECT job, le, n FROM duration_totals"):
            out.setdefault(job, {})[le] = n
        return out

    # ---- crawls -----------------------------------------------------------------------------------
    def record_crawl(self, row: dict[str, Any]) -> None:
        """One crawl run (from its report); the same run twice is stored once, the later view wins."""
        cols = ("marketplace", "started", "finished", "reason", "job", "listings", "pages", "requests", "errors",
                "blocked", "captcha", "block_why", "block_url", "seconds")
        vals = [row.get(c) for c in cols]
        with self._tx() as db:
            existing = db.execute("SELECT job FROM crawls WHERE marketplace=? AND started=?",
                                  (row["marketplace"], row["started"])).fetchone()
            if existing is not None and existing["job"] and not row.get("job"):
                vals[cols.index("job")] = existing["job"]
            db.execute(f"INSERT OR REPLACE INTO crawls({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})", vals)

    def crawl_totals(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(
            "SELECT marketplace, count(*) AS runs, sum(listings) AS listings, sum(pages) AS pages,"
            " sum(requests) AS requests, sum(errors) AS errors, sum(blocked) AS blocked, sum(captcha) AS captcha"
            " FROM crawls GROUP BY marketplace")]

    def last_crawls(self) -> dict[str, dict[str, Any]]:
        rows = self.db.execute("SELECT c.* FROM crawls c JOIN (SELECT marketplace, max(started) AS s FROM crawls"
                               " GROUP BY marketplace) m ON c.marketplace=m.marketplace AND c.started=m.s")
        return {r["marketplace"]: dict(r) for r in rows}

    def last_block(self, marketplace: str) -> dict[str, Any] | None:
        r = self.db.execute("SELECT * FROM crawls WHERE marketplace=? AND blocked > 0 ORDER BY started DESC LIMIT 1",
                            (marketplace,)).fetchone()
        return dict(r) if r else None

    # ---- key/value --------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        r = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(r[0]) if r else default

    def put(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO kv VALUES (?,?,?)", (key, json.dumps(value, ensure_ascii=False, default=str), _iso()))


def open_history(settings: Any) -> History:
    settings.ensure_home()
    return History(settings.jobs_db)


# ---- crawl reports (written by the crawl child) -------------------------------------------------------
CAPTCHA_WORDS = ("captcha", "verify", "verification", "punish", "slider", "robot")


def crawl_row(report: dict[str, Any], job: str | None = None, seconds: float | None = None) -> dict[str, Any] | None:
    """A `crawls` row from a crawl report (home/crawl/<marketplace>/last_run.json). Pure. A block whose
    reason names a captcha or verification page counts as a captcha too."""
    if not report.get("marketplace") or not report.get("started"):
        return None
    st = report.get("stats") or {}
    blocked = report.get("blocked") or None
    why = (blocked or {}).get("why") or ""
    errors = int(st.get("tiswatch/page_errors", 0) or 0) + int(st.get("tiswatch/parse_errors", 0) or 0)
    if seconds is None:
        try:
            seconds = (datetime.fromisoformat(report["finished"]) - datetime.fromisoformat(report["started"])).total_seconds()
        except (KeyError, TypeError, ValueError):
            seconds = None
    return {
        "marketplace": report["marketplace"], "started": report["started"], "finished": report.get("finished"),
        "reason": report.get("reason"), "job": job, "listings": int(report.get("listings") or 0),
        "pages": int(st.get("response_received_count", 0) or st.get("downloader/response_count", 0) or 0),
        "requests": int(st.get("downloader/request_count", 0) or 0), "errors": errors,
        "blocked": 1 if blocked else 0,
        "captcha": 1 if blocked and any(w in why.lower() for w in CAPTCHA_WORDS) else 0,
        "block_why": why or None, "block_url": (blocked or {}).get("url"), "seconds": seconds,
    }


def read_reports(crawl_dir: str | Path) -> list[dict[str, Any]]:
    """Every marketplace's last crawl report (home/crawl/*/last_run.json); unreadable ones are skipped."""
    out = []
    for p in sorted(Path(crawl_dir).glob("*/last_run.json")):
        try:
            out.append(json.loads(p.read_text("utf-8")))
        except (OSError, ValueError):
            continue
    return out


def sync_reports(history: History, crawl_dir: str | Path) -> int:
    """Record the crawl reports on disk (a manual `tiswatch crawl` writes one too); idempotent."""
    n = 0
    for rep in read_reports(crawl_dir):
        row = crawl_row(rep)
        if row is not None:
            history.record_crawl(row)
            n += 1
    return n
