"""The listing store's pure logic, with tables of cases: where a sighting goes among observation runs,
what an ingest changes, how query text becomes terms, why a listing matched, rollover conditions,
timelines and the evidence retention policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from listings import es_schema as S
from listings import plan as P
from listings import query as Q
from listings import retention as R
from listings import timeline as T
from listings.store import SCHEMA_VERSION, SearchQuery, StoreError, dump_record_batches
from matching.verdict import Verdict

R1 = P.Run("r1", "A", "2026-01-02", "2026-01-04", 3, 1)
R2 = P.Run("r2", "B", "2026-01-06", "2026-01-06", 1, 2)


@pytest.mark.parametrize("runs,h,at,want", [
    ([], "A", "2026-01-01", ("insert", None, "2026-01-01", "2026-01-01", 1)),
    ([R1], "A", "2026-01-03", ("none", "r1", "2026-01-02", "2026-01-04", 3)),      # covered: a repeat
    ([R1], "A", "2026-01-04", ("none", "r1", "2026-01-02", "2026-01-04", 3)),
    ([R1], "A", "2026-01-05", ("extend", "r1", "2026-01-02", "2026-01-05", 4)),     # the same view again
    ([R1], "B", "2026-01-05", ("insert", None, "2026-01-05", "2026-01-05", 1)),     # a new view
    ([R1], "A", "2026-01-01", ("backdate", "r1", "2026-01-01", "2026-01-04", 4)),   # a late sighting
    ([R1], "B", "2026-01-01", ("insert", None, "2026-01-01", "2026-01-01", 1)),
    ([R2, R1], "B", "2026-01-05", ("backdate", "r2", "2026-01-05", "2026-01-06", 2)),  # between two runs
    ([R1, R2], "A", "2026-01-05", ("extend", "r1", "2026-01-02", "2026-01-05", 4)),
    ([R1, R2], "C", "2026-01-05", ("insert", None, "2026-01-05", "2026-01-05", 1)),
    ([R1, R2], "B", "2026-01-03", ("insert", None, "2026-01-03", "2026-01-03", 1)),  # another view inside a run
])
def test_place_observation(runs, h, at, want):
    o = P.place_observation(runs, h, at)
    assert (o.action, o.ref, o.first_seen, o.last_seen, o.times) == want


def V(verdict="unlicensed", risk=80, version="r1", claims=()):
    return Verdict("shopee", "1", verdict, risk, "2432-2555", None, ["no_claim"], claims=list(claims), registry_version=version)


REC = {"marketplace": "shopee", "item_id": "1", "title": "ปลั๊กพ่วง", "price": 100.0, "seller": "ร้าน A", "seller_id": "s1", "sold": 5}


def prior(**kw):
    base = {**{f: REC.get(f) for f in P.VIEW_FIELDS}, "marketplace": "shopee", "item_id": "1", "first_seen": "2026-01-02",
            "last_seen": "2026-01-04", "status": "active", "delisted_at": None, "content_hash": "A", "verdict": "unlicensed",
            "risk": 80, "tis_no": "2432-2555", "licence_no": None, "reasons": ["no_claim"], "registry_version": "r1",
            "detail": {"claims": []}, "flagged_at": "2026-01-02"}
    return {**base, **kw}


def test_plan_new_listing():
    pl = P.plan_ingest(None, [], REC, "A", "2026-01-01", V(), "shopee:1")
    r = pl.result
    assert (r.new_listing, r.new_observation, r.verdict_changed, r.previous_verdict, r.changes) == (True, True, True, None, [])
    assert pl.state["first_seen"] == pl.state["last_seen"] == "2026-01-01" and pl.state["flagged_at"] == "2026-01-01"
    assert pl.state["tis_base"] == "2432" and pl.state["seller_norm"] == "ร้าน a" and pl.verdict_row["registry_version"] == "r1"


@pytest.mark.parametrize("rec,want", [
    ({"price": 90.0}, [("price", "100", "90")]),
    ({"sold": 9}, [("stock", "5", "9")]),
    ({"seller": "ร้าน B", "seller_id": "s2"}, [("seller", "ร้าน A", "ร้าน B"), ("seller", "s1", "s2")]),
    ({"title": "x", "brand": "Haco"}, [("title", "ปลั๊กพ่วง", "x"), ("brand", None, "Haco")]),
    ({"description": ""}, []),  # empty and missing are the same
])
def test_plan_changes(rec, want):
    pl = P.plan_ingest(prior(), [R1], {**REC, **rec}, "B", "2026-01-05", None, "shopee:1")
    assert pl.changes == want and pl.state["last_seen"] == "2026-01-05"


def test_plan_verdicts_claims_relisting():
    pl = P.plan_ingest(prior(), [R1], REC, "A", "2026-01-05", V(version="r2"), "k")
    assert pl.verdict_row is not None and not pl.result.verdict_changed and pl.changes == []      # new registry version only
    pl = P.plan_ingest(prior(), [R1], REC, "A", "2026-01-05", V(), "k")
    assert pl.verdict_row is None and pl.state["flagged_at"] == "2026-01-02"                      # nothing new
    pl = P.plan_ingest(prior(), [R1], REC, "A", "2026-01-05", V("mislabeled", 90, claims=[{"kind": "tis", "value": "2432"}]), "k")
    assert pl.changes == [("verdict", "unlicensed", "mislabeled"), ("claim", None, "2432")] and pl.result.previous_verdict == "unlicensed"
    pl = P.plan_ingest(prior(), [R1], REC, "A", "2026-01-05", V("licensed", 5), "k")
    assert pl.state["flagged_at"] is None
    gone = prior(status="delisted", delisted_at="2026-01-06")
    assert P.plan_ingest(gone, [R1], REC, "A", "2026-01-05", None, "k").changes == []              # seen before it went
    pl = P.plan_ingest(gone, [R1], REC, "A", "2026-01-07", None, "k")
    assert pl.changes == [("relisted", "2026-01-06", "2026-01-07")] and pl.state["status"] == "active"
    late = P.plan_ingest(prior(), [R1], {**REC, "price": 1.0}, "Z", "2026-01-01", V("licensed"), "k")
    assert late.changes == [] and late.verdict_row is None and late.state == {"first_seen": "2026-01-01"}


def test_plan_delist():
    assert P.plan_delist(prior(), "2026-01-05") == ({"status": "delisted", "delisted_at": "2026-01-05"},
                                                    ("delisted", "2026-01-04", "2026-01-05"))
    assert P.plan_delist(prior(), "2026-01-03") is None           # seen after that: not gone
    assert P.plan_delist(prior(status="delisted"), "2026-01-09") is None and P.plan_delist(None, "x") is None


@pytest.mark.parametrize("text,want", [
    ("2432-2555", "2432"), ("มอก. 2432", "2432"), ("685 เล่ม 1-2562", "685 เล่ม 1"), ("TIS 166", "166"), (None, None), ("", None),
])
def test_tis_base(text, want):
    assert P.tis_base(text) == want


@pytest.mark.parametrize("q,want", [
    ("ปลั๊กพ่วง", ["ปลั๊กพ่วง"]), ("  ปลั๊ก   พ่วง ", ["ปลั๊ก", "พ่วง"]), ("PB-2001", ["pb-2001"]), ("มอก.2432", ["มอก.2432"]),
    ("๒๔๓๒", ["2432"]), ("ＰＢ２００１", ["pb2001"]), ('"a" OR b*', ["a", "or", "b"]), ("title:x", ["title", "x"]),
    ("NEAR(a b)", ["near", "a", "b"]), ("*", []), ("%_", []), ("...", []), ("a a A", ["a"]), ("\u200bปลั๊ก", ["ปลั๊ก"]),
    (" ".join(str(i) for i in range(40)), [str(i) for i in range(Q.MAX_TERMS)]),
])
def test_query_terms(q, want):
    assert Q.terms(q) == want


@pytest.mark.parametrize("term,words", [("pb-2001", ["pb", "2001"]), ("ปลั๊กพ่วง", ["ปลั๊กพ่วง"]), ("฿99", ["99"]), ("a.b/c", ["a", "b", "c"])])
def test_sub_words_like_unicode61(term, words):
    assert Q.sub_words(term) == words


def test_index_words_keep_thai_marks_and_cut_words():
    assert Q.index_words("ปลั๊กพ่วงมอก.2432 PB-2001") .split()[0] == "ปลั๊กพ่วง"
    assert "pb" in Q.index_words("PB-2001").split() and "2001" in Q.index_words("PB-2001").split()


@pytest.mark.parametrize("text", ["ปลั๊กพ่วง มอก.2432 ＰＢ-２００１", "ก\u0e4d\u0e48า เเอร์ \u0e48\u0e31", "ẞtraße ﬁ İstanbul ǅ ﬀ",
                                  "ﾊﾟﾜｰ ㍿ x\u200by", "  พัดลม\n\tตั้งโต๊ะ  ", "ab" * 10_001 + " ปลั๊ก"])
def test_index_words_fold_once_as_the_twice_folded_cut(text):
    """index_words folds once (the bulk path's speed-up): the same words as the cut of the text folded
    and folded again, as it was, for hostile and long text too."""
    from matching.normalise import fold_uncached, iter_tokens

    twice = " ".join(w for t in iter_tokens(fold_uncached(text)[:20_000], cache=False) for w in Q.sub_words(t))
    assert Q.index_words(text) == twice


def test_gc_paused_restores_the_collector():
    import gc

    from listings.store import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer batch is still running
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a batch fails")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # the application's choice kept
    finally:
        gc.enable()


def test_trigrams_find_substrings_as_phrases():
    hay = Q.trigrams("ปลั๊กพ่วง มอก").split()
    for needle, found in (("ลั๊กพ่", True), ("ปลั๊กไฟ", False), ("วง ม", True), ("งมอ", False)):
        n = Q.trigrams(needle).split()
        assert any(hay[i:i + len(n)] == n for i in range(len(hay))) == found, needle
    assert Q.trigrams("ab") == "" and Q.trigrams("a b") == "a␣b"


def test_explain():
    hit = {"title": "รางปลั๊กไฟ PB-2001 มอก.2432", "brand": "Haco", "seller": "ร้านดี", "description": "ส่งฟรี"}
    why = Q.explain(hit, Q.terms("ปลั๊ก pb-2001 haco ส่งฟรี ดี"))
    got = [(w["term"], w["field"], w["how"]) for w in why]
    assert got == [("ปลั๊ก", "title", "substring"), ("pb-2001", "title", "word"), ("haco", "brand", "word"),
                   ("ส่งฟรี", "description", "word"), ("ดี", "seller", "word")]
    w = why[1]
    assert w["snippet"][w["start"]:w["end"]] == "PB-2001"
    assert Q.explain(hit, ["nothing"]) == []


def test_normalized_query():
    q = Q.normalized(SearchQuery(text="x", seller="  ", tis="\u200b", marketplace=" shopee ", verdict=""))
    assert (q.seller, q.tis, q.marketplace, q.verdict) == (None, None, "shopee", None)


# ---- Elasticsearch/OpenSearch schema and rollover ----------------------------------------------------
NOW = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize("docs,size,age_days,want", [
    (10, 10, 1, None), (100, 10, 1, "100 documents"), (10, 2 << 30, 1, "bytes"), (10, 10, 31, "days old"), (0, 0, 90, None),
])
def test_rollover_due(docs, size, age_days, want):
    why = S.rollover_due(docs, size, NOW - timedelta(days=age_days), NOW, 100, 1 << 30, 30 * 86400)
    assert (why is None) if want is None else (want in why)


def test_ages_sizes_and_names():
    assert (S.parse_age("30d"), S.parse_age("12h"), S.parse_size("50gb"), S.parse_size("500MB")) == (2592000, 43200, 50 << 30, 500 << 20)
    for bad in ("30", "d", "-1d"):
        with pytest.raises(ValueError):
            S.parse_age(bad)
    name = S.observation_index("tw", NOW, 7)
    assert name == "tw-observations-2026.11.24-000007" and S.observation_number(name) == 7 and S.observation_number("x") == 0


def test_templates_and_policies():
    t = S.template("tw", "observations", 2, 1, "elasticsearch", "ilm")
    assert t["index_patterns"] == ["tw-observations-*"] and t["template"]["settings"]["index"]["lifecycle"]["rollover_alias"] == "tw-observations"
    t = S.template("tw", "observations", 1, 0, "opensearch", "ism")
    assert t["template"]["settings"]["index"]["plugins.index_state_management.rollover_alias"] == "tw-observations"
    t = S.template("tw", "listings", 1, 0, "opensearch", "client")
    assert t["template"]["mappings"]["dynamic"] == "strict" and t["template"]["mappings"]["_source"] == {"excludes": ["grams"]}
    assert "lifecycle" not in t["template"]["settings"]["index"]
    ilm = S.ilm_policy("30d", 10, "50gb")["policy"]["phases"]["hot"]["actions"]["rollover"]
    assert ilm == {"max_age": "30d", "max_docs": 10, "max_primary_shard_size": "50gb"}
    ism = S.ism_policy("tw", "30d", 10, "50gb")["policy"]
    assert ism["states"][0]["actions"][0]["rollover"]["min_doc_count"] == 10 and ism["ism_template"][0]["index_patterns"] == ["tw-observations-*"]
    # observations are never deleted by a policy: one state, only a rollover action
    assert [a for st in ism["states"] for a in st["actions"]] == [{"rollover": ism["states"][0]["actions"][0]["rollover"]}]
    assert list(S.ilm_policy("30d", 10, "50gb")["policy"]["phases"]) == ["hot"]


# ---- timelines, times ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,end,want", [
    ("2026-03-01", False, "2026-02-28T17:00:00+00:00"), ("2026-03-01", True, "2026-03-01T16:59:59.999999+00:00"),
    ("2026-03-01T10:00:00+00:00", False, "2026-03-01T10:00:00+00:00"), ("2026-03-01T10:00", False, "2026-03-01T03:00:00+00:00"),
])
def test_parse_when(text, end, want):
    assert T.parse_when(text, end).isoformat() == want


def test_parse_when_refuses():
    assert T.parse_when(None) is None and T.parse_when(" ") is None
    with pytest.raises(ValueError, match="yesterday"):
        T.parse_when("yesterday")


def test_listing_timeline_order_and_words():
    listing = {"first_seen": "2026-01-01T00:00:00+00:00", "last_seen": "2026-01-03T00:00:00+00:00", "status": "delisted", "title": "t"}
    hist = {"observations": [{"first_seen": "2026-01-01T00:00:00+00:00", "last_seen": "2026-01-02T00:00:00+00:00", "times": 2,
                              "data": {"price": 10.0}}],
            "changes": [{"at": "2026-01-02T00:00:00+00:00", "field": "price", "old": "10", "new": "9"},
                        {"at": "2026-01-03T00:00:00+00:00", "field": "delisted", "old": "x", "new": "y"}],
            "verdicts": [{"at": "2026-01-01T00:00:00+00:00", "verdict": "unlicensed", "risk": 80, "registry_version": "r1"}]}
    ev = [{"created_at": "2026-01-01T00:00:00+00:00", "kind": "html", "path": "p", "pruned_at": None}]
    tl = T.listing_timeline(listing, hist, ev)
    assert [e["kind"] for e in tl] == ["listed", "view", "verdict", "evidence", "change", "change", "last_seen"]
    words = [T.describe(e) for e in tl]
    assert words[1] == "view 1: seen 2× until 2026-01-02 07:00, price 10" and words[4] == "price: 10 → 9"
    assert words[2] == "verdict unlicensed (risk 80) [registry r1]" and words[-1] == "last seen (delisted)"


# ---- evidence retention ---------------------------------------------------------------------------------
def cap(**kw):
    return {"key": "k", "created_at": "2026-01-01T00:00:00+00:00", "verdict": "licensed", "review_status": "new", "newest": False, **kw}


@pytest.mark.parametrize("c,decided,policy,want", [
    (cap(), set(), R.Policy(30), (True, "older than the retention period")),
    (cap(), set(), R.Policy(0), (False, "retention off")),
    (cap(created_at="2026-11-20T00:00:00+00:00"), set(), R.Policy(30), (False, "within the retention period")),
    (cap(), {"k"}, R.Policy(30), (False, "an officer acted on the listing")),
    (cap(review_status="dismissed"), set(), R.Policy(30), (False, "an officer acted on the listing")),
    (cap(review_status="escalated"), set(), R.Policy(30), (False, "an officer acted on the listing")),
    (cap(verdict="unlicensed", newest=True), set(), R.Policy(30), (False, "newest capture of a flagged listing")),
    (cap(verdict="unlicensed", newest=True), set(), R.Policy(30, keep_latest_flagged=False), (True, "older than the retention period")),
    (cap(verdict="unlicensed", newest=False), set(), R.Policy(30), (True, "older than the retention period")),
])
def test_retention_decide(c, decided, policy, want):
    assert R.decide(c, decided, policy, NOW) == want


def test_sub_words_fast_path_agrees_with_unicode61_categories():
    wrongly_plain = [cp for cp in range(0x20, 0x10000) if Q._PLAIN.fullmatch(chr(cp)) and not Q._is_word_char(chr(cp))]
    assert wrongly_plain == []


@pytest.mark.parametrize("days, want", [(0, None), (1, datetime(2026, 11, 23, 3, tzinfo=UTC)),
                                        (30, datetime(2026, 10, 25, 3, tzinfo=UTC))])
def test_observation_cutoff(days, want):
    assert R.observation_cutoff(days, datetime(2026, 11, 24, 3, tzinfo=UTC)) == want


def _recs(*types):
    return [{"type": t, "key": f"k{i}"} if t else {"key": f"k{i}"} for i, t in enumerate(types)]


@pytest.mark.parametrize("records,batch,want", [
    ([], 2, []),
    ([{"type": "meta", "schema_version": SCHEMA_VERSION}], 2, []),                  # the meta record is left out
    ([{"type": "meta"}, *_recs("listing", None, "crawl_state")], 2, [["k0", "k1"], ["k2"]]),  # no type: a listing
    (_recs("listing", "listing_images", "listing", "listing"), 2, [["k0", "k1"], ["k2", "k3"]]),
    (_recs("listing", "listing"), 5, [["k0", "k1"]]),
])
def test_dump_record_batches(records, batch, want):
    assert [[r["key"] for r in part] for part in dump_record_batches(records, batch)] == want


@pytest.mark.parametrize("records,error", [
    ([{"type": "meta", "schema_version": SCHEMA_VERSION + 1}, *_recs("listing")], "newer than this tiswatch"),
    ([*_recs("listing"), {"type": "verdict", "key": "x"}], "unknown record type 'verdict'"),
])
def test_dump_record_batches_refuses(records, error):
    with pytest.raises(StoreError, match=error):
        list(dump_record_batches(records, 1000))


def test_index_words_by_cached_runs_is_the_token_cut():
    """index_words joins the cached words of each run (Q._run_words): the same text as splitting
    every token of iter_tokens with sub_words, on real and generated listing text and hostile text."""
    import random

    from matching.normalise import fold_uncached, iter_tokens
    from tests.unit.test_normalise import _FUZZ, _real_texts

    rnd = random.Random(7)
    texts = _real_texts() + ["".join(rnd.choice(_FUZZ + "ปลั๊กพ่วง_·'’&+") for _ in range(rnd.randint(0, 60))) for _ in range(3000)]
    for text in texts + texts:  # the second time from the cache
        folded = fold_uncached(text)
        want = " ".join(w for t in iter_tokens(folded, folded=True) for w in Q.sub_words(t))
        assert Q.index_words(text) == want, repr(text)
    assert Q._run_words.cache_info().hits > 0
