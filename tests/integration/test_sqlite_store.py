from datetime import UTC, datetime, timedelta

from listings.model import Listing
from listings.sqlite_store import SqliteStore
from listings.store import SearchQuery
from matching import check

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


def L(**kw):
    base = {"marketplace": "shopee", "item_id": "1", "title": "ปลั๊กพ่วงมอก.2432 Haco 4 ช่อง", "price": 199.0, "seller": "ร้านดี", "seller_id": "s1"}
    return Listing(**{**base, **kw})


def test_ingest_idempotent_and_changes(tmp_path, world_registry):
    st = SqliteStore(tmp_path / "l.sqlite")
    a = L()
    r1 = st.ingest(a, check(a, world_registry), T0)
    r2 = st.ingest(a, check(a, world_registry), T0)
    r3 = st.ingest(a, check(a, world_registry), T0 + timedelta(hours=1))
    assert r1.new_listing and r1.new_observation and not r2.new_observation and not r3.new_observation
    h = st.history(a.key)
    assert len(h["observations"]) == 1 and h["observations"][0]["last_seen"] == "2026-11-01T04:00:00+00:00"
    b = L(price=149.0, title="ปลั๊กพ่วง Haco 4 ช่อง")
    r4 = st.ingest(b, check(b, world_registry), T0 + timedelta(days=1))
    assert {c[0] for c in r4.changes} >= {"price", "title", "claim"}
    assert len(st.history(a.key)["observations"]) == 2
    assert st.get(a.key)["price"] == 149.0


def test_delisted_and_relisted(tmp_path, world_registry):
    st = SqliteStore(tmp_path / "l.sqlite")
    a, b = L(item_id="1"), L(item_id="2")
    for x in (a, b):
        st.ingest(x, check(x, world_registry), T0)
    st.ingest(a, check(a, world_registry), T0 + timedelta(days=1))
    gone = st.mark_delisted("shopee", {a.key}, since=T0 + timedelta(hours=12), at=T0 + timedelta(days=1))
    assert gone == [b.key] and st.get(b.key)["status"] == "delisted"
    r = st.ingest(b, check(b, world_registry), T0 + timedelta(days=2))
    assert r.changes[0][0] == "relisted" and st.get(b.key)["status"] == "active"
    assert [c["field"] for c in st.history(b.key)["changes"]] == ["delisted", "relisted"]


def test_thai_search_words_and_substrings(tmp_path, world_registry):
    st = SqliteStore(tmp_path / "l.sqlite")
    for i, t in enumerate(["ปลั๊กพ่วงมอก.2432 4 ช่อง", "พาวเวอร์แบงค์ 10000mAh", "ลูกชิ้นปลา"]):
        x = L(item_id=str(i), title=t)
        st.ingest(x, check(x, world_registry), T0)
    for q, want in [("ปลั๊กพ่วง", {"shopee:0"}), ("ปลั๊ก พ่วง", {"shopee:0"}), ("แบงค์", {"shopee:1"}), ("10000mah", {"shopee:1"}),
                    ("ลูกชิ้น", {"shopee:2"}), ("ไม่มีคำนี้", set())]:
        assert {h["key"] for h in st.search(SearchQuery(text=q)).hits} == want, q


def test_hostile_queries_are_data(tmp_path, world_registry):
    st = SqliteStore(tmp_path / "l.sqlite")
    x = L()
    st.ingest(x, check(x, world_registry), T0)
    for q in ['"; DROP TABLE listings; --', "NEAR(a b)", "*", '"', "a OR b", "key:1", "' OR 1=1 --", "%", "_"]:
        st.search(SearchQuery(text=q, seller=q))
    assert st.counts()["listings"] == 1
