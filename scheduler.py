"""What runs when (APScheduler 3.x). First form: one crawl job per enabled marketplace, each in a child
process, at most one at a time per marketplace, missed runs coalesced, jobs kept in jobs.sqlite."""

from __future__ import annotations

import logging

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from settings import Settings

log = logging.getLogger(__name__)


def crawl_job(home: str, config: str | None, marketplace: str) -> dict:
    from crawlers.runner import run_crawl
    from settings import load_settings

    s = load_settings(config=config, home=home)
    r = run_crawl(s, marketplace, config=config)
    log.info("crawl %s: %s, %d listings in %.0fs", marketplace, r.reason, r.listings, r.seconds)
    return {"marketplace": marketplace, "reason": r.reason, "listings": r.listings}


def start_scheduler(settings: Settings, config: str | None = None, hours: float = 6.0) -> BackgroundScheduler:
    settings.ensure_home()
    sched = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{settings.jobs_db}")},
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone="Asia/Bangkok",
    )
    for name, mp in settings.marketplaces.items():
        if mp.enabled and (mp.base_url or mp.start_urls):
            sched.add_job(crawl_job, "interval", hours=hours, id=f"crawl:{name}", name=f"crawl {name}",
                          args=[str(settings.home.resolve()), config, name], replace_existing=True)
    sched.start()
    return sched
