"""Listing store methods the scheduler needs (re-checks and revisits), as contract tests: each runs
against every store backend (tests/store_helpers.py BACKENDS: SQLite, osmem-server, and a real
cluster when TISWATCH_ES_URL is set)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from store_helpers import BACKENDS, make_store, osmem  # noqa: F401

from listings.model import Listing
from matching.verdict import Verdict

T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def store(request, make_store):  # noqa: F811
    return make_store(request.param)


def _v(item, verdict, risk=70, tis=None, lic=None, reasons=(), standards=(), claims=(), version="r1"):
    return Verdict("lazada", item, verdict, risk, tis, lic, list(reasons), claims=list(claims),
                   standards=list(standards or ([tis] if tis else [])), registry_version=version)


def _put(store, item, verdict, at=T, title=None, **kw):
    lst = Listing(marketplace="lazada", item_id=item, title=title or f"item {item}", url=f"http://x/{item}", observed_at=at)
    return store.ingest(lst, _v(item, verdict, **kw))


def test_affected_keys_by_standard_licence_and_claim(store):
    _put(store, "1", "licensed", tis="2879-2560", lic="ท1-1/1")                       # main standard, licence
    _put(store, "2", "unlicensed", tis="2879-2560")                                    # main standard
    _put(store, "3", "unlicensed", tis="2780-2562", standards=["2780-2562", "1955-2551"])  # a standard that applies with it
    _put(store, "4", "mislabeled", tis="166-2549",
         claims=[{"kind": "licence", "value": "ท9-9/9", "where": "title"}])            # claims a licence
    _put(store, "5", "not_controlled")                                                 # nothing to do with licences
    _put(store, "6", "licensed", tis="685 เล่ม 1-2562", lic="ท2-2/2")                   # a part of a standard
    _put(store, "7", "licensed", tis="685 เล่ม 2-2562", lic="ท3-3/3")                   # another part
    assert store.affected_keys({"2879"}, set()) == ["lazada:1", "lazada:2"]
    assert store.affected_keys({"1955"}, set()) == ["lazada:3"]
    assert store.affected_keys(set(), {"ท9-9/9"}) == ["lazada:4"]
    assert store.affected_keys(set(), {"ท1-1/1", "ท404-1/1"}) == ["lazada:1"]
    assert store.affected_keys({"685 เล่ม 1"}, set()) == ["lazada:6"]
    assert store.affected_keys({"2432"}, {"ท0-0/0"}) == []
    assert store.affected_keys({"2879", "166"}, {"ท3-3/3"}) == ["lazada:1", "lazada:2", "lazada:4", "lazada:7"]


def test_record_verdict_without_an_observation(store):
    _put(store, "1", "licensed", tis="2879-2560", lic="ท1-1/1", risk=5)
    before = store.history("lazada:1")
    at = T + timedelta(days=2)
    res = store.record_verdict("lazada:1", _v("1", "mislabeled", 90, "2879-2560", "ท1-1/1",
                                             ["licence_inactive:ท1-1/1:revoked", "registry_recheck:r2"], version="r2"), at)
    assert res.verdict_changed and res.previous_verdict == "licensed"
    d = store.get("lazada:1")
    assert (d["verdict"], d["risk"], d["registry_version"]) == ("mislabeled", 90, "r2")
    h = store.history("lazada:1")
    assert len(h["observations"]) == len(before["observations"])  # no new view of the listing
    assert h["verdicts"][-1]["verdict"] == "mislabeled" and h["verdicts"][-1]["registry_version"] == "r2"
    assert ("verdict", "licensed", "mislabeled") in [(c["field"], c["old"], c["new"]) for c in h["changes"]]
    assert d["flagged_at"] is not None
    assert store.get("lazada:1")["detail"]["registry_version"] == "r2"
    assert store.record_verdict("lazada:404", _v("404", "licensed"), at) is None


def test_provenance_reasons_are_no_new_verdict(store):
    _put(store, "1", "licensed", tis="2879-2560", lic="ท1-1/1", reasons=["licence_match:ท1-1/1"], version="r2")
    store.record_verdict("lazada:1", _v("1", "licensed", 70, "2879-2560", "ท1-1/1",
                                        ["licence_match:ท1-1/1", "registry_granted:ท1-1/1", "registry_recheck:r2"], version="r2"))
    n = len(store.history("lazada:1")["verdicts"])
    res = _put(store, "1", "licensed", at=T + timedelta(days=1), risk=70, tis="2879-2560", lic="ท1-1/1",
               reasons=["licence_match:ท1-1/1"], version="r2")
    assert not res.verdict_changed and len(store.history("lazada:1")["verdicts"]) == n


def test_changed_keys(store):
    _put(store, "1", "licensed", title="a")
    _put(store, "2", "licensed", title="b")
    _put(store, "3", "licensed", title="c")
    _put(store, "1", "licensed", at=T + timedelta(days=3), title="a, new title")
    _put(store, "2", "licensed", at=T + timedelta(days=1), title="b, changed earlier")
    assert store.changed_keys("lazada", T + timedelta(days=2)) == {"lazada:1"}
    assert store.changed_keys("lazada", T) == {"lazada:1", "lazada:2"}
    assert store.changed_keys("shopee", T) == set()
