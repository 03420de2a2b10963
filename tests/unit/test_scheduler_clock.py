"""The scheduler driven by a fake clock: APScheduler 3 with the real job store (jobs.sqlite) and the
real job definitions from the configuration; only `now` is ours and the executor records what it is
given instead of running it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import apscheduler.schedulers.base as aps_base
import pytest
from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.base import BaseScheduler

from ops.jobs import JobContext
from ops.schedule import job_specs
from scheduler import build_scheduler, run_now, sync_jobs
from settings import load_settings

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self, t: datetime):
        self.t = t

    def advance(self, **kw) -> datetime:
        self.t += timedelta(**kw)
        return self.t


class ManualScheduler(BaseScheduler):
    """Does nothing by itself: the test calls _process_jobs() at the times it chooses."""

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)


class Recorder(BaseExecutor):
    def __init__(self) -> None:
        super().__init__()
        self.fired: list[tuple[str, list[datetime]]] = []

    def _do_submit_job(self, job, run_times) -> None:
        self.fired.append((job.id, list(run_times)))
        self._run_job_success(job.id, [])


@pytest.fixture
def clock(monkeypatch):
    c = Clock(T0)

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return c.t.astimezone(tz) if tz else c.t.replace(tzinfo=None)

    monkeypatch.setattr(aps_base, "datetime", FakeDatetime)
    return c


def _settings(tmp_path, **schedule):
    base = {"crawl": "every 6h", "revisit": "off", "recheck": "off", "alerts": "off", "digest": "cron 0 8 * * *",
            "removals": "off", "retention": "off"}
    base.update(schedule)
    return load_settings(home=tmp_path / "home", environ={}, schedule=base)


def _boot(settings, clock):
    rec = Recorder()
    sched = build_scheduler(settings, JobContext(settings), scheduler_cls=ManualScheduler, executor=rec)
    sched.start(paused=True)
    changes = sync_jobs(sched, job_specs(settings), settings.schedule.timezone, now=clock.t)
    sched.resume()
    return sched, rec, changes


def _fired(rec):
    return sorted((j, len(t), t[-1]) for j, t in rec.fired)


def test_jobs_fire_when_due_and_not_before(tmp_path, clock):
    s = _settings(tmp_path)
    sched, rec, changes = _boot(s, clock)
    assert sorted(changes["added"]) == ["crawl:lazada", "crawl:shopee", "digest"]
    sched._process_jobs()
    assert rec.fired == []
    clock.advance(minutes=59)
    sched._process_jobs()
    assert rec.fired == []
    # 08:00 in Bangkok is 01:00 UTC: the digest fires then, the crawls not yet
    clock.t = T0 + timedelta(hours=1)
    sched._process_jobs()
    assert _fired(rec) == [("digest", 1, T0 + timedelta(hours=1))]
    rec.fired.clear()
    clock.t = T0 + timedelta(hours=5, minutes=59, seconds=59)
    sched._process_jobs()
    assert rec.fired == []
    clock.t = T0 + timedelta(hours=6)
    sched._process_jobs()
    assert _fired(rec) == [("crawl:lazada", 1, T0 + timedelta(hours=6)), ("crawl:shopee", 1, T0 + timedelta(hours=6))]
    rec.fired.clear()
    clock.advance(seconds=1)
    sched._process_jobs()
    assert rec.fired == []
    assert sched.get_job("crawl:shopee").next_run_time == T0 + timedelta(hours=12)
    sched.shutdown()


def test_a_week_of_downtime_is_made_up_once_per_job(tmp_path, clock):
    s = _settings(tmp_path)
    sched, rec, _ = _boot(s, clock)
    clock.t = T0 + timedelta(hours=6)
    sched._process_jobs()
    assert sorted(j for j, _ in rec.fired) == ["crawl:lazada", "crawl:shopee", "digest"]
    sched.shutdown()

    # the service is down for a week; a new process starts on the same jobs.sqlite
    clock.t = T0 + timedelta(days=7, hours=1, minutes=30)
    sched2, rec2, changes = _boot(s, clock)
    assert sorted(changes["kept"]) == ["crawl:lazada", "crawl:shopee", "digest"] and not changes["added"]
    missed = sched2.get_job("crawl:shopee")._get_run_times(clock.t)
    assert len(missed) == 27  # 12:00 on day 0 .. 00:00 on day 7, every 6 h
    sched2._process_jobs()
    fired = _fired(rec2)
    # one run each, for the latest missed time, not 27 (or 7 digests)
    assert fired == [("crawl:lazada", 1, T0 + timedelta(days=7)), ("crawl:shopee", 1, T0 + timedelta(days=7)),
                     ("digest", 1, T0 + timedelta(days=7, hours=1))]
    assert sched2.get_job("crawl:shopee").next_run_time == T0 + timedelta(days=7, hours=6)
    rec2.fired.clear()
    sched2._process_jobs()
    assert rec2.fired == []
    sched2.shutdown()


def test_changed_schedule_is_rescheduled_and_removed_job_goes(tmp_path, clock):
    s = _settings(tmp_path)
    sched, _, _ = _boot(s, clock)
    sched.shutdown()
    clock.advance(hours=1)
    s2 = load_settings(home=tmp_path / "home", environ={},
                       schedule={"crawl": "every 12h", "revisit": "off", "recheck": "off", "alerts": "off",
                                 "digest": "off", "removals": "off", "retention": "off",
                                 "marketplaces": {"lazada": "every 6h"}})
    sched2, _rec2, changes = _boot(s2, clock)
    assert changes["rescheduled"] == ["crawl:shopee"]
    assert changes["kept"] == ["crawl:lazada"]
    assert changes["removed"] == ["digest"]
    assert sched2.get_job("crawl:shopee").next_run_time == clock.t + timedelta(hours=12)
    assert sched2.get_job("crawl:lazada").next_run_time == T0 + timedelta(hours=6)  # kept its time
    sched2.shutdown()


def test_run_now_and_keyword_groups(tmp_path, clock):
    s = _settings(tmp_path, digest="off", groups={"power": {"marketplaces": ["lazada"], "keywords": ["พาวเวอร์แบงค์"],
                                                            "every": "cron 0 */4 * * *"}})
    sched, rec, changes = _boot(s, clock)
    assert "crawl:lazada:power" in changes["added"]
    run_now(sched, "crawl:shopee", clock.t)
    run_now(sched, "recheck", clock.t)  # not scheduled ("off"): a one-off run
    sched._process_jobs()
    assert sorted(j for j, _ in rec.fired) == ["crawl:shopee", "recheck@now"]
    assert sched.get_job("recheck@now") is None  # a one-off run goes once it ran
    assert sched.get_job("crawl:shopee").next_run_time == T0 + timedelta(hours=6)  # back on its schedule
    rec.fired.clear()
    # the group's cron (every 4 h from midnight, Bangkok time): 08:00 Bangkok = 01:00 UTC
    clock.t = T0 + timedelta(minutes=59)
    sched._process_jobs()
    assert rec.fired == []
    clock.t = T0 + timedelta(hours=1)
    sched._process_jobs()
    assert [j for j, _ in rec.fired] == ["crawl:lazada:power"]
    sched.shutdown()
