"""The crawl's StorePipeline against a real store and event log: one verdict event per verdict change,
and a resumed run writes the event a killed run stored the verdict without (kill -9 between the two
databases' commits)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawlers.pipelines import StorePipeline
from listings.events import EventLog
from listings.sqlite_store import SqliteStore
from matching import check
from tests.alerts_helpers import listing

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


@pytest.fixture
def crawl(tmp_path, world_registry):
    def make(resumed: bool):
        ctx = SimpleNamespace(store=SqliteStore(tmp_path / "listings.sqlite"), events=EventLog(tmp_path / "events.sqlite"),
                              seen=set(), frontier=SimpleNamespace(run=SimpleNamespace(resumed=resumed)))
        crawler = SimpleNamespace(tiswatch=ctx, stats=MemoryStatsCollector(get_crawler()))
        return StorePipeline(crawler), ctx

    made = []

    def factory(resumed: bool = False):
        p, ctx = make(resumed)
        made.append(ctx)
        return p, ctx

    yield factory
    for ctx in made:
        ctx.store.close()
        ctx.events.close()


def _item(n, title, registry):
    li = listing(n, title, observed_at=T0)
    return {"_listing": li, "_verdict": check(li, registry)}


def _verdicts(events, key):
    return [e.data["verdict"] for e in events.read(0, 100, kinds=["verdict"]) if e.key == key]


@pytest.mark.parametrize("title", ["ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"])
def test_one_event_per_verdict_change(crawl, world_registry, title):
    p, ctx = crawl()
    item = _item(1, title, world_registry)
    p.process_item(dict(item))
    p.process_item(dict(item))  # seen again: nothing changed, no event
    assert _verdicts(ctx.events, "shopee:1") == [item["_verdict"].verdict]


def test_a_resumed_run_writes_the_event_a_killed_run_lost(crawl, world_registry):
    item = _item(2, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry)
    _, ctx = crawl()
    ctx.store.ingest(item["_listing"], item["_verdict"], T0)  # stored, then killed before the event
    assert _verdicts(ctx.events, "shopee:2") == []

    resumed, ctx2 = crawl(resumed=True)
    resumed.process_item(dict(item))
    assert _verdicts(ctx2.events, "shopee:2") == [item["_verdict"].verdict]
    resumed.process_item(dict(item))  # and only once
    assert _verdicts(ctx2.events, "shopee:2") == [item["_verdict"].verdict]
    assert resumed.crawler.stats.get_value("tiswatch/events_repaired") == 1


def test_a_new_run_does_not_invent_events(crawl, world_registry):
    """Outside a resumed run a listing without events is left alone (e.g. a store restored without its
    event log must not alert partners about every old verdict)."""
    item = _item(3, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry)
    _, ctx = crawl()
    ctx.store.ingest(item["_listing"], item["_verdict"], T0)
    fresh, ctx2 = crawl(resumed=False)
    fresh.process_item(dict(item))
    assert _verdicts(ctx2.events, "shopee:3") == []
