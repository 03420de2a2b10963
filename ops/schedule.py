"""What runs when: schedules written in the configuration, turned into job specifications. Pure: no
I/O, no clock (times are passed in).

A schedule is one short string, so that an operator can read and write it in a TOML file:

| written                  | means                                                        |
|--------------------------|--------------------------------------------------------------|
| `every 6h`               | every six hours (units s, m, h, d, w; `every 1h30m` too)     |
| `cron 0 */4 * * *`       | a five-field crontab line (minute hour day month weekday),   |
|                          | in `[schedule] timezone`                                     |
| `off` (or empty)         | never (the job is not scheduled; `tiswatch jobs run` still works) |

Job ids name what a job does: `crawl:shopee`, `crawl:lazada:power_banks` (a keyword group),
`revisit:shopee`, `registry`, `recheck`, `alerts`, `digest`, `removals`, `retention`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MIN_INTERVAL = timedelta(seconds=10)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EVERY = re.compile(r"^(?:(\d+)\s*([smhdw])\s*)+$")
_PART = re.compile(r"(\d+)\s*([smhdw])")
KINDS = ("crawl", "revisit", "registry", "recheck", "alerts", "digest", "removals", "retention")


class ScheduleError(ValueError):
    """A schedule string that is not one; the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class Every:
    seconds: int

    def __str__(self) -> str:
        s, out = self.seconds, ""
        for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if s >= size and (s // size):
                out += f"{s // size}{unit}"
                s %= size
        return f"every {out}"

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Cron:
    expr: str  # the five fields, single-spaced

    def __str__(self) -> str:
        return f"cron {self.expr}"


Trigger = Every | Cron


def parse_schedule(text: str | None) -> Trigger | None:
    """`every 6h`, `cron 0 3 * * *`, `off` → Every, Cron, None. Raises ScheduleError saying why."""
    t = " ".join((text or "").strip().split())
    low = t.lower()
    if low in ("", "off", "never", "none", "disabled"):
        return None
    if low.startswith("every"):
        body = low[5:].strip()
        if not body or not _EVERY.match(body):
            raise ScheduleError(f"{text!r}: write `every` and a duration with units s, m, h, d or w, e.g. `every 6h`, "
                                "`every 1h30m`")
        seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(body))
        if seconds < MIN_INTERVAL.total_seconds():
            raise ScheduleError(f"{text!r}: an interval must be at least {int(MIN_INTERVAL.total_seconds())} seconds")
        return Every(seconds)
    if low.startswith("cron"):
        expr = t[4:].strip()
        _check_cron(text or "", expr)
        return Cron(expr)
    raise ScheduleError(f"{text!r}: a schedule is `every <duration>` (e.g. `every 6h`), `cron <m h dom mon dow>` "
                        "(e.g. `cron 0 3 * * *`) or `off`")


def _check_cron(text: str, expr: str) -> None:
    fields = expr.split()
    if len(fields) != 5:
        raise ScheduleError(f"{text!r}: a cron schedule has five fields (minute hour day-of-month month day-of-week), "
                            f"this one has {len(fields)}")
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as e:
        raise ScheduleError(f"{text!r}: {e}") from None


def to_apscheduler(trigger: Trigger, timezone: str, anchor: datetime | None = None):
    """The APScheduler 3 trigger. `anchor` is when an interval starts counting (default: now + interval,
    APScheduler's own default); tests pass a fixed one."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if isinstance(trigger, Every):
        kw: dict[str, Any] = {"seconds": trigger.seconds, "timezone": timezone}
        if anchor is not None:
            kw["start_date"] = anchor + trigger.interval
        return IntervalTrigger(**kw)
    return CronTrigger.from_crontab(trigger.expr, timezone=timezone)


def next_fire(trigger: Trigger, timezone: str, after: datetime) -> datetime | None:
    """When a trigger fires next after `after` (an interval counted from `after`)."""
    t = to_apscheduler(trigger, timezone, anchor=after)
    return t.get_next_fire_time(None, after)


# ---- job specifications ---------------------------------------------------------------------------
@dataclass(frozen=True)
class JobSpec:
    id: str
    kind: str
    trigger: Trigger | None  # None: not scheduled, run by hand only
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def schedule(self) -> str:
        return str(self.trigger) if self.trigger else "off"

    def fingerprint(self) -> str:
        """Changes when the schedule or what the job does changes; the scheduler then reschedules it."""
        data = json.dumps([self.kind, self.schedule, self.params], sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    @property
    def marketplace(self) -> str | None:
        return self.params.get("marketplace")


class JobConfigError(ValueError):
    """The [schedule] section is inconsistent with the rest of the configuration; names the key."""


def job_specs(settings: Any) -> list[JobSpec]:
    """Every job the configuration asks for, scheduled or not, in a stable order. Raises JobConfigError
    naming the key when a group or override refers to a marketplace that does not exist."""
    sc = settings.schedule
    mps = {name: mp for name, mp in settings.marketplaces.items()}
    usable = [n for n, mp in mps.items() if mp.enabled and (mp.base_url or mp.start_urls)]
    for name in sc.marketplaces:
        if name not in mps:
            raise JobConfigError(f"config key `schedule.marketplaces.{name}`: no marketplace {name!r} "
                                 f"(configured: {', '.join(sorted(mps))})")
    specs: list[JobSpec] = []
    for name in usable:
        trig = parse_schedule(sc.marketplaces.get(name, sc.crawl))
        specs.append(JobSpec(f"crawl:{name}", "crawl", trig, {"marketplace": name},
                             f"crawl {name}: its keywords and categories ([marketplaces.{name}])"))
    for gname, g in sc.groups.items():
        targets = g.marketplaces or usable
        for m in targets:
            if m not in mps:
                raise JobConfigError(f"config key `schedule.groups.{gname}.marketplaces`: no marketplace {m!r} "
                                     f"(configured: {', '.join(sorted(mps))})")
        for m in targets:
            if m not in usable:
                continue  # disabled, or without a base URL: nothing to crawl
            params: dict[str, Any] = {"marketplace": m, "group": gname, "keywords": list(g.keywords),
                                      "categories": list(g.categories)}
            if g.max_search_pages is not None:
                params["max_search_pages"] = g.max_search_pages
            specs.append(JobSpec(f"crawl:{m}:{gname}", "crawl", parse_schedule(g.every), params,
                                 f"crawl {m}: keyword group {gname} ({len(g.keywords)} keywords, {len(g.categories)} categories)"))
    for name in usable:
        specs.append(JobSpec(f"revisit:{name}", "revisit", parse_schedule(sc.revisit), {"marketplace": name},
                             f"fetch again the pages of {name} listings that are due (flagged and changed ones first)"))
    specs.append(JobSpec("registry", "registry", parse_schedule(sc.registry_refresh) if settings.registry.source else None,
                         {"source": settings.registry.source},
                         "import [registry] source when it has a new version, then re-check affected listings"))
    specs.append(JobSpec("recheck", "recheck", parse_schedule(sc.recheck), {},
                         "re-check stored listings touched by licences changed since the last re-check"))
    specs.append(JobSpec("alerts", "alerts", parse_schedule(sc.alerts), {}, "deliver partner alerts that are due"))
    specs.append(JobSpec("digest", "digest", parse_schedule(sc.digest), {}, "send yesterday's alert digests"))
    specs.append(JobSpec("removals", "removals", parse_schedule(sc.removals), {},
                         "check that listings partners reported removed are gone"))
    specs.append(JobSpec("retention", "retention", parse_schedule(sc.retention), {},
                         "prune evidence and observations by the retention policy"))
    return specs


# ---- revisits: which listings' pages to fetch again --------------------------------------------------
@dataclass(frozen=True)
class RevisitPolicy:
    """How often a listing's page is fetched again when regular crawls do not see it: flagged listings
    (officers act on them and their evidence must be current) most often, listings that changed lately
    next, quiet ones least."""

    flagged: timedelta = timedelta(hours=24)
    changed: timedelta = timedelta(hours=72)
    quiet: timedelta = timedelta(days=14)
    changed_window: timedelta = timedelta(days=7)  # "changed lately": a change recorded this recently
    limit: int = 200

    @property
    def shortest(self) -> timedelta:
        return min(self.flagged, self.changed, self.quiet)


FLAGGED = frozenset({"unlicensed", "mislabeled", "needs_review"})


def _aware(dt: Any) -> datetime | None:
    if dt is None:
        return None
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return dt


def tier(row: dict[str, Any], changed: set[str]) -> str:
    if row.get("verdict") in FLAGGED:
        return "flagged"
    return "changed" if row["key"] in changed else "quiet"


def select_revisits(candidates: list[dict[str, Any]], changed: set[str], now: datetime,
                    policy: RevisitPolicy) -> list[dict[str, Any]]:
    """From listings not fetched for at least the shortest interval (each a dict with key, url, verdict
    and `fetched`, the time of the last fetch), those due under the policy: flagged first, then changed,
    then quiet, oldest fetch first within a tier; at most `policy.limit`. Rows without a URL are skipped."""
    order = {"flagged": 0, "changed": 1, "quiet": 2}
    every = {"flagged": policy.flagged, "changed": policy.changed, "quiet": policy.quiet}
    due = []
    for r in candidates:
        if not r.get("url"):
            continue
        fetched = _aware(r.get("fetched"))
        t = tier(r, changed)
        if fetched is None or now - fetched >= every[t]:
            due.append((order[t], fetched or datetime.min.replace(tzinfo=now.tzinfo), r["key"], {**r, "tier": t}))
    due.sort(key=lambda x: (x[0], x[1], x[2]))
    return [d[3] for d in due[: max(0, policy.limit)]]
