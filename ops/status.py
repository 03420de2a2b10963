"""What the operators' views show (the status page, `tiswatch jobs`, /metrics, /readyz), read from
the data directory so that it works the same in `tiswatch run`, `tiswatch serve` and the CLI: the job
history and schedule (jobs.sqlite), the crawl reports (home/crawl), the listing store, the registry,
the event log and the alert store.

Every part is read on its own; one that fails (a database being restored, the alerts package not
installed) is reported as unavailable, never fails the whole view."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
BROWSER_MARKETPLACES = ("shopee",)  # marketplaces whose spider drives Chromium


def _ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)


# ---- jobs -------------------------------------------------------------------------------------------
def job_rows(settings: Any, specs: list[Any], now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per configured job: schedule, next run (the service's, or an estimate when it is not
    running), the last run and the last finished one."""
    from ops.history import open_history
    from ops.locks import is_locked, service_lock_path
    from ops.schedule import next_fire

    now = now or datetime.now(UTC)
    hist = open_history(settings)
    try:
        last, done = hist.last_runs(), hist.last_finished()
    finally:
        hist.close()
    persisted = persisted_next_runs(settings.jobs_db)
    service = is_locked(service_lock_path(settings.home))
    rows = []
    for spec in specs:
        nxt = persisted.get(spec.id)
        estimate = False
        if nxt is None and spec.trigger is not None and not service:
            nxt, estimate = next_fire(spec.trigger, settings.schedule.timezone, now), True
        lr = last.get(spec.id)
        rows.append({"id": spec.id, "kind": spec.kind, "schedule": spec.schedule, "description": spec.description,
                     "marketplace": spec.marketplace, "next_run": nxt, "next_is_estimate": estimate,
                     "last": lr, "last_finished": done.get(spec.id), "running": bool(lr and lr["status"] == "running"),
                     "summary": summary(lr)})
    return rows


def persisted_next_runs(jobs_db: Path) -> dict[str, datetime]:
    """Next run times the service keeps in jobs.sqlite (APScheduler's table), without unpickling jobs."""
    if not Path(jobs_db).exists():
        return {}
    try:
        db = _ro(jobs_db)
    except sqlite3.Error:
        return {}
    try:
        rows = db.execute("SELECT id, next_run_time FROM apscheduler_jobs").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return {r[0]: datetime.fromtimestamp(r[1], UTC) for r in rows if r[1] is not None}


def summary(run: dict[str, Any] | None) -> str:
    """A few words about a run's result."""
    if not run or run["status"] == "running":
        return ""
    r = run.get("result") or {}
    bits: list[str] = []
    if run["kind"] in ("crawl", "revisit"):
        if "due" in r:
            bits.append(f"{r['due']} due")
        if r.get("listings") or r.get("pages"):
            bits.append(f"{r.get('listings', 0)} listings, {r.get('pages', 0)} pages")
    elif run["kind"] == "registry":
        if r.get("changed"):
            bits.append(f"{r.get('version_before')}→{r.get('version')}: {r.get('added', 0)} added, {r.get('updated', 0)} updated")
        elif r.get("unchanged") or r.get("skipped"):
            bits.append(str(r.get("unchanged") or r.get("skipped")))
        rc = r.get("recheck") or {}
        if rc.get("candidates") is not None and r.get("changed"):
            bits.append(f"re-check: {rc.get('changed', 0)} of {rc['candidates']} changed")
    elif run["kind"] == "recheck" and "candidates" in r:
        bits.append(f"{r.get('version_from', '')}→{r.get('version')}: {r.get('changed', 0)} of {r['candidates']} changed"
                    if r.get("version_from") else f"{r.get('version')}: nothing to re-check")
    else:
        bits += [f"{k} {v}" for k, v in r.items() if isinstance(v, int | float) and not isinstance(v, bool)][:4]
    if run.get("error"):
        bits.append(run["error"][:160])
    return "; ".join(bits)


# ---- crawls -----------------------------------------------------------------------------------------
def crawl_rows(settings: Any) -> list[dict[str, Any]]:
    """Per marketplace: the crawl state now (home/crawl/status.json), the last crawl, the last block."""
    from crawlers.context import read_status
    from ops.history import open_history, sync_reports
    from ops.locks import crawl_lock_path, is_locked

    hist = open_history(settings)
    try:
        sync_reports(hist, settings.crawl_dir)
        last = hist.last_crawls()
        totals = {t["marketplace"]: t for t in hist.crawl_totals()}
        blocks = {m: hist.last_block(m) for m in settings.marketplaces}
    finally:
        hist.close()
    state = read_status(settings.home)
    out = []
    for name, mp in settings.marketplaces.items():
        holder = is_locked(crawl_lock_path(settings.home, name))
        out.append({"marketplace": name, "enabled": mp.enabled and bool(mp.base_url or mp.start_urls),
                    "running": holder, "state": state.get(name), "last": last.get(name),
                    "last_block": blocks.get(name), "totals": totals.get(name)})
    return out


# ---- backlog, listings, alerts ----------------------------------------------------------------------
def listing_counts(settings: Any) -> dict[str, Any]:
    """Listings by verdict and status, and the officers' backlog (flagged, not yet reviewed)."""
    if settings.store.backend == "sqlite":
        if not settings.listings_db.exists():
            return {"listings": 0, "by_verdict": {}, "delisted": 0, "review_backlog": 0}
        db = _ro(settings.listings_db)
        try:
            q = db.execute
            return {
                "listings": q("SELECT count(*) FROM listings").fetchone()[0],
                "by_verdict": dict(q("SELECT verdict, count(*) FROM listings WHERE verdict IS NOT NULL GROUP BY verdict").fetchall()),
                "by_marketplace": dict(q("SELECT marketplace, count(*) FROM listings GROUP BY marketplace").fetchall()),
                "delisted": q("SELECT count(*) FROM listings WHERE status='delisted'").fetchone()[0],
                "review_backlog": q("SELECT count(*) FROM listings WHERE status='active' AND review_status='new'"
                                    " AND verdict IN ('unlicensed','mislabeled','needs_review')").fetchone()[0],
            }
        finally:
            db.close()
    from listings.store import SearchQuery, open_store

    store = open_store(settings)
    try:
        c = store.counts()
        c["review_backlog"] = store.search(SearchQuery(flagged_only=True, review_status="new", limit=0)).total
        return c
    finally:
        store.close()


def verdict_events(settings: Any) -> list[tuple[str, str, int]]:
    """(verdict, source, count) of the verdict events in the event log: verdicts recorded so far."""
    db_path = settings.home / "events.sqlite"
    if not db_path.exists():
        return []
    db = _ro(db_path)
    try:
        return [(r[0] or "", r[1] or "", r[2]) for r in db.execute(
            "SELECT json_extract(data, '$.verdict'), json_extract(data, '$.source'), count(*) FROM events"
            " WHERE kind='verdict' GROUP BY 1, 2")]
    finally:
        db.close()


def registry_info(settings: Any) -> dict[str, Any]:
    from registry.store import RegistryStore

    if not settings.registry_db.exists():
        return {"licences": 0, "version": "r0"}
    rs = RegistryStore(settings.registry_db)
    try:
        return {"licences": rs.count(), "version": rs.version()}
    finally:
        rs.close()


def alert_info(settings: Any) -> dict[str, Any] | None:
    """Deliveries by state and the latest failures, from alerts/ when it is installed; None when not."""
    try:
        from alerts.store import open_alert_store
    except ImportError:
        return None
    if not (settings.home / "alerts.sqlite").exists():
        return {"pending": 0, "delivered": 0, "dead": 0, "attempts": 0, "ok_attempts": 0, "failures": []}
    st = open_alert_store(settings)
    try:
        out = dict(st.delivery_stats())
        fails = []
        for state in ("dead", "pending"):
            for r in st.deliveries(state=state, limit=10):
                d = dict(r)
                if d.get("last_error") or state == "dead":
                    fails.append({k: d.get(k) for k in ("partner_id", "alert_id", "state", "attempts", "last_at",
                                                        "last_status", "last_error", "key")})
        out["failures"] = fails[:10]
        return out
    finally:
        st.close()


def safe(part: str, fn: Any, *args: Any) -> Any:
    """Run one part of a view; its failure becomes {"error": ...} instead of failing the view."""
    try:
        return fn(*args)
    except Exception as e:  # the view must stand while one of its sources is broken
        log.warning("status part %s unavailable: %s", part, e)
        return {"error": f"{type(e).__name__}: {e}"}


# ---- readiness --------------------------------------------------------------------------------------
_browser_cache: dict[str, tuple[float, bool, str]] = {}
_browser_lock = threading.Lock()


def check_browser(executable: str, ttl: float = 600.0, clock: Any = time.monotonic) -> tuple[bool, str]:
    """Chromium can start (`--version`), cached for `ttl` seconds: it is a process start, not free."""
    with _browser_lock:
        hit = _browser_cache.get(executable)
        if hit and clock() - hit[0] < ttl:
            return hit[1], hit[2]
    path = shutil.which(executable) or executable
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        res = (False, f"browser {executable} not found or not executable ([crawl] browser_executable)")
    else:
        try:
            p = subprocess.run([path, "--headless", "--no-sandbox", "--version"], capture_output=True, text=True, timeout=20)
            res = (p.returncode == 0, (p.stdout or p.stderr).strip()[:200] or f"exit status {p.returncode}")
        except (OSError, subprocess.TimeoutExpired) as e:
            res = (False, f"browser {executable} does not start: {e}")
    with _browser_lock:
        _browser_cache[executable] = (clock(), *res)
    return res


def readiness(settings: Any, store: Any = None, scheduler: Any = None) -> dict[str, dict[str, Any]]:
    """Each check: {"ok": bool, "detail": str}. Ready when all are ok."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        if store is not None:
            store.get("__readyz__")
        else:
            from listings.store import open_store

            s = open_store(settings)
            try:
                s.get("__readyz__")
            finally:
                s.close()
        checks["store"] = {"ok": True, "detail": settings.store.backend}
    except Exception as e:
        checks["store"] = {"ok": False, "detail": f"the listing store does not answer: {type(e).__name__}: {e}"}
    try:
        info = registry_info(settings)
        ok = info["licences"] > 0
        checks["registry"] = {"ok": ok, "detail": f"{info['licences']} licences, version {info['version']}" if ok else
                              "the licence registry is empty: import a licence file (tiswatch registry import PATH) "
                              "or set [registry] source"}
    except Exception as e:
        checks["registry"] = {"ok": False, "detail": f"the registry cannot be read: {type(e).__name__}: {e}"}
    needs_browser = [m for m in BROWSER_MARKETPLACES if (mp := settings.marketplaces.get(m)) is not None and mp.enabled
                     and mp.base_url]
    if needs_browser and settings.ops.browser_check:
        ok, detail = check_browser(settings.crawl.browser_executable)
        checks["browser"] = {"ok": ok, "detail": detail}
    if scheduler is not None:
        checks["scheduler"] = {"ok": bool(scheduler.running), "detail": "running" if scheduler.running else "stopped"}
    if settings.distributed.enabled:  # the distributed mode's Redis (cluster/keys.py)
        from cluster.keys import readiness as redis_readiness

        checks["redis"] = redis_readiness(settings)
    return checks


def status_snapshot(settings: Any, specs: list[Any]) -> dict[str, Any]:
    """Everything the status page shows, as JSON-ready data."""
    from ops.locks import is_locked, service_lock_path

    now = datetime.now(UTC)
    jobs = safe("jobs", job_rows, settings, specs, now)
    return {
        "at": now.isoformat(timespec="seconds"),
        "service": is_locked(service_lock_path(settings.home)),
        "registry": safe("registry", registry_info, settings),
        "listings": safe("listings", listing_counts, settings),
        "jobs": jobs,
        "crawls": safe("crawls", crawl_rows, settings),
        "alerts": safe("alerts", alert_info, settings),
    }


def to_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=lambda o: o.isoformat() if isinstance(o, datetime) else str(o))
