"""What runs when (APScheduler 3.x): the jobs the configuration asks for (ops/schedule.py), kept in
the data directory's jobs.sqlite so that a restart keeps each job's next run time.

- Missed runs coalesce: after a restart, or a week of downtime, a job that missed one or many runs
  runs once, at once (coalesce=True, no misfire grace limit), then follows its schedule again.
- One instance of a job at a time (max_instances=1); crawls of one marketplace wait for each other,
  and a crawl started outside the service (the marketplace's lock file) makes the job skip.
- A job whose schedule or parameters did not change keeps its next run time across restarts; a
  changed one is rescheduled; one no longer configured (or now "off") is removed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from ops.jobs import JobContext
from ops.schedule import JobSpec, to_apscheduler
from settings import Settings

log = logging.getLogger(__name__)
JOB_FUNC = "ops.jobs:execute"


class _Executor(ThreadPoolExecutor):
    """Notes which run time a job is being run for (a run made up after downtime says so)."""

    def __init__(self, ctx: JobContext | None, max_workers: int):
        super().__init__(max_workers)
        self.ctx = ctx

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        if self.ctx is not None and run_times:
            self.ctx.scheduled[job.id] = run_times[-1]
        super().submit_job(job, run_times)


def build_scheduler(settings: Settings, ctx: JobContext | None = None, *, scheduler_cls: type = BackgroundScheduler,
                    executor: Any = None) -> BaseScheduler:
    """A scheduler on the data directory's job store, not started. Tests pass their own scheduler class
    and executor to drive it with explicit times."""
    settings.ensure_home()
    workers = max(4, len(settings.marketplaces) * 2 + len(settings.schedule.groups) + 4)
    return scheduler_cls(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{settings.jobs_db}")},
        executors={"default": executor or _Executor(ctx, workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=settings.schedule.timezone,
    )


def sync_jobs(sched: BaseScheduler, specs: list[JobSpec], timezone: str, now: datetime | None = None) -> dict[str, list[str]]:
    """Make the scheduler's jobs those of `specs` (scheduled ones). The scheduler must be started
    (paused is fine) so that the persisted jobs are visible. `now` anchors new interval schedules."""
    out: dict[str, list[str]] = {"added": [], "rescheduled": [], "kept": [], "removed": []}
    existing = {j.id: j for j in sched.get_jobs()}
    for spec in specs:
        if spec.trigger is None:
            continue
        fp = spec.fingerprint()
        job = existing.pop(spec.id, None)
        if job is not None and job.kwargs.get("fp") == fp and job.func_ref == JOB_FUNC:
            out["kept"].append(spec.id)
            continue
        sched.add_job(JOB_FUNC, to_apscheduler(spec.trigger, timezone, anchor=now), args=[spec.id], kwargs={"fp": fp},
                      id=spec.id, name=spec.description[:200], replace_existing=True)
        out["rescheduled" if job is not None else "added"].append(spec.id)
    for job_id in existing:
        if "@" in job_id:  # one-off runs (`tiswatch run --now`) remove themselves
            continue
        sched.remove_job(job_id)
        out["removed"].append(job_id)
    for k, ids in out.items():
        if ids and k != "kept":
            log.info("jobs %s: %s", k, ", ".join(ids))
    return out


def run_now(sched: BaseScheduler, job_id: str, now: datetime) -> None:
    """Run a job at once in the service (`tiswatch run --now ID`): its next run moves to now; a job not
    scheduled gets a one-off run."""
    job = sched.get_job(job_id)
    if job is not None:
        job.modify(next_run_time=now)
    else:
        sched.add_job(JOB_FUNC, "date", run_date=now, args=[job_id], id=f"{job_id}@now", replace_existing=True)
