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


class _Tracker:
    """Records the order of what reaches the frontier."""

    def __init__(self, log):
        self.log = log
        self.held = False

    def hold(self):
        self.held = True

    def release(self, stop=False):
        self.log.append("frontier")


@pytest.fixture
def batched(tmp_path, world_registry):
    """A StorePipeline whose writes are batched (crawlers/batch.py), with the order of commits logged."""
    from crawlers.batch import BatchedEvents, BatchedStore, WriteBatch

    order: list[str] = []
    store, events = SqliteStore(tmp_path / "listings.sqlite"), EventLog(tmp_path / "events.sqlite")
    commit, append_many = store.commit_batch, events.append_many
    store.commit_batch = lambda: (order.append("store"), commit())[1]  # type: ignore[method-assign]
    events.append_many = lambda rows, at=None: (order.append("events"), append_many(rows, at))[1]  # type: ignore[method-assign]
    tracker = _Tracker(order)
    clock = [0.0]
    batch = WriteBatch(store, events, lambda: tracker, max_items=3, max_seconds=5, clock=lambda: clock[0])
    ctx = SimpleNamespace(store=BatchedStore(store, batch), events=BatchedEvents(events, batch), seen=set(), _batch=batch,
                          batch=batch, frontier=SimpleNamespace(run=SimpleNamespace(resumed=False)))
    p = StorePipeline(SimpleNamespace(tiswatch=ctx, stats=MemoryStatsCollector(get_crawler())))
    batch.start()
    yield SimpleNamespace(p=p, store=store, events=events, batch=batch, order=order, clock=clock, tracker=tracker,
                          path=tmp_path / "listings.sqlite")
    store.close()
    events.close()


def _committed(path) -> int:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM listings").fetchone()[0]
    finally:
        db.close()


def test_batched_writes_commit_every_n_listings_in_order(batched, world_registry):
    """Listings, then their events, then the crawl's fetch notes, then the frontier: a page is done on
    disk only once all it caused is (a kill -9 in between re-fetches it)."""
    b = batched
    assert b.tracker.held
    for n in (1, 2):
        item = _item(n, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry)
        b.p.process_item({**item, "_ref": str(n), "_card": "c"})
    # this connection reads its own writes; another sees nothing yet, and no event is written
    assert b.store.get("shopee:1") is not None and _committed(b.path) == 0
    assert _verdicts(b.events, "shopee:1") == [] and b.order == []
    b.p.process_item({**_item(3, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry), "_ref": "3", "_card": "c"})
    assert _committed(b.path) == 3 and b.order == ["store", "events", "store", "frontier"]
    assert len(_verdicts(b.events, "shopee:1")) == 1
    assert set(b.store.fetch_states("shopee", ["1", "2", "3"])) == {"1", "2", "3"}


def test_batched_writes_commit_after_t_seconds_and_at_stop(batched, world_registry):
    b = batched
    b.p.process_item(_item(4, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry))
    b.batch.flush_if_due()
    assert _committed(b.path) == 0
    b.clock[0] = 5.0
    b.batch.flush_if_due()  # the timer's call
    assert _committed(b.path) == 1
    b.p.process_item(_item(5, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry))
    b.batch.stop()
    assert _committed(b.path) == 2 and not b.batch.active
    b.p.process_item(_item(6, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry))  # no batch: at once
    assert _committed(b.path) == 3


def test_a_failed_write_in_a_batch_undoes_itself_only(batched, world_registry):
    import sqlite3

    b = batched
    b.p.process_item(_item(7, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry))
    good = {"index": 0, "sha256": "a" * 64, "phash": "0f0f0f0f0f0f0f0f"}
    b.store.add_images("shopee:7", [good])
    with pytest.raises(sqlite3.IntegrityError):  # two pictures at one index: fails after its DELETE
        b.store.add_images("shopee:7", [{**good, "sha256": "b" * 64}, {**good, "sha256": "c" * 64}])
    b.batch.flush()
    assert _committed(b.path) == 1
    assert [im["sha256"] for im in b.store.images_of("shopee:7")] == ["a" * 64]


def test_a_resumed_batch_does_not_repair_an_event_it_is_about_to_write(batched, world_registry):
    """In a resumed run the same listing twice in one batch: its first verdict event is still waiting
    to be written, and the second sighting must not write a 'missing' one."""
    b = batched
    b.p.crawler.tiswatch.frontier.run.resumed = True
    item = _item(8, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry)
    b.p.process_item(dict(item))
    b.p.process_item(dict(item))
    b.batch.flush()
    assert _verdicts(b.events, "shopee:8") == [item["_verdict"].verdict]


def test_a_failed_timed_commit_is_tried_again_without_losing_events(batched, world_registry, caplog):
    b = batched
    b.p.process_item(_item(9, "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", world_registry))
    real = b.events.append_many
    calls = []

    def fail_once(rows, at=None):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return real(rows, at)

    b.events.append_many = fail_once  # type: ignore[method-assign]
    b.clock[0] = 10.0
    b.batch.flush_if_due()  # the listing is committed, the events are not: logged, kept
    assert "trying again" in caplog.text
    assert _committed(b.path) == 1 and _verdicts(b.events, "shopee:9") == [] and b.tracker.log.count("frontier") == 0
    b.batch.flush_if_due()
    assert len(_verdicts(b.events, "shopee:9")) == 1 and b.order[-1] == "frontier"
