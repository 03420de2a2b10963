"""Schedules written in the configuration, the jobs they make, and which listings a revisit fetches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops.schedule import (
    Cron,
    Every,
    JobConfigError,
    RevisitPolicy,
    ScheduleError,
    job_specs,
    next_fire,
    parse_schedule,
    select_revisits,
)
from settings import ConfigError, load_settings


@pytest.mark.parametrize("text, expected", [
    ("every 6h", Every(6 * 3600)),
    ("every 1h30m", Every(5400)),
    ("  Every   90 m ", Every(5400)),
    ("every 2d", Every(2 * 86400)),
    ("every 1w", Every(7 * 86400)),
    ("every 10s", Every(10)),
    ("cron 0 */4 * * *", Cron("0 */4 * * *")),
    ("cron 30  3 * * mon-fri", Cron("30 3 * * mon-fri")),
    ("off", None), ("", None), ("never", None), (None, None),
])
def test_schedules_that_parse(text, expected):
    assert parse_schedule(text) == expected


@pytest.mark.parametrize("text, says", [
    ("every", "a duration with units"),
    ("every 6", "a duration with units"),
    ("every 6x", "a duration with units"),
    ("every 5s", "at least 10 seconds"),
    ("cron 0 3 * *", "five fields"),
    ("cron 61 3 * * *", "61"),
    ("cron 0 3 * * funday", "funday"),
    ("daily", "a schedule is"),
    ("6h", "a schedule is"),
])
def test_schedules_that_do_not_say_why(text, says):
    with pytest.raises(ScheduleError) as e:
        parse_schedule(text)
    assert says in str(e.value) and repr(text) in str(e.value)


def test_schedule_round_trips_and_next_fire():
    assert str(Every(5400)) == "every 1h30m" and str(Cron("0 3 * * *")) == "cron 0 3 * * *"
    t = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    assert next_fire(Every(3600), "UTC", t) == t + timedelta(hours=1)
    # 03:00 in Bangkok (UTC+7) is 20:00 UTC the day before
    assert next_fire(Cron("0 3 * * *"), "Asia/Bangkok", t) == datetime(2026, 1, 5, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize("section, key", [
    ({"crawl": "every 6x"}, "schedule.crawl"),
    ({"digest": "cron 0 8 * *"}, "schedule.digest"),
    ({"timezone": "Mars/Olympus"}, "schedule.timezone"),
    ({"marketplaces": {"shopee": "hourly"}}, "schedule.marketplaces"),
    ({"groups": {"g": {"keywords": ["x"], "every": "sometimes"}}}, "schedule.groups.g.every"),
    ({"groups": {"g": {"every": "every 1h"}}}, "schedule.groups.g"),
    ({"groups": {"bad name!": {"keywords": ["x"]}}}, "schedule.groups"),
    ({"crawl_every": "every 1h"}, "schedule.crawl_every"),
])
def test_bad_schedule_config_names_the_key(tmp_path, section, key):
    cfg = tmp_path / "c.toml"
    lines = ["[schedule]"]
    for k, v in section.items():
        if isinstance(v, dict):
            continue
        lines.append(f'{k} = "{v}"')
    for k, v in section.items():
        if k == "marketplaces":
            lines.append("[schedule.marketplaces]\n" + "\n".join(f'{m} = "{t}"' for m, t in v.items()))
        elif k == "groups":
            for g, body in v.items():
                lines.append(f'[schedule.groups."{g}"]')
                for bk, bv in body.items():
                    lines.append(f"{bk} = " + (f'"{bv}"' if isinstance(bv, str) else str(bv).replace("'", '"')))
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(config=cfg, environ={})
    assert f"`{key}`" in str(e.value) and str(cfg) in str(e.value)


def test_jobs_from_configuration(tmp_path):
    s = load_settings(home=tmp_path, environ={}, registry={"source": "/data/licences.xlsx"},
                      marketplaces={"shop": {"base_url": "http://shop.example"}, "lazada": {"enabled": False}},
                      schedule={"marketplaces": {"shopee": "cron 0 */8 * * *"},
                                "groups": {"power": {"keywords": ["พาวเวอร์แบงค์"], "every": "every 2h", "max_search_pages": 1},
                                           "helmets": {"marketplaces": ["lazada", "shop"], "categories": ["/helmets/"]}}})
    specs = {j.id: j for j in job_specs(s)}
    assert list(specs) == ["crawl:shopee", "crawl:shop", "crawl:shopee:power", "crawl:shop:power", "crawl:shop:helmets",
                           "revisit:shopee", "revisit:shop", "registry", "recheck", "alerts", "digest", "removals",
                           "retention"]
    assert specs["crawl:shopee"].schedule == "cron 0 */8 * * *" and specs["crawl:shop"].schedule == "every 6h"
    assert specs["crawl:shopee:power"].params == {"marketplace": "shopee", "group": "power", "keywords": ["พาวเวอร์แบงค์"],
                                                  "categories": [], "max_search_pages": 1}
    assert specs["crawl:shop:helmets"].params["categories"] == ["/helmets/"]  # lazada is disabled: no job
    assert specs["registry"].schedule == "every 6h"
    # no source: the registry job exists (to run by hand) but is not scheduled
    assert next(j for j in job_specs(load_settings(home=tmp_path, environ={})) if j.id == "registry").trigger is None


def test_fingerprint_follows_schedule_and_parameters(tmp_path):
    a = {j.id: j for j in job_specs(load_settings(home=tmp_path, environ={}))}
    b = {j.id: j for j in job_specs(load_settings(home=tmp_path, environ={}, schedule={"crawl": "every 12h"}))}
    c = {j.id: j for j in job_specs(load_settings(home=tmp_path, environ={}, schedule={"crawl": "every 360m"}))}
    assert a["crawl:shopee"].fingerprint() != b["crawl:shopee"].fingerprint()
    assert a["crawl:shopee"].fingerprint() == c["crawl:shopee"].fingerprint()  # the same schedule, written otherwise
    assert a["alerts"].fingerprint() == b["alerts"].fingerprint()


def test_group_naming_an_unknown_marketplace(tmp_path):
    s = load_settings(home=tmp_path, environ={}, schedule={"groups": {"g": {"marketplaces": ["tiktok"], "keywords": ["x"]}}})
    with pytest.raises(JobConfigError, match=r"`schedule.groups.g.marketplaces`: no marketplace 'tiktok'"):
        job_specs(s)
    s = load_settings(home=tmp_path, environ={}, schedule={"marketplaces": {"tiktok": "every 1h"}})
    with pytest.raises(JobConfigError, match=r"`schedule.marketplaces.tiktok`"):
        job_specs(s)


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _row(key, verdict, hours_ago, url="http://x/"):
    return {"key": key, "url": url and url + key, "verdict": verdict,
            "fetched": None if hours_ago is None else (NOW - timedelta(hours=hours_ago)).isoformat()}


@pytest.mark.parametrize("rows, changed, expected", [
    # flagged after 24 h, changed after 72 h, quiet after 14 days
    ([_row("a", "unlicensed", 25), _row("b", "licensed", 25), _row("c", "licensed", 80)], {"c"}, ["a", "c"]),
    ([_row("a", "mislabeled", 23), _row("b", "not_controlled", 14 * 24 + 1), _row("c", None, 13 * 24)], set(), ["b"]),
    # order: flagged, then changed, then quiet; oldest first within a tier
    ([_row("q", "licensed", 400), _row("f1", "needs_review", 30), _row("f2", "unlicensed", 90), _row("c", "licensed", 100)],
     {"c"}, ["f2", "f1", "c", "q"]),
    # never fetched is due; no URL cannot be fetched
    ([_row("n", "licensed", None), _row("u", "unlicensed", 100, url="")], set(), ["n"]),
])
def test_select_revisits(rows, changed, expected):
    got = select_revisits(rows, changed, NOW, RevisitPolicy())
    assert [r["key"] for r in got] == expected


def test_select_revisits_limit_keeps_the_most_urgent():
    rows = [_row(f"q{i}", "licensed", 500 + i) for i in range(5)] + [_row(f"f{i}", "unlicensed", 30 + i) for i in range(5)]
    got = select_revisits(rows, set(), NOW, RevisitPolicy(limit=3))
    assert [r["key"] for r in got] == ["f4", "f3", "f2"] and {r["tier"] for r in got} == {"flagged"}
