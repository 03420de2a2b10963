"""A registry update re-checks exactly the listings it affects, records their new verdicts with the
registry version and reasons, and appends the `verdict` events (source "registry") that alerts follow.

The world's licences are imported (r1) and its listings stored with their verdicts; then one licence
is revoked and one granted (r2). The oracle is brute force: every stored listing checked with the new
registry. The re-check must find every listing whose verdict changed, write events and history for
those and no others, and look at far fewer listings than all of them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest

from listings.events import open_events
from listings.model import Listing
from listings.store import open_store
from matching import check
from matching.reasons import sentence
from ops.history import open_history
from ops.recheck import CURSOR, listing_from_row, recheck, same_verdict
from registry.index import Registry
from registry.licences import Licence
from registry.store import RegistryStore, bulk

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
NEW_NO = "ท9999-1/2569"


def _store_world(home, world, catalogue):
    rs = RegistryStore(home.registry_db)
    rs.import_licences(bulk(world.licences), today=date(2026, 11, 1))
    reg = Registry.from_store(rs, catalogue)
    rs.close()
    store = open_store(home)
    for w in world.listings:
        listing = Listing.model_validate({**w.listing, "observed_at": "2026-11-20T10:00:00+00:00"})
        store.ingest(listing, check(listing, reg))
    return store, reg


def _pick_changes(store, world, reg):
    """A licence that licensed listings rest on (to revoke), and an unlicensed branded listing with a
    new licence that covers it (to grant)."""
    licensed = [d for w in world.listings if (d := store.get(f"{w.marketplace}:{w.item_id}"))["verdict"] == "licensed"
                and d["licence_no"]]
    counts: dict[str, int] = {}
    for d in licensed:
        counts[d["licence_no"]] = counts.get(d["licence_no"], 0) + 1
    revoke = max(counts, key=lambda k: (counts[k], k))
    grant_for = None
    for w in world.listings:
        d = store.get(f"{w.marketplace}:{w.item_id}")
        if d["verdict"] == "unlicensed" and any(r.startswith("no_active_licence_for_brand:") for r in d["reasons"]) \
                and d["tis_no"] and len(d["detail"].get("standards", [])) == 1:
            grant_for = d
            break
    assert grant_for is not None
    brand = next(r.split(":")[1] for r in grant_for["reasons"] if r.startswith("no_active_licence_for_brand:"))
    return revoke, grant_for, brand


@pytest.fixture
def changed_registry(home, world, catalogue):
    store, reg = _store_world(home, world, catalogue)
    revoke, grant_for, brand = _pick_changes(store, world, reg)
    lics = []
    for lic in world.licences:
        if lic.licence_no == revoke:
            lic = dataclasses.replace(lic, status="revoked", status_date=date(2026, 11, 20))
        lics.append(lic)
    lics.append(Licence(licence_no=NEW_NO, tis_no=grant_for["tis_no"], licence_type="ท", licensee="บริษัท ใหม่ จำกัด",
                        trademarks=(brand,), product="new", issued=date(2026, 11, 21), status="active"))
    rs = RegistryStore(home.registry_db)
    rep = rs.import_licences(bulk(lics), today=date(2026, 11, 22))
    assert rep.added == 1 and rep.updated == 1 and rs.version() == "r2"
    new_reg = Registry.from_store(rs, catalogue)
    rs.close()
    hist = open_history(home)
    hist.put(CURSOR, 1)  # r1 was re-checked (or the listings were crawled with it)
    yield home, store, new_reg, revoke, grant_for, hist
    hist.close()
    store.close()


def _verdict_rows(store, key):
    return store.history(key)["verdicts"]


def test_registry_update_rechecks_exactly_the_affected_listings(changed_registry, world):
    home, store, new_reg, revoke, grant_for, hist = changed_registry
    keys = [f"{w.marketplace}:{w.item_id}" for w in world.listings]
    before = {k: store.get(k) for k in keys}
    history_len = {k: len(_verdict_rows(store, k)) for k in keys}
    # the oracle: every listing checked with the new registry
    should_change = {k for k, row in before.items() if not same_verdict(row, check(listing_from_row(row), new_reg))}
    rested_on_revoked = {k for k, row in before.items() if row["licence_no"] == revoke and row["verdict"] == "licensed"}
    assert rested_on_revoked and rested_on_revoked <= should_change and grant_for["key"] in should_change

    events = open_events(home)
    first_event = events.last_id()
    res = recheck(home, history=hist, clock=lambda: NOW)
    assert res["version"] == "r2" and res["version_from"] == "r1" and res["licences_changed"] == 2
    assert res["changed"] == len(should_change) and res["cursor_advanced"]
    assert len(should_change) <= res["candidates"] < len(keys) / 2  # looked at the touched standards only
    assert hist.get(CURSOR) == 2

    # events: one per changed listing, source registry, with the registry version
    evs = events.read(after=first_event, kinds=["verdict"])
    assert {e.key for e in evs} == should_change and len(evs) == len(should_change)
    for e in evs:
        assert e.data["source"] == "registry" and e.data["registry_version"] == "r2"
        assert e.data["previous"] == before[e.key]["verdict"] and e.data["verdict"] == store.get(e.key)["verdict"]
    # revoked: the listings that rested on it are flagged now, and their history says why
    for k in rested_on_revoked:
        now = store.get(k)
        assert now["verdict"] in ("mislabeled", "unlicensed"), now["reasons"]
        last = _verdict_rows(store, k)[-1]
        assert last["registry_version"] == "r2" and last["at"] == NOW.isoformat(timespec="seconds")
        assert f"registry_status:{revoke}:revoked" in last["reasons"] and "registry_recheck:r2" in last["reasons"]
    # granted: the listing is cleared, and its history says so in Thai and English
    g = store.get(grant_for["key"])
    assert g["verdict"] == "licensed" and g["licence_no"] == NEW_NO
    assert f"registry_granted:{NEW_NO}" in g["reasons"]
    assert sentence(f"registry_granted:{NEW_NO}", "th") == f"ใบอนุญาต {NEW_NO} ที่เพิ่งออกในทะเบียนรองรับสินค้านี้แล้ว"
    assert "newly granted" in sentence(f"registry_granted:{NEW_NO}", "en")
    changes = store.history(grant_for["key"])["changes"]
    assert ("verdict", "unlicensed", "licensed") in [(c["field"], c["old"], c["new"]) for c in changes]
    # nothing else was touched: no new verdict rows outside the changed listings
    for k in keys:
        grew = len(_verdict_rows(store, k)) - history_len[k]
        assert grew == (1 if k in should_change else 0), k

    # a second run with the same changes writes nothing (idempotent), events are not repeated
    last_event = events.last_id()
    again = recheck(home, history=hist, clock=lambda: NOW, since=1)
    assert again["changed"] == 0 and events.last_id() == last_event

    # the next crawl of the same view finds the same verdict: no new history row, no event
    row = store.get(grant_for["key"])
    res_ingest = store.ingest(listing_from_row(row), check(listing_from_row(row), new_reg))
    assert not res_ingest.verdict_changed
    assert len(_verdict_rows(store, grant_for["key"])) == history_len[grant_for["key"]] + 1
    events.close()


def test_cursor_stays_while_a_crawl_runs_and_nothing_to_do_when_current(changed_registry):
    home, _store, _, _, _, hist = changed_registry
    res = recheck(home, history=hist, clock=lambda: NOW, crawls_running=lambda: True)
    assert res["changed"] > 0 and not res["cursor_advanced"] and hist.get(CURSOR) == 1
    # the next run (the crawl is over) checks the same listings again: nothing left to change
    res2 = recheck(home, history=hist, clock=lambda: NOW, crawls_running=lambda: False)
    assert res2["changed"] == 0 and res2["candidates"] == res["candidates"] and hist.get(CURSOR) == 2
    res3 = recheck(home, history=hist, clock=lambda: NOW)
    assert res3 == {"version": "r2", "candidates": 0, "changed": 0, "licences_changed": 0}


def test_a_stop_leaves_the_cursor(changed_registry):
    home, _, _, _, _, hist = changed_registry
    res = recheck(home, history=hist, clock=lambda: NOW, stop=lambda: True)
    assert res["stopped"] and res["changed"] == 0 and hist.get(CURSOR) == 1


def test_registry_update_raises_and_retracts_partner_alerts(changed_registry, world):
    """End to end through alerts/: the crawl's verdicts opened alerts; the registry update opens alerts
    for the listings a revoked licence no longer backs and retracts the alert of the listing a new
    licence clears."""
    from alerts.rules import AUTO_VERDICTS, Filters
    from alerts.service import open_service
    from ops.jobs import JobContext, run

    home, store, _, revoke, grant_for, hist = changed_registry
    keys = [f"{w.marketplace}:{w.item_id}" for w in world.listings]
    events = open_events(home)
    for k in keys:  # what the crawl logged when it stored them
        d = store.get(k)
        events.append("verdict", k, {"verdict": d["verdict"], "risk": d["risk"], "tis_no": d["tis_no"],
                                     "licence_no": d["licence_no"], "reasons": d["reasons"], "previous": None,
                                     "marketplace": d["marketplace"], "source": "crawl", "registry_version": "r1"})
    events.close()
    svc = open_service(home)
    svc.store.add_partner("etda", "ETDA", NOW, filters=Filters(min_risk=0))
    svc.close()
    ctx = JobContext(home)

    def open_alerts() -> set[str]:
        s = open_service(home)
        try:
            return {r["key"] for r in s.store.open_alerts("etda")}
        finally:
            s.close()

    def expected() -> set[str]:
        return {k for k in keys if store.get(k)["verdict"] in AUTO_VERDICTS}

    assert run(ctx, "alerts").status == "ok"
    before = open_alerts()
    assert before == expected() and grant_for["key"] in before
    rested = {k for k in keys if store.get(k)["licence_no"] == revoke and store.get(k)["verdict"] == "licensed"}
    assert rested and not rested & before

    res = recheck(home, history=hist, clock=lambda: NOW)
    assert res["changed"] > 0
    assert run(ctx, "alerts").status == "ok"
    after = open_alerts()
    assert after == expected()
    assert rested <= after  # the revoked licence's listings are alerted now
    assert grant_for["key"] not in after  # the newly licensed listing's alert is retracted
    s = open_service(home)
    try:
        alert = s.store.alerts_for_listing(grant_for["key"])[-1]
        assert [m["type"] for m in s.store.messages_for_alert(alert["id"])][-1] == "alert.retracted"
    finally:
        s.close()
    ctx.close()
