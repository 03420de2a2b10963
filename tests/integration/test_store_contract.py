"""The listing store contract: every backend (SQLite; osmem-server; a real Elasticsearch/OpenSearch
cluster when TISWATCH_ES_URL is set) must pass these tests, and must answer exactly like the SQLite
store for the same history (test_backends_agree)."""

from __future__ import annotations

import pytest
from store_helpers import PATHS, RUNS_BEFORE_WORDS_V2, T0, Batched, D, H, make_store, osmem  # noqa: F401

from listings.model import Listing
from listings.store import Delisting, SearchQuery
from matching import check
from matching.normalise import fold
from matching.verdict import Verdict
from sandbox.history import simulate


@pytest.fixture(params=PATHS)
def store(request, make_store):  # noqa: F811
    """Each backend through each ingestion path (one by one; held and sent through ingest_many)."""
    return make_store(request.param)


def L(**kw):
    base = {"marketplace": "shopee", "item_id": "1", "title": "ปลั๊กพ่วงมอก.2432 Haco 4 ช่อง", "price": 199.0,
            "seller": "ร้านดี", "seller_id": "s1", "sold": 10}
    return Listing(**{**base, **kw})


def V(listing, verdict="unlicensed", risk=80, tis="2432-2555", version="r1", reasons=None, claims=None):
    return Verdict(listing.marketplace, listing.item_id, verdict, risk, tis, None, reasons or ["no_claim"],
                   claims=claims or [], registry_version=version)


# ---- ingestion -------------------------------------------------------------------------------------
def test_ingest_is_idempotent_and_runs_merge_identical_views(store):
    a = L()
    r1 = store.ingest(a, V(a), T0)
    r2 = store.ingest(a, V(a), T0)
    r3 = store.ingest(a, V(a), T0 + H)
    assert (r1.new_listing, r1.new_observation, r1.verdict_changed) == (True, True, True)
    assert not (r2.new_listing or r2.new_observation or r2.verdict_changed or r2.changes)
    assert not (r3.new_observation or r3.verdict_changed or r3.changes)
    h = store.history(a.key)
    assert [(o["first_seen"], o["last_seen"], o["times"]) for o in h["observations"]] == \
        [(T0.isoformat(), (T0 + H).isoformat(), 2)]
    assert h["observations"][0]["data"]["title"] == a.title and len(h["verdicts"]) == 1 and h["changes"] == []
    b = L(price=149.0, title="ปลั๊กพ่วง Haco 4 ช่อง", sold=25)
    r4 = store.ingest(b, V(b, claims=[]), T0 + D)
    assert r4.new_observation and {c[0] for c in r4.changes} == {"price", "title", "stock"}
    assert ("price", 199.0, 149.0) in r4.changes
    g = store.get(a.key)
    assert (g["price"], g["title"], g["first_seen"], g["last_seen"]) == (149.0, b.title, T0.isoformat(), (T0 + D).isoformat())
    changes = store.history(a.key)["changes"]
    assert {(c["field"], c["old"], c["new"]) for c in changes} >= {("price", "199", "149"), ("stock", "10", "25")}
    assert all(c["at"] == (T0 + D).isoformat() for c in changes)


def test_replaying_a_history_changes_nothing(store):
    views = [(L(price=p), T0 + i * D) for i, p in enumerate([199.0, 199.0, 149.0, 149.0, 199.0])]
    for x, at in views:
        store.ingest(x, V(x), at)
    before = (store.get("shopee:1"), store.history("shopee:1"))
    res = [store.ingest(x, V(x), at) for x, at in views]
    assert not any(r.new_observation or r.changes or r.verdict_changed for r in res)
    assert (store.get("shopee:1"), store.history("shopee:1")) == before
    assert [o["data"]["price"] for o in before[1]["observations"]] == [199.0, 149.0, 199.0]


def test_late_sightings_take_their_place_in_time(store):
    a, b = L(price=100.0), L(price=120.0)
    store.ingest(a, V(a), T0 + 2 * D)
    store.ingest(b, V(b), T0 + 4 * D)
    # an older sighting of the same view as the first run backdates it; an older different view is
    # kept in time order; neither changes the current state or makes change events
    r1 = store.ingest(a, V(a), T0 + D)
    c = L(price=90.0)
    r2 = store.ingest(c, V(c), T0)
    assert not r1.new_observation and r2.new_observation and not r1.changes and not r2.changes
    obs = store.history(a.key)["observations"]
    assert [(o["data"]["price"], o["first_seen"], o["last_seen"], o["times"]) for o in obs] == [
        (90.0, T0.isoformat(), T0.isoformat(), 1),
        (100.0, (T0 + D).isoformat(), (T0 + 2 * D).isoformat(), 2),
        (120.0, (T0 + 4 * D).isoformat(), (T0 + 4 * D).isoformat(), 1)]
    g = store.get(a.key)
    assert (g["price"], g["first_seen"], g["last_seen"]) == (120.0, T0.isoformat(), (T0 + 4 * D).isoformat())
    assert [x["field"] for x in store.history(a.key)["changes"]] == ["price"]


def test_ingest_many_is_ingest_one_by_one(store, make_store):  # noqa: F811
    """One batch with a listing seen many times, new listings seen again, late sightings, sightings
    sent twice, delistings (one of a listing seen after it, one of a listing never stored) and
    relistings: the same results, state and history as one call at a time."""
    items = []
    for i in range(60):
        x = L(item_id=str(i % 7), price=100.0 + (i // 21) % 3, title="ปลั๊กพ่วง Haco" if i % 11 else "พัดลม Hatari")
        v = V(x, "licensed" if i % 13 == 0 else "unlicensed", version=f"r{i // 20}")
        at = T0 + i * H if i % 9 else T0 + (i - 30) * H  # every ninth a late sighting
        items.append((x, v, at))
        if i % 10 == 4:
            items.append(items[-1])  # the same sighting again
        if i % 17 == 5:
            items.append(Delisting(x.key, at + H / 2))
    items += [Delisting("shopee:3", T0), Delisting("shopee:never", T0 + 99 * H)]
    store.ingest(items[0][0], items[0][1], T0 - D)  # stored before the batch: its runs are read, then extended
    res = store.ingest_many(items)
    ref = make_store("sqlite")
    ref.ingest(items[0][0], items[0][1], T0 - D)
    want = [ref.delist(it.key, it.at) if isinstance(it, Delisting) else ref.ingest(*it) for it in items]
    for it, r, w in zip(items, res, want, strict=True):
        if isinstance(it, Delisting):
            assert (r.key, r.changes[0][1] if r.changes else None) == (it.key, w.isoformat() if w else None)
        else:
            assert (r.key, r.new_listing, r.new_observation, r.changes, r.verdict_changed, r.previous_verdict) == \
                (w.key, w.new_listing, w.new_observation, w.changes, w.verdict_changed, w.previous_verdict)
    store.flush()
    assert store.counts() == ref.counts()
    for k in sorted({i.key if isinstance(i, Delisting) else i[0].key for i in items}):
        assert store.history(k) == ref.history(k) and store.get(k) == ref.get(k), k
    for q in (SearchQuery(text="พัดลม"), SearchQuery(text="ปลั๊กพ่วง", status="active")):
        assert [h["key"] for h in store.search(q).hits] == [h["key"] for h in ref.search(q).hits]


def test_verdict_history_keeps_registry_versions(store):
    a = L()
    store.ingest(a, V(a, version="r1"), T0)
    r = store.ingest(a, V(a, version="r2"), T0 + H)  # same verdict, a new registry version
    assert not r.verdict_changed and r.previous_verdict == "unlicensed"
    r = store.ingest(a, V(a, "licensed", 5, version="r3", reasons=["licence_match:x"]), T0 + 2 * H)
    assert r.verdict_changed and r.previous_verdict == "unlicensed" and ("verdict", "unlicensed", "licensed") in r.changes
    vs = store.history(a.key)["verdicts"]
    assert [(v["verdict"], v["registry_version"]) for v in vs] == [("unlicensed", "r1"), ("unlicensed", "r2"), ("licensed", "r3")]
    assert vs[2]["reasons"] == ["licence_match:x"]
    g = store.get(a.key)
    assert (g["verdict"], g["risk"], g["registry_version"], g["flagged_at"]) == ("licensed", 5, "r3", None)


def test_flagged_at_and_claim_changes(store):
    a = L()
    store.ingest(a, V(a), T0)
    store.ingest(a, V(a, "mislabeled", 90, claims=[{"kind": "tis", "value": "2432-2555"}]), T0 + H)
    g = store.get(a.key)
    assert g["flagged_at"] == T0.isoformat()  # flagged since the first flag, while it stays flagged
    b = L(item_id="late")
    store.ingest(b, V(b, "licensed", 5), T0)       # seen first at T0, flagged only at T0 + 2 h
    store.ingest(b, V(b), T0 + 2 * H)
    assert store.get(b.key)["flagged_at"] == (T0 + 2 * H).isoformat()
    # flagged_before (the review backlog's age) counts from the flag, not from first_seen
    assert {h["key"] for h in store.search(SearchQuery(flagged_before=T0 + H)).hits} == {a.key}
    assert {h["key"] for h in store.search(SearchQuery(flagged_before=T0 + 2 * H)).hits} == {a.key, b.key}
    assert store.search(SearchQuery(flagged_before=T0 - H)).total == 0
    fields = [c["field"] for c in store.history(a.key)["changes"]]
    assert fields == ["verdict", "claim"]


def test_record_verdict_without_a_sighting(store):
    a = L()
    store.ingest(a, V(a), T0)
    r = store.record_verdict(a.key, V(a, "licensed", 3, version="r9"), T0 + D)
    assert r is not None and r.verdict_changed and r.previous_verdict == "unlicensed" and not r.new_observation
    g = store.get(a.key)
    assert (g["verdict"], g["last_seen"], g["checked_at"]) == ("licensed", T0.isoformat(), (T0 + D).isoformat())
    assert len(store.history(a.key)["observations"]) == 1
    assert store.record_verdict("shopee:nope", V(a), T0) is None


def test_delisted_and_relisted(store):
    a, b = L(item_id="1"), L(item_id="2")
    for x in (a, b):
        store.ingest(x, V(x), T0)
    store.ingest(a, V(a), T0 + D)
    gone = store.mark_delisted("shopee", {a.key}, since=T0 + 12 * H, at=T0 + D)
    assert gone == [b.key] and store.get(b.key)["status"] == "delisted"
    assert store.get(b.key)["delisted_at"] == (T0 + D).isoformat()
    r = store.ingest(b, V(b), T0 + 2 * D)
    assert r.changes[0][0] == "relisted" and store.get(b.key)["status"] == "active"
    assert [c["field"] for c in store.history(b.key)["changes"]] == ["delisted", "relisted"]
    assert store.counts()["delisted"] == 0


def test_hostile_values_round_trip(store):
    nasty = '"; DROP TABLE listings; -- <script>alert(1)</script> {"a": 1} \\ % _ * ? ~ ^ \u200b ไทย'
    a = L(title=nasty, description=nasty * 3, brand="O'Brien", seller=nasty, seller_id='s"1', attributes={"<b>": nasty},
          category=["a > b", "ค"], images=["https://x/1.jpg?a=1&b=<2>"])
    store.ingest(a, V(a, reasons=[f"accessory:{nasty}"]), T0)
    g = store.get(a.key)
    assert (g["title"], g["seller"], g["seller_id"], g["attributes"], g["reasons"]) == \
        (nasty, nasty, 's"1', {"<b>": nasty}, [f"accessory:{nasty}"])
    assert store.history(a.key)["observations"][0]["data"]["description"] == nasty * 3


# ---- search ----------------------------------------------------------------------------------------
@pytest.fixture
def corpus(store, world_registry):
    rows = [("shopee", "1", "ปลั๊กพ่วงมอก.2432 4 ช่อง 3 เมตร", "s1", "ร้านไฟฟ้าดี", 199.0),
            ("shopee", "2", "พาวเวอร์แบงค์ 10000mAh ชาร์จเร็ว", "s1", "ร้านไฟฟ้าดี", 350.0),
            ("lazada", "3", "ลูกชิ้นปลา 500 กรัม", "s9", "Fish Shop", 89.0),
            ("lazada", "4", "รางปลั๊กไฟ 5 ช่อง PB-2001 สวิตช์แยก", "s9", "Fish Shop", 259.0),
            ("shop", "5", "Power bank 20000mAh fast charge", "w1", "ร้าน เพาเวอร์", 590.0),
            ("shopee", "6", "หม้อหุงข้าว Sharp 1.8 ลิตร มอก. 1039-2547", "s2", "Sharp Official", 1290.0)]
    for i, (mp, item, title, sid, seller, price) in enumerate(rows):
        x = Listing(marketplace=mp, item_id=item, title=title, seller=seller, seller_id=sid, price=price)
        store.ingest(x, check(x, world_registry), T0 + i * H)
    return store


@pytest.mark.parametrize("q,want", [
    ("ปลั๊กพ่วง", {"shopee:1"}),              # a word in the index
    ("ปลั๊ก พ่วง", {"shopee:1"}),             # two substrings of one indexed word
    ("ปลั๊ก", {"shopee:1", "lazada:4"}),      # a substring of ปลั๊กพ่วง and of ปลั๊กไฟ
    ("แบงค์", {"shopee:2"}),
    ("10000MAH", {"shopee:2"}),              # folded
    ("pb-2001", {"lazada:4"}), ("PB 2001", {"lazada:4"}),
    ("มอก.2432", {"shopee:1"}),
    ("power bank", {"shop:5"}),
    ("ลูกชิ้น", {"lazada:3"}),
    ("ไม่มีคำนี้", set()),
    ("ปลั๊กพ่วง ลูกชิ้น", set()),             # every term must match
])
def test_thai_search(corpus, q, want):
    assert {h["key"] for h in corpus.search(SearchQuery(text=q)).hits} == want


def test_words_cut_by_an_older_tiswatch_are_cut_again(store, monkeypatch):
    """A listing stored with the word cut before listings/query.py WORDS_VERSION 2 (Latin and digit
    runs took the Thai letters after them: '3ช่อง' was '3ช' + '่อง') is found by word once
    rebuild_words has cut it again; a second rebuild changes nothing."""
    import matching.normalise as N

    a = L(item_id="w1", title="ปลั๊กพ่วง Haco", description="รางปลั๊ก3ช่อง สายยาว5เมตร")
    b = L(item_id="w2", title="พาวเวอร์แบงค์", description="ชาร์จเร็ว 2 พอร์ต")
    monkeypatch.setattr(N, "_RUNS", RUNS_BEFORE_WORDS_V2)
    store.ingest(a, V(a), T0)
    store.ingest(b, V(b), T0)
    assert store.get(a.key) is not None  # stored (through the bulk path too) with the old cut
    monkeypatch.undo()

    def found(q):
        return {h["key"] for h in store.search(SearchQuery(text=q)).hits}

    assert found("ช่อง") == set() and found("เมตร") == set()  # words of the description only
    assert store.rebuild_words() == {"listings": 2, "changed": 1}
    assert found("ช่อง") == {a.key} and found("เมตร") == {a.key} and found("3ช่อง") == {a.key}
    assert found("ปลั๊กพ่วง") == {a.key} and found("พอร์ต") == {b.key}  # the others' words kept
    assert store.rebuild_words() == {"listings": 2, "changed": 0}


def test_search_explains_why_it_matched(corpus):
    r = corpus.search(SearchQuery(text="ปลั๊ก พ่วง"))
    (hit,) = r.hits
    assert r.terms == ["ปลั๊ก", "พ่วง"] and hit["matched"] == ["ปลั๊ก", "พ่วง"]
    w = hit["why"][0]
    assert (w["field"], w["how"]) == ("title", "substring")
    assert w["snippet"][w["start"]:w["end"]] == "ปลั๊ก"
    w = corpus.search(SearchQuery(text="ร้านไฟฟ้าดี")).hits[0]["why"][0]
    assert w["field"] == "seller"


def test_search_filters_and_facets(corpus):
    s = corpus.search
    assert {h["key"] for h in s(SearchQuery(marketplace="lazada")).hits} == {"lazada:3", "lazada:4"}
    assert {h["key"] for h in s(SearchQuery(seller="s1")).hits} == {"shopee:1", "shopee:2"}
    assert {h["key"] for h in s(SearchQuery(seller="fish")).hits} == {"lazada:3", "lazada:4"}  # a part of the name
    assert {h["key"] for h in s(SearchQuery(price_min=200, price_max=600)).hits} == {"shopee:2", "lazada:4", "shop:5"}
    assert {h["key"] for h in s(SearchQuery(date_from=T0 + 4 * H)).hits} == {"shop:5", "shopee:6"}
    assert {h["key"] for h in s(SearchQuery(date_to=T0 + H)).hits} == {"shopee:1", "shopee:2"}
    r = s(SearchQuery(tis="1039"))   # by standard, any edition
    assert [h["key"] for h in r.hits] == ["shopee:6"] and s(SearchQuery(tis="1039-2547")).total == 1
    assert s(SearchQuery(text="ปลั๊ก", marketplace="shopee")).total == 1
    r = s(SearchQuery())
    assert r.total == 6 and dict(r.facets["marketplace"]) == {"shopee": 3, "lazada": 2, "shop": 1}
    assert r.facets["marketplace"][0] == ("shopee", 3)
    assert sum(n for _, n in r.facets["verdict"]) == 6
    assert dict(r.facets["seller"])["ร้านไฟฟ้าดี"] == 2
    flagged = s(SearchQuery(flagged_only=True))
    assert flagged.total == sum(n for v, n in r.facets["verdict"] if v in ("unlicensed", "mislabeled", "needs_review"))
    corpus.set_review_status("shopee:1", "confirmed")
    assert [h["key"] for h in s(SearchQuery(review_status="confirmed")).hits] == ["shopee:1"]
    assert dict(s(SearchQuery()).facets["review_status"]) == {"new": 5, "confirmed": 1}
    assert s(SearchQuery(status="delisted")).total == 0
    assert s(SearchQuery(facets=False)).facets == {}


def test_search_order_and_pages(corpus):
    s = corpus.search
    by_price = [h["price"] for h in s(SearchQuery(order="price")).hits]
    assert by_price == sorted(by_price)
    recent = [h["last_seen"] for h in s(SearchQuery(order="recent")).hits]
    assert recent == sorted(recent, reverse=True)
    risk = [h["risk"] for h in s(SearchQuery(order="risk")).hits]
    assert risk == sorted(risk, reverse=True)
    pages = [h["key"] for off in range(0, 6, 2) for h in s(SearchQuery(order="price", limit=2, offset=off)).hits]
    assert pages == [h["key"] for h in s(SearchQuery(order="price")).hits]
    assert s(SearchQuery(limit=0)).hits == [] and s(SearchQuery(limit=0)).total == 6


def test_relevance_puts_whole_words_first(store):
    word, sub = L(item_id="1", title="ปลั๊ก ไฟ สามตา"), L(item_id="2", title="ปลั๊กพ่วง สามตา")
    store.ingest(word, V(word, risk=10), T0)
    store.ingest(sub, V(sub, risk=90), T0)
    r = store.search(SearchQuery(text="ปลั๊ก"))
    assert [h["key"] for h in r.hits] == ["shopee:1", "shopee:2"]
    assert [h["why"][0]["how"] for h in r.hits] == ["word", "substring"]
    assert [h["key"] for h in store.search(SearchQuery(text="ปลั๊ก", order="risk")).hits] == ["shopee:2", "shopee:1"]


HOSTILE = ['"; DROP TABLE listings; --', "' OR 1=1 --", "NEAR(a b)", "*", '"', '""', "a OR b", "key:1", "%", "_",
           "title:ปลั๊ก*", "ปลั๊ก AND NOT พ่วง", "(ปลั๊ก", "ปลั๊ก^3", "ปลั๊ก~2", "/.*/", "\\", "{\"match_all\":{}}",
           "*:*", "_exists_:title", "a" * 5000, "ปลั๊ก" * 300, "\x00", "\u200b", "   ", "-", "NOT", "OR", "AND", "^",
           "{{7*7}}", "<script>", "1; SELECT * FROM sqlite_master", "search_words MATCH 'x'", "rowid:1"]


@pytest.mark.parametrize("q", HOSTILE)
def test_query_text_is_data(corpus, q):
    """No query string breaks the search, and none reads more than listings containing it."""
    blank = not fold(q).strip()  # nothing to search for: no filter at all
    r = corpus.search(SearchQuery(text=q, seller=q, tis=q, marketplace=q))
    assert r.total == (6 if blank else 0)
    r = corpus.search(SearchQuery(text=q))
    for h in r.hits:  # anything found contains every term
        assert h.get("matched", []) == r.terms
    assert corpus.counts()["listings"] == 6


def test_query_operators_are_words(corpus):
    # "OR" is a word to look for, not an operator: nothing has both ปลั๊กพ่วง and ลูกชิ้น, with or without it
    assert corpus.search(SearchQuery(text="ปลั๊กพ่วง OR ลูกชิ้น")).total == 0
    assert corpus.search(SearchQuery(text="*")).total == 0


# ---- sellers, resolve, evidence, review --------------------------------------------------------------
def test_sellers_across_marketplaces(corpus):
    p = corpus.seller("shopee", "s1")
    assert (p["listings"], p["name"], p["first_seen"], p["last_seen"]) == (2, "ร้านไฟฟ้าดี", T0.isoformat(), (T0 + H).isoformat())
    assert {i["key"] for i in p["items"]} == {"shopee:1", "shopee:2"} and p["names"] == ["ร้านไฟฟ้าดี"]
    assert 0 <= p["flagged_share"] <= 1 and p["flagged"] == sum(1 for i in p["items"] if i["verdict"] in ("unlicensed", "mislabeled", "needs_review"))
    assert corpus.seller("shopee", "nobody") is None
    found = corpus.sellers("ร้าน")
    assert {(s["marketplace"], s["seller_id"]) for s in found} == {("shopee", "s1"), ("shop", "w1")}
    assert [(s["marketplace"], s["seller_id"]) for s in corpus.sellers("s9")] == [("lazada", "s9")]
    assert [(s["marketplace"], s["seller_id"]) for s in corpus.sellers("lazada:s9")] == [("lazada", "s9")]
    assert corpus.sellers("%") == [] and corpus.sellers("") == []
    tl = corpus.seller_history("shopee", "s1")
    assert [(e["kind"], e["key"]) for e in tl][:2] == [("listed", "shopee:1"), ("verdict", "shopee:1")]
    assert [e["at"] for e in tl] == sorted(e["at"] for e in tl)


def test_resolve(corpus):
    x = Listing(marketplace="lazada", item_id="77", title="พัดลม", url="https://www.lazada.co.th/products/x-i77.html")
    corpus.ingest(x, None, T0)
    assert corpus.resolve("lazada:77") == ["lazada:77"]
    assert corpus.resolve("https://www.lazada.co.th/products/x-i77.html") == ["lazada:77"]
    assert corpus.resolve("77") == ["lazada:77"] and corpus.resolve("nope") == [] and corpus.resolve("") == []


def test_evidence_and_review_status(store):
    a = L()
    store.ingest(a, V(a), T0)
    store.add_evidence(a.key, "raw", "evidence/shopee/1/x/response.json", "a" * 64, 10, T0)
    store.add_evidence(a.key, "manifest", "evidence/shopee/1/x/manifest.json", "b" * 64, 20, T0)
    store.add_evidence(a.key, "raw", "evidence/shopee/1/y/response.json", "c" * 64, 30, T0 + D)
    ev = store.evidence(a.key)
    assert [e["kind"] for e in ev] == ["raw", "manifest", "raw"] and ev[0]["pruned_at"] is None
    caps = list(store.evidence_captures(T0 + 2 * D))
    assert [(c["created_at"], len(c["files"]), c["newest"]) for c in caps] == [(T0.isoformat(), 2, False), ((T0 + D).isoformat(), 1, True)]
    assert caps[0]["verdict"] == "unlicensed" and caps[0]["review_status"] == "new"
    assert store.mark_evidence_pruned(a.key, T0.isoformat(), T0 + 3 * D) == 2
    assert [e["pruned_at"] for e in store.evidence(a.key)] == [(T0 + 3 * D).isoformat()] * 2 + [None]
    assert len(list(store.evidence_captures(T0 + 2 * D))) == 1
    store.set_review_status(a.key, "escalated")
    assert store.get(a.key)["review_status"] == "escalated"
    with pytest.raises(ValueError):
        store.set_review_status(a.key, "bogus")
    with pytest.raises(KeyError):
        store.set_review_status("shopee:nope", "confirmed")
    store.ingest(L(price=1.0), V(a), T0 + D)  # a new view keeps the officer's status
    assert store.get(a.key)["review_status"] == "escalated"


# ---- whole histories: every backend answers like SQLite ------------------------------------------------
@pytest.fixture(scope="module")
def history_events():
    from sandbox.world import build_world

    w = build_world(seed=5, n_licences=400, n_listings=60)
    return list(simulate(w, 240, seed=2))


def _feed(st, events):
    """Every event, one call each: one by one on a plain store, held and sent in one batch on Batched."""
    for e in events:
        if e.kind == "ingest":
            st.ingest(e.listing, e.verdict, e.at)
        else:
            st.delist(e.key, e.at)


def _answers(st, keys):
    queries = [SearchQuery(), SearchQuery(text="มอก"), SearchQuery(text="ปลั๊ก", order="recent"), SearchQuery(flagged_only=True, order="risk"),
               SearchQuery(marketplace="lazada", order="price", limit=7, offset=3), SearchQuery(text="ร้าน ดี"),
               SearchQuery(verdict="licensed", price_min=100)]
    out = {"counts": st.counts(), "search": [], "listings": {k: (st.get(k), st.history(k)) for k in keys}}
    for q in queries:
        r = st.search(q)
        out["search"].append((r.total, [h["key"] for h in r.hits], [h.get("why") for h in r.hits], r.facets))
    some = st.get(keys[0])
    out["seller"] = st.seller(some["marketplace"], some["seller_id"])
    out["seller_history"] = st.seller_history(some["marketplace"], some["seller_id"])
    out["sellers"] = st.sellers(some["seller"][:4])
    return out


def test_observation_retention(store):
    """prune_observations: views last seen before the cutoff go, except each listing's newest, every view
    of a listing an officer acted on or that the caller keeps; changes and verdicts stay."""
    def views(item, prices, start=T0):
        for i, p in enumerate(prices):
            x = L(item_id=item, price=p)
            store.ingest(x, V(x), start + i * 10 * D)

    views("1", [100.0, 110.0, 120.0])            # seen days 0, 10, 20
    views("2", [100.0, 110.0, 120.0])            # the same, then confirmed by an officer
    views("3", [100.0, 110.0, 120.0])            # the same, kept by the caller (a decision event)
    views("4", [100.0, 110.0], start=T0 - 40 * D)  # days -40, -30: both old, the newest stays
    store.set_review_status("shopee:2", "confirmed")
    store.flush()
    before = {k: store.history(k) for k in ("shopee:1", "shopee:2", "shopee:3", "shopee:4")}
    cut = T0 + 15 * D
    assert store.prune_observations(cut, {"shopee:3"}, dry_run=True) == 3
    assert store.history("shopee:1") == before["shopee:1"]  # a dry run deletes nothing
    assert store.prune_observations(cut, {"shopee:3"}) == 3
    store.flush()
    after = {k: store.history(k) for k in before}
    assert [o["data"]["price"] for o in after["shopee:1"]["observations"]] == [120.0]
    assert [o["data"]["price"] for o in after["shopee:4"]["observations"]] == [110.0]
    assert after["shopee:2"] == before["shopee:2"] and after["shopee:3"] == before["shopee:3"]
    for k in ("shopee:1", "shopee:4"):
        assert (after[k]["changes"], after[k]["verdicts"]) == (before[k]["changes"], before[k]["verdicts"])
    assert store.prune_observations(cut, {"shopee:3"}) == 0  # nothing left to prune
    assert store.get("shopee:1")["price"] == 120.0
    x = L(item_id="1", price=130.0)  # the listing lives on after pruning
    r = store.ingest(x, V(x), T0 + 30 * D)
    assert r.new_observation and ("price", 120.0, 130.0) in r.changes
    store.flush()
    assert [o["data"]["price"] for o in store.history("shopee:1")["observations"]] == [120.0, 130.0]


def test_backends_agree(store, make_store, history_events):  # noqa: F811
    if store.backend == "sqlite" and not isinstance(store, Batched):
        pytest.skip("the reference itself")
    ref = make_store("sqlite")
    _feed(ref, history_events)
    _feed(store, history_events)
    keys = sorted({e.key for e in history_events})
    a, b = _answers(ref, keys), _answers(store, keys)
    assert a["counts"] == b["counts"]
    for k in keys:
        assert b["listings"][k] == a["listings"][k], k
    assert b["search"] == a["search"]
    assert (b["seller"], b["seller_history"], b["sellers"]) == (a["seller"], a["seller_history"], a["sellers"])


def test_dump_and_load_round_trip(store, make_store, history_events):  # noqa: F811
    _feed(store, history_events[:120])
    store.record_fetch("shopee", "123", ["shopee:123"], "h", T0)
    store.add_evidence(history_events[0].key, "raw", "evidence/a/b/c/response.json", "d" * 64, 5, T0)
    dump = list(store.dump())
    assert dump[0]["type"] == "meta" and {d["type"] for d in dump} == {"meta", "listing", "crawl_state"}
    for other in ("sqlite", store.backend if store.backend == "sqlite" else "osmem"):
        copy = make_store(other if other != "elasticsearch" else "osmem")
        assert copy.load(dump) == len(dump) - 1
        again = list(copy.dump())
        assert [{k: v for k, v in d.items() if k != "backend"} for d in again] == \
            [{k: v for k, v in d.items() if k != "backend"} for d in dump]
        assert copy.load(dump) == len(dump) - 1  # loading again replaces, it does not duplicate
        assert copy.counts() == store.counts()
        # the copy goes on where the original stopped
        e = history_events[130]
        if e.kind == "ingest":
            assert copy.ingest(e.listing, e.verdict, e.at).key == e.key


def test_info(store):
    a = L()
    store.ingest(a, V(a), T0)
    i = store.info()
    assert i["schema_version"] == 2 and i["counts"]["listings"] == 1 and i["counts"]["observations"] == 1 and i["bytes"] > 0
