"""The Redis crawl frontier (cluster/frontier.py) against a real redis-server: several "processes"
(frontiers with their own names) on one run; leases that expire, come back and are given up; a retry
of a held request; seeding, finishing and revisits; the duplicate filter's two layouts. Time is passed
in (now_ms) where leases expire, so nothing waits on the clock."""

from __future__ import annotations

import json

import pytest
import redis as redis_lib
import scrapy
from redis_helpers import redis_server, redis_url  # noqa: F401

from cluster.crawl import decode_request, encode_request
from cluster.frontier import FilterSpec, RedisFrontier, RunClosed
from cluster.keys import Keys

pytestmark = pytest.mark.server
LEASE = 60_000  # ms
FAR = 10 ** 13  # a "now" after every lease deadline


@pytest.fixture
def r(redis_url):  # noqa: F811
    return redis_lib.Redis.from_url(redis_url)


def proc(r, name, mode="exact", **kw):
    kw.setdefault("lease_seconds", LEASE / 1000)
    return RedisFrontier(r, Keys("tw"), "lazada", worker=name, filter_mode=mode, expected_requests=10_000, **kw)


def seeded(r, *names, mode="exact", coverage=True, **kw):
    ps = [proc(r, n, mode, **kw) for n in names]
    for p in ps:
        p.open_run()
    assert ps[0].claim_seeding()
    ps[0].mark_seeded(coverage)
    return ps


@pytest.mark.parametrize("mode", ["exact", "bloom"])
def test_each_request_is_queued_once_however_many_processes_push_it(r, mode):
    a, b = seeded(r, "a", "b", mode=mode)
    assert a.push("k1", "https://m/1", b"r1") and not b.push("k1", "https://m/1", b"r1")
    assert b.push("k2", "https://m/2", b"r2", priority=5) and not a.push("k2", "https://m/2", b"x", dont_filter=True)
    assert a.seen("k1") and a.seen("k2") and not a.seen("k3")
    got = {a.pop(), b.pop()}
    assert got == {("k2", b"r2"), ("k1", b"r1")} and a.pop() is None
    info = r.hgetall(a.run_key)
    assert (info[b"pushed"], info[b"duplicates"]) == (b"2", b"2")


def test_higher_priority_first_then_newest_first(r):
    (a,) = seeded(r, "a")
    for i, prio in enumerate([0, 0, 10, -10, 0]):
        a.push(f"k{i}", f"u{i}", b"d", priority=prio)
    assert [a.pop()[0] for _ in range(5)] == ["k2", "k4", "k1", "k0", "k3"]


def test_a_lease_that_expires_comes_back_and_the_late_holder_changes_nothing(r):
    a, b = seeded(r, "a", "b")
    a.push("k", "https://m/k", b"d")
    assert a.pop() == ("k", b"d") and a.held == {"k"}
    assert b.pop() is None and b.reclaim(now_ms=1) == (0, 0)         # not expired yet
    assert b.reclaim(now_ms=FAR) == (1, 0)                          # a stopped renewing: back in the queue
    assert b.pop() == ("k", b"d")
    assert not a.ack("k")        # a's lease is gone and b fetches it: a's late ack leaves b's lease alone
    assert r.zcard(a._k("lease")) == 1
    assert b.ack("k") and r.zcard(b._k("lease")) == 0 and r.hlen(b._k("req")) == 0


def test_a_late_ack_takes_back_a_request_nobody_fetched_again(r):
    a, b = seeded(r, "a", "b")
    a.push("k", "u", b"d")
    a.pop()
    b.reclaim(now_ms=FAR)
    assert a.ack("k")                                               # it was done after all: not fetched twice
    assert b.pop() is None and r.hget(a.run_key, "done") == b"1"


def test_renewing_keeps_the_lease(r):
    a, b = seeded(r, "a", "b", lease_seconds=60)
    a.push("k", "u", b"d")
    a.pop()
    deadline = r.zscore(a._k("lease"), "k")
    assert a.renew(now_ms=int(deadline) + 1000) == 1
    assert b.reclaim(now_ms=int(deadline) + 1) == (0, 0)            # the old deadline passed; the new one did not


def test_a_request_that_kills_its_crawler_every_time_is_given_up(r):
    a, b = seeded(r, "a", "b", max_attempts=2)
    a.push("poison", "https://m/poison", b"d")
    a.push("fine", "https://m/fine", b"d", priority=-1)
    a.pop()
    assert b.reclaim(now_ms=FAR) == (1, 0)
    assert b.pop()[0] == "poison"
    assert a.reclaim(now_ms=FAR) == (0, 1)                          # second lost lease: given up
    assert a.pop()[0] == "fine" and a.failed_urls() == ["https://m/poison"]
    info = r.hgetall(a.run_key)
    assert info[b"given_up"] == b"1" and info[b"incomplete"] == b"1"  # the run is not complete: no delisting


def test_a_retry_of_a_held_request_replaces_it_others_are_duplicates(r):
    a, b = seeded(r, "a", "b")
    a.push("k", "u", b"first")
    a.pop()
    assert not b.push("k", "u", b"other", dont_filter=True)         # b does not hold it: a duplicate
    assert not a.push("k", "u", b"again")                           # without dont_filter: a duplicate too
    assert a.push("k", "u", b"retry", dont_filter=True)             # the retry middleware's copy goes back
    assert a.held == set() and r.zcard(a._k("lease")) == 0
    assert b.pop() == ("k", b"retry")


def test_a_stopping_process_hands_its_leases_back_at_once(r):
    a, b = seeded(r, "a", "b")
    for i in range(3):
        a.push(f"k{i}", f"u{i}", b"d")
    a.pop()
    a.pop()
    assert a.release() == 2 and a.held == set()
    assert sorted(b.pop()[0] for _ in range(3)) == ["k0", "k1", "k2"]


def test_seeding_is_taken_over_when_the_seeder_died(r):
    a, b = (proc(r, n) for n in "ab")
    a.open_run()
    b.open_run()
    assert a.claim_seeding() and not b.claim_seeding()
    assert b.try_finish() == "seeding"
    r.delete(a._k("seedlock"))                                      # what the lock's expiry does when a dies
    assert b.claim_seeding()
    b.push("s", "u", b"d")
    b.mark_seeded(True)
    assert not a.claim_seeding() and b.try_finish() == "busy"


def test_the_run_finishes_once_with_a_run_end_for_the_workers(r):
    a, b = seeded(r, "a", "b")
    a.push("k", "u", b"d")
    a.pop()
    assert b.try_finish() == "busy"                                 # a holds a lease: it may yield more
    a.ack("k", seen_delta=7)
    assert b.try_finish() == "finished" and a.try_finish() == "finished"
    entries = r.xrange(Keys("tw").listings)
    assert len(entries) == 1 and entries[0][1][b"t"] == b"run_end"
    d = json.loads(entries[0][1][b"d"])
    assert (d["marketplace"], d["run"], d["complete"], d["seen"]) == ("lazada", a.run.id, 1, 7)
    assert d["started"] == a.run.started.isoformat()
    # nothing of the run is left but its summary; the duplicate filter is gone
    assert sorted(k.decode() for k in r.keys("tw:crawl:*")) == ["tw:crawl:lazada:run", "tw:crawl:lazada:runs"]
    with pytest.raises(RunClosed):
        a.push("new", "u", b"d")
    c = proc(r, "c")
    assert c.open_run().id == a.run.id + 1 and not c.run.resumed    # the next crawl is a new run


def test_an_incomplete_run_says_so(r):
    a, _b = seeded(r, "a", "b")
    a.push("k", "u", b"d")
    a.pop()
    a.ack("k", "failed", incomplete=True)
    assert a.try_finish() == "finished"
    assert json.loads(r.xrange(Keys("tw").listings)[0][1][b"d"])["complete"] == 0


def test_revisits_are_pushed_by_one_process_once(r):
    a, b = seeded(r, "a", "b")
    assert a.try_finish(wants_revisits=True, now_ms=1000) == "revisit"
    assert b.try_finish(wants_revisits=True, now_ms=1000) == "revisiting"
    # a died while pushing them: after its lease b takes over
    assert b.try_finish(wants_revisits=True, now_ms=1000 + LEASE + 1) == "revisit"
    b.push("rv", "u", b"d")
    b.revisits_done()
    assert a.try_finish(wants_revisits=True) == "busy"
    b.pop()
    b.ack("rv")
    assert a.try_finish(wants_revisits=True) == "finished"


def test_fresh_abandons_the_open_run_and_its_processes_stop(r):
    a, _b = seeded(r, "a", "b")
    a.push("k", "u", b"d")
    old = a.run.id
    c = proc(r, "c")
    assert c.open_run(fresh=True).id == old + 1 and c.abandoned["state"] == "abandoned"
    assert r.exists(Keys("tw").part("lazada", old, "q")) == 0
    with pytest.raises(RunClosed):
        a.pop()
    assert a.try_finish() in ("finished", "gone", "abandoned") and a.state() is None


def test_join_only_joins(r):
    assert proc(r, "a").open_run(join=True) is None
    a = proc(r, "a")
    a.open_run()
    b = proc(r, "b")
    assert b.open_run(join=True).id == a.run.id and b.run.resumed


def test_the_runs_keys_expire_when_nobody_works_on_it(r):
    (a,) = seeded(r, "a", ttl_seconds=3600)
    a.push("k", "u", b"d")
    for name in ("q", "req", "pri"):
        assert 0 < r.pttl(a._k(name)) <= 3600_000
    fkey = a._filter_key("k")[0]
    assert 0 < r.pttl(fkey) <= 3600_000


def test_filter_layouts():
    e = FilterSpec.plan("exact", 1_000_000)
    assert e.buckets == 16384 and FilterSpec.plan("exact", 10).buckets == 256
    b = FilterSpec.plan("bloom", 1_000_000, 1e-7)
    assert b.bits == 33_547_705 and b.hashes == 23                  # m = -n ln p / ln²2, k = m/n ln 2
    suffix, args = b.locate("abc")
    assert suffix == "bloom" and len(set(args)) == 23 and all(0 <= x < b.bits for x in args)
    assert b.locate("abc") == b.locate("abc") and e.locate("abc")[0].startswith("seen:")
    with pytest.raises(ValueError, match="more than one Redis bitmap"):
        FilterSpec.plan("bloom", 10 ** 9, 1e-9)
    assert FilterSpec.from_fields(b.as_fields()) == b


class S(scrapy.Spider):
    name = "s"

    def parse_product(self, response, card=None):
        pass

    def on_error(self, failure):
        pass


def test_requests_survive_the_queue():
    """What spiders yield goes through Redis as Request.to_dict, callbacks by name (Shopee's browser
    requests included: their page methods are module-level functions)."""
    from scrapy_playwright.page import PageMethod

    from crawlers.spiders.shopee import _init_page, wait_for_api

    sp = S()
    req = scrapy.Request("https://m.example/p?x=1", callback=sp.parse_product, errback=sp.on_error, priority=7,
                         cb_kwargs={"card": {"item_id": "1", "price": 9.5}},
                         meta={"playwright": True, "playwright_include_page": True, "playwright_page_init_callback": _init_page,
                               "playwright_page_methods": [PageMethod(wait_for_api, "pdp/get_pc", 20.0)],
                               "download_slot": "m.example", "listing_key": "lazada:1"})
    back = decode_request(encode_request(req, sp), sp)
    assert (back.url, back.priority, back.cb_kwargs, back.callback.__name__, back.errback.__name__) == \
        (req.url, 7, req.cb_kwargs, "parse_product", "on_error")
    assert back.meta["playwright_page_init_callback"] is _init_page and "download_slot" not in back.meta
    assert back.meta["playwright_page_methods"][0].method is wait_for_api


def test_a_page_whose_output_cannot_be_recorded_is_fetched_again(r):
    """Redis unreachable (longer than the client retries) while a page's output is recorded: the page
    is not acknowledged and no longer renewed, so its lease expires and another process fetches it."""
    from types import SimpleNamespace

    from cluster.crawl import DistributedFrontierMiddleware, RedisTracker

    a, b = seeded(r, "a", "b")
    a.push("parent", "https://m/parent", b"d")
    a.pop()
    tr = RedisTracker(SimpleNamespace(frontier=a, seen=set(), complete=True, blocked=None),
                      lambda req: b"\x01", lambda req: b"data")
    mw = DistributedFrontierMiddleware(crawler=None)
    assert mw._one(tr, "parent", scrapy.Request("https://m/child")) is None      # pushed: dropped here

    def down(*args, **kw):
        raise redis_lib.ConnectionError("Redis went away")

    a.push = down
    assert mw._one(tr, "parent", scrapy.Request("https://m/child-2")) is None
    tr.output_done("parent", "https://m/parent")
    assert "parent" not in a.held and r.zscore(a._k("lease"), "parent") is not None   # not acknowledged
    assert a.renew() == 0
    assert b.reclaim(now_ms=FAR) == (1, 0)
    assert sorted(b.pop()[0] for _ in range(2)) == sorted(["parent", tr.key(scrapy.Request("https://m/child"))])
