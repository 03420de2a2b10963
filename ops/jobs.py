"""Running one job: the same path for a scheduled run, a run made up after downtime, and
`tiswatch jobs run NAME`.

Every run takes the job's lock file (so the service and a manual run never overlap), is recorded in
the run history (jobs.sqlite) with its duration and result, and logs with the job id (and marketplace)
in every line. What a job does depends on its kind:

| kind        | does                                                                                     |
|-------------|------------------------------------------------------------------------------------------|
| `crawl`     | a crawl child for one marketplace (its configured searches, or a keyword group's)       |
| `revisit`   | a crawl child fetching the pages of due listings again (flagged, then changed, then quiet) |
| `registry`  | import `[registry] source` when it has a new version, then re-check affected listings     |
| `recheck`   | re-check listings touched by licences changed since the last re-check (any import)      |
| `alerts`    | turn new events into alerts and deliver what is due (alerts/)                           |
| `digest`    | send yesterday's alert digests (alerts/)                                                 |
| `removals`  | check that listings partners reported removed are gone (alerts/)                         |
| `retention` | prune evidence and observations by the retention policy (listings/)                     |

Jobs of one marketplace wait for each other in this process; a crawl started elsewhere (a manual
`tiswatch crawl`) holds the marketplace's lock file and the job is recorded as `skipped`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.history import History, crawl_row, open_history
from ops.locks import Busy, FileLock, crawl_lock_path, is_locked, job_lock_path
from ops.logs import log_context
from ops.schedule import JobSpec, RevisitPolicy, job_specs, select_revisits

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class UnknownJob(KeyError):
    def __str__(self) -> str:
        return f"no job {self.args[0]!r}"


@dataclass
class JobContext:
    """What jobs share in one process: settings, the stop signal of a shutting-down service, the clock,
    the run history, and one in-process lock per marketplace."""

    settings: Any
    config: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], datetime] = _utcnow
    scheduled: dict[str, datetime] = field(default_factory=dict)  # job id -> the run time being run
    _history: History | None = None
    _specs: dict[str, JobSpec] | None = None
    _mp_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def history(self) -> History:
        with self._guard:
            if self._history is None:
                self._history = open_history(self.settings)
            return self._history

    def specs(self) -> dict[str, JobSpec]:
        if self._specs is None:
            self._specs = {s.id: s for s in job_specs(self.settings)}
        return self._specs

    def marketplace_lock(self, marketplace: str) -> threading.Lock:
        with self._guard:
            return self._mp_locks.setdefault(marketplace, threading.Lock())

    def crawls_running(self) -> bool:
        return any(is_locked(crawl_lock_path(self.settings.home, m)) for m in self.settings.marketplaces)

    def close(self) -> None:
        if self._history is not None:
            self._history.close()
            self._history = None


_context: JobContext | None = None


def install(ctx: JobContext | None) -> None:
    """Make `ctx` the context of scheduled runs in this process (the service sets it at start)."""
    global _context
    _context = ctx


def current() -> JobContext | None:
    return _context


@dataclass
class Outcome:
    job: str
    status: str
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def execute(job_id: str, fp: str | None = None) -> None:
    """What APScheduler calls (by reference, from jobs.sqlite). `fp` is the job's fingerprint when it was
    scheduled (see scheduler.sync_jobs); it is not needed to run it."""
    ctx = current()
    if ctx is None:
        log.error("job %s fired outside the tiswatch service; ignored", job_id)
        return
    run(ctx, job_id, trigger="schedule", scheduled_at=ctx.scheduled.pop(job_id, None))


def run(ctx: JobContext, job_id: str, trigger: str = "manual", scheduled_at: datetime | None = None) -> Outcome:
    """Run a job now, recorded in the history. Raises UnknownJob for an id the configuration lacks."""
    spec = ctx.specs().get(job_id)
    if spec is None:
        raise UnknownJob(job_id)
    if trigger == "schedule" and scheduled_at is not None and ctx.clock() - scheduled_at > timedelta(minutes=5):
        trigger = "catch-up"  # a run made up after downtime (missed runs coalesced into this one)
    hist = ctx.history
    lock = FileLock(job_lock_path(ctx.settings.home, job_id), what=f"job {job_id} ({trigger})")
    with log_context(job=job_id, marketplace=spec.marketplace):
        try:
            lock.acquire()
        except Busy as e:
            run_id = hist.start(job_id, spec.kind, trigger, scheduled_at, os.getpid(), at=ctx.clock())
            msg = f"already running: {e}"
            hist.finish(run_id, "skipped", 0.0, {}, msg, at=ctx.clock())
            log.warning("job %s skipped: %s", job_id, msg)
            return Outcome(job_id, "skipped", 0.0, {}, msg, run_id)
        t0 = time.monotonic()
        run_id = hist.start(job_id, spec.kind, trigger, scheduled_at, os.getpid(), at=ctx.clock())
        status, result, error = "failed", {}, None
        with log_context(run=run_id):
            try:
                if trigger == "catch-up":
                    log.info("job %s: making up the run due at %s (missed runs are coalesced into one)", job_id,
                             scheduled_at.isoformat(timespec="seconds") if scheduled_at else "?")
                log.info("job %s started (%s)", job_id, trigger)
                status, result, error = HANDLERS[spec.kind](ctx, spec)
            except Exception as e:
                log.exception("job %s failed", job_id)
                status, error = "failed", f"{type(e).__name__}: {e}"
            except BaseException:
                hist.finish(run_id, "stopped", time.monotonic() - t0, result, "interrupted", at=ctx.clock())
                lock.release()
                raise
            seconds = time.monotonic() - t0
            hist.finish(run_id, status, seconds, result, error, at=ctx.clock())
            lock.release()
            level = (logging.INFO if status in ("ok", "skipped") else
                     logging.ERROR if status in ("failed", "timed_out") else logging.WARNING)
            log.log(level, "job %s %s in %.1fs%s", job_id, status, seconds, f": {error}" if error else "")
        return Outcome(job_id, status, seconds, result, error, run_id)


# ---- crawls --------------------------------------------------------------------------------------------
def _wait_marketplace(ctx: JobContext, marketplace: str) -> threading.Lock | None:
    """The marketplace's in-process lock, waiting while another job of it runs; None when stopping."""
    lock = ctx.marketplace_lock(marketplace)
    while not lock.acquire(timeout=1.0):
        if ctx.stop.is_set():
            return None
    if ctx.stop.is_set():
        lock.release()
        return None
    return lock


def crawl_outcome(r: Any, limit: float) -> tuple[str, dict[str, Any], str | None]:
    """(status, result, error) of a finished crawl child. Pure."""
    st = r.report.get("stats", {}) if r.report else {}
    result = {"marketplace": r.marketplace, "reason": r.reason, "returncode": r.returncode, "listings": r.listings,
              "pages": int(st.get("response_received_count", 0) or st.get("downloader/response_count", 0) or 0),
              "delisted": int(r.report.get("delisted", 0) or 0) if r.report else 0,
              "seconds": round(r.seconds, 1), "log": str(r.log_path)}
    reason = r.reason
    if reason == "busy":
        return "skipped", result, f"another crawl of {r.marketplace} is running (its lock file is held)"
    if reason == "timed_out":
        return "timed_out", result, (f"the crawl child ran past its time limit ({limit:.0f}s) and was stopped; "
                                     f"see {r.log_path}")
    if reason == "blocked":
        b = r.report.get("blocked") or {}
        result["blocked"] = b
        return "blocked", result, f"blocked at {b.get('url')}: {b.get('why')}"
    if reason in ("shutdown", "stopped"):
        return "stopped", result, "stopped by the service shutting down" if r.stopped else f"crawl ended: {reason}"
    if r.ok and reason == "finished":
        return "ok", result, None
    return "failed", result, f"crawl ended: {reason} (exit status {r.returncode}); see {r.log_path}"


def _record_crawl(ctx: JobContext, r: Any, job_id: str) -> None:
    row = crawl_row(r.report, job=job_id, seconds=r.seconds) if r.report else None
    if row is not None:
        ctx.history.record_crawl(row)


def _crawl(ctx: JobContext, spec: JobSpec) -> tuple[str, dict[str, Any], str | None]:
    from crawlers.runner import run_crawl

    p = spec.params
    mp = p["marketplace"]
    kw: dict[str, Any] = {}
    if p.get("group"):
        kw["keywords"], kw["categories"] = p.get("keywords") or [], p.get("categories") or []
    if p.get("max_search_pages") is not None:
        kw["max_search_pages"] = p["max_search_pages"]
    lock = _wait_marketplace(ctx, mp)
    if lock is None:
        return "stopped", {}, "the service stopped before the crawl started"
    try:
        r = run_crawl(ctx.settings, mp, config=ctx.config, job=spec.id, stop=ctx.stop,
                      grace=ctx.settings.schedule.shutdown_grace, **kw)
    finally:
        lock.release()
    _record_crawl(ctx, r, spec.id)
    return crawl_outcome(r, ctx.settings.crawl.time_limit)


def revisit_policy(schedule: Any) -> RevisitPolicy:
    return RevisitPolicy(flagged=timedelta(hours=schedule.revisit_flagged_hours),
                         changed=timedelta(hours=schedule.revisit_changed_hours),
                         quiet=timedelta(days=schedule.revisit_quiet_days),
                         changed_window=timedelta(days=schedule.revisit_changed_days), limit=schedule.revisit_max)


def due_revisits(store: Any, marketplace: str, now: datetime, policy: RevisitPolicy) -> list[dict[str, Any]]:
    """The listings of a marketplace whose pages are due to be fetched again, most urgent first."""
    shortest = policy.shortest
    cands = store.due_refetch(marketplace, before=now - min(policy.changed, policy.quiet),
                              flagged_before=now - policy.flagged, unseen_since=now - shortest,
                              limit=max(policy.limit * 10, 1000))
    changed = store.changed_keys(marketplace, now - policy.changed_window)
    return select_revisits(cands, changed, now, policy)


def _revisit(ctx: JobContext, spec: JobSpec) -> tuple[str, dict[str, Any], str | None]:
    from crawlers.runner import run_crawl
    from listings.store import open_store

    mp = spec.params["marketplace"]
    policy = revisit_policy(ctx.settings.schedule)
    store = open_store(ctx.settings)
    try:
        due = due_revisits(store, mp, ctx.clock(), policy)
    finally:
        store.close()
    tiers = {t: sum(1 for d in due if d["tier"] == t) for t in ("flagged", "changed", "quiet")}
    if not due:
        return "ok", {"marketplace": mp, "due": 0}, None
    path = ctx.settings.crawl_dir / mp / "revisit-urls.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(d["url"] + "\n" for d in due), "utf-8")
    lock = _wait_marketplace(ctx, mp)
    if lock is None:
        return "stopped", {"marketplace": mp, "due": len(due)}, "the service stopped before the revisit started"
    try:
        r = run_crawl(ctx.settings, mp, config=ctx.config, job=spec.id, stop=ctx.stop, urls_file=path,
                      grace=ctx.settings.schedule.shutdown_grace)
    finally:
        lock.release()
    _record_crawl(ctx, r, spec.id)
    status, result, error = crawl_outcome(r, ctx.settings.crawl.time_limit)
    result.update(due=len(due), tiers=tiers)
    return status, result, error


# ---- registry ------------------------------------------------------------------------------------------
def _recheck(ctx: JobContext, spec: JobSpec) -> tuple[str, dict[str, Any], str | None]:
    from ops.recheck import recheck

    res = recheck(ctx.settings, history=ctx.history, clock=ctx.clock, crawls_running=ctx.crawls_running,
                  stop=ctx.stop.is_set)
    if res.get("stopped"):
        return "stopped", res, "stopped by the service shutting down; the next run goes on from the same point"
    return "ok", res, None


def _registry(ctx: JobContext, spec: JobSpec) -> tuple[str, dict[str, Any], str | None]:
    from ops.registry_source import SourceError, refresh

    try:
        res = refresh(ctx.settings, ctx.history)
    except SourceError as e:
        return "failed", {"source": ctx.settings.registry.source}, str(e)
    if res.get("changed"):
        status, rc, err = _recheck(ctx, spec)
        res["recheck"] = rc
        return status, res, err
    return "ok", res, None


# ---- alerts (alerts/) ----------------------------------------------------------------------------------
def _alerts(ctx: JobContext, spec: JobSpec) -> tuple[str, dict[str, Any], str | None]:
    """Turn new events into alerts and deliver what is due, once (alerts.delivery.deliver drains)."""
    import dataclasses

    from alerts.delivery import deliver

    stats = deliver(ctx.settings, stop=ctx.stop)
    result = dataclasses.asdict(stats)
    err = f"{stats.failed} delivery attempts failed, {stats.dead} given up" if stats.failed or stats.dead else None
    return "ok", result, err


def _digest(ctx: JobContext, spec: JobSpec) -> tuple[str, dict[str, Any], str | None]:
    """Yesterday's digests (Bangkok) not sent yet; a digest already sent is skipped, so a catch-up or
    a second run sends nothing twice."""
    from alerts.digest import collect, previous_day, send_digests
    from alerts.service import open_service

    svc = open_service(ctx.settings)
    try:
        svc.engine.process_all()
        if not ctx.settings.alerts.smtp.host and not collect(svc, previous_day(svc.clock.now())):
            return "ok", {"digests": {}}, None  # no recipients: nothing to send, no SMTP needed
        out = send_digests(svc)
    finally:
        svc.close()
    counts: dict[str, int] = {}
    for o in out:
        counts[o.status] = counts.get(o.status, 0) + 1
    failed = [f"{o.recipient or '-'}: {o.detail}" for o in out if o.status == "failed"]
    return ("failed" if failed else "ok"), {"digests": counts}, "; ".join(failed)[:500] or None


def _removals(ctx: JobContext, spec: JobSpec) -> tuple[str, dict[str, Any], str | None]:
    """Check that listings a partner reported as removed are gone (alerts.verify)."""
    import dataclasses

    from alerts.service import open_service
    from alerts.verify import verify_removals

    svc = open_service(ctx.settings)
    a = ctx.settings.alerts
    try:
        r = verify_removals(svc.store, svc.listings, svc.clock, http_marketplaces=tuple(a.verify_http_marketplaces),
                            give_up=timedelta(days=a.verify_days), user_agent=ctx.settings.crawl.user_agent)
    finally:
        svc.close()
    return "ok", dataclasses.asdict(r) if dataclasses.is_dataclass(r) else {"result": str(r)}, None


# ---- retention -------------------------------------------------------------------------------------
def _evidence_retention(ctx: JobContext) -> dict[str, Any] | None:
    """The listing store's evidence retention (listings/retention.py, `tiswatch store prune-evidence`):
    files older than [store] evidence_retention_days, except evidence an officer acted on and the newest
    capture of a flagged listing. None when this version has no retention module."""
    try:
        from listings.retention import Policy, decided_keys, prune
    except ImportError:
        return None
    from listings.events import open_events
    from listings.store import open_store

    st = ctx.settings.store
    policy = Policy(st.evidence_retention_days, getattr(st, "evidence_keep_latest_flagged", True))
    if policy.days <= 0:
        return {"evidence": "retention off ([store] evidence_retention_days = 0)"}
    store, events = open_store(ctx.settings), open_events(ctx.settings)
    try:
        rep = prune(store, ctx.settings.home, policy, decided_keys(events), ctx.clock())
    finally:
        store.close()
        events.close()
    return {"evidence_captures_pruned": rep.pruned, "evidence_files": rep.files, "evidence_bytes": rep.bytes,
            "kept": rep.kept, "problems": rep.problems[:10]}


def _retention(ctx: JobContext, spec: JobSpec) -> tuple[str, dict[str, Any], str | None]:
    """The job history (runs older than [schedule] history_days, rolled up for /metrics), then the
    evidence files by the listing store's retention policy."""
    pruned = ctx.history.prune(ctx.clock() - timedelta(days=ctx.settings.schedule.history_days))
    ev = _evidence_retention(ctx)
    if ev is None:
        return "ok", {"job_runs_pruned": pruned}, "evidence retention is not available in this version (listings.retention)"
    from listings.retention import run_observation_retention  # [store] observation_retention_days

    obs = run_observation_retention(ctx.settings, ctx.clock())
    problems = ev.get("problems") or []
    return "ok", {"job_runs_pruned": pruned, **ev, **obs}, ("; ".join(problems)[:500] or None)


HANDLERS: dict[str, Callable[[JobContext, JobSpec], tuple[str, dict[str, Any], str | None]]] = {
    "crawl": _crawl, "revisit": _revisit, "registry": _registry, "recheck": _recheck,
    "alerts": _alerts, "digest": _digest, "removals": _removals, "retention": _retention,
}
