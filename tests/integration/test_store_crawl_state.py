"""The listing store's crawl bookkeeping (fetch states, touch, delist, due refetches), written against
the ListingStore protocol so that every backend runs it (tests/store_helpers.py BACKENDS)."""

from datetime import UTC, datetime, timedelta

import pytest
from store_helpers import BACKENDS, make_store, osmem  # noqa: F401

from listings.model import Listing
from matching import check

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture(params=BACKENDS)
def store(request, make_store):  # noqa: F811
    return make_store(request.param)


def L(item_id="1", **kw):
    base = {"marketplace": "lazada", "item_id": item_id, "title": "พัดลมตั้งพื้น 16 นิ้ว", "price": 590.0,
            "url": f"https://www.lazada.co.th/products/x-i{item_id}.html"}
    return Listing(**{**base, **kw})


def ingest(store, reg, listing, at):
    return store.ingest(listing, check(listing, reg), at)


def test_fetch_states_round_trip(store, world_registry):
    a = L("1")
    ingest(store, world_registry, a, T0)
    store.record_fetch("lazada", "1", [a.key], "card-a", T0)
    st = store.fetch_states("lazada", ["1", "2", "1"])
    assert set(st) == {"1"}
    s = st["1"]
    assert (s.keys, s.card_hash, s.fetched_at, s.status) == ([a.key], "card-a", T0, "active")
    assert s.content_hash == a.content_hash() and s.last_seen == T0 and s.verdict is not None
    assert s.has_evidence is False
    store.add_evidence(a.key, "raw", "evidence/x", "0" * 64, 1, T0)
    assert store.fetch_states("lazada", ["1"])["1"].has_evidence is True
    # another marketplace with the same ref is another thing
    assert store.fetch_states("shopee", ["1"]) == {}


def test_fetch_state_of_a_listing_stored_without_one(store, world_registry):
    a = L("7")
    ingest(store, world_registry, a, T0)
    s = store.fetch_states("lazada", ["7"])["7"]
    assert s.keys == [a.key] and s.fetched_at is None and s.card_hash is None and s.status == "active"


def test_fetch_states_by_url_ref_and_many_refs(store, world_registry):
    listings = [L(str(i)) for i in range(1200)]
    for x in listings[:3]:
        ingest(store, world_registry, x, T0)
    store.record_fetch("shop", "https://shop.example/p/1", ["shop:sku-1", "shop:sku-2"], None, T0)
    st = store.fetch_states("shop", ["https://shop.example/p/1"])
    assert st["https://shop.example/p/1"].keys == ["shop:sku-1", "shop:sku-2"]
    assert st["https://shop.example/p/1"].status is None  # not stored (yet)
    assert len(store.fetch_states("lazada", [str(i) for i in range(1200)])) == 3


def test_touch_moves_last_seen_without_a_new_observation(store, world_registry):
    a, b = L("1"), L("2")
    ingest(store, world_registry, a, T0)
    ingest(store, world_registry, b, T0)
    store.delist(b.key, T0 + H)
    assert store.touch([a.key, b.key, "lazada:nope", a.key], T0 + 2 * H) == 1
    assert store.get(a.key)["last_seen"] == (T0 + 2 * H).isoformat()
    obs = store.history(a.key)["observations"]
    assert len(obs) == 1 and obs[0]["last_seen"] == (T0 + 2 * H).isoformat() and obs[0]["times"] == 2
    assert store.get(b.key)["status"] == "delisted"          # a delisted listing is not revived by a touch
    assert store.touch([a.key], T0 + H) == 0                 # never backwards


def test_delist_once_with_last_seen(store, world_registry):
    a = L("1")
    ingest(store, world_registry, a, T0)
    assert store.delist(a.key, T0 + 5 * H) == T0
    assert store.delist(a.key, T0 + 6 * H) is None
    assert store.delist("lazada:unknown", T0) is None
    d = store.get(a.key)
    assert d["status"] == "delisted" and d["delisted_at"] == (T0 + 5 * H).isoformat()
    assert [c["field"] for c in store.history(a.key)["changes"]] == ["delisted"]
    ingest(store, world_registry, a, T0 + 7 * H)
    assert store.get(a.key)["status"] == "active"


def test_due_refetch(store, world_registry):
    shirt = "เสื้อยืดคอกลม ผ้าฝ้าย"
    fresh, old, never, seen_now = L("1", title=shirt), L("2", title=shirt), L("4", title=shirt), L("5", title=shirt)
    flagged_recent, flagged_stale = L("3"), L("6")          # a fan without brand: unlicensed
    for x in (fresh, old, flagged_recent, never, seen_now, flagged_stale):
        ingest(store, world_registry, x, T0)
    assert store.get(fresh.key)["verdict"] == "not_controlled" and store.get(flagged_stale.key)["verdict"] == "unlicensed"
    fetched = [(fresh, 100), (old, 0), (flagged_recent, 190), (seen_now, 0), (flagged_stale, 150)]
    for x, h in fetched:
        store.record_fetch("lazada", x.item_id, [x.key], "h", T0 + h * H)
        ingest(store, world_registry, x, T0 + h * H)
    now = T0 + 200 * H
    store.touch([seen_now.key], now)                          # seen in this crawl already
    due = store.due_refetch("lazada", before=now - 168 * H, flagged_before=now - 24 * H, unseen_since=now, limit=10)
    assert [d["key"] for d in due] == [old.key, never.key, flagged_stale.key]
    assert due[0]["ref"] == "2" and due[0]["url"] == old.url and due[0]["card_hash"] == "h"
    assert due[1]["ref"] == "4" and due[1]["card_hash"] is None
    assert len(store.due_refetch("lazada", now, now, now, limit=1)) == 1
    store.delist(old.key, now)
    assert old.key not in [d["key"] for d in store.due_refetch("lazada", now, now, now + H, 10)]
