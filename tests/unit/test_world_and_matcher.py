"""The seeded world's truth (built from scenarios, never from the matcher) and the matcher agree."""

from collections import Counter

import pytest

from listings.model import Listing
from matching import check
from registry.index import Registry
from sandbox.world import SCENARIOS, build_world, generate_licences, grow


def test_world_is_deterministic(catalogue):
    a = build_world(seed=3, n_listings=60, catalogue=catalogue)
    b = build_world(seed=3, n_listings=60, catalogue=catalogue)
    assert [w.listing for w in a.listings] == [w.listing for w in b.listings]
    assert [lic.row() for lic in a.licences] == [lic.row() for lic in b.licences]


def test_world_covers_every_verdict_and_many_standards(world):
    verdicts = Counter(w.expected["verdict"] for w in world.listings)
    assert set(verdicts) == {"not_controlled", "licensed", "unlicensed", "mislabeled", "needs_review"}
    assert len({w.expected["tis_no"] for w in world.listings if w.expected["tis_no"]}) >= 10


@pytest.mark.parametrize("seed", [1, 2, 11])
def test_matcher_agrees_with_world_truth(seed, catalogue):
    w = build_world(seed=seed, n_listings=400, catalogue=catalogue)
    reg = Registry(w.licences, catalogue, "t")
    wrong = []
    for wl in w.listings:
        v = check(Listing(**wl.listing), reg)
        got = (v.verdict, v.tis_no, v.licence_no)
        want = (wl.expected["verdict"], wl.expected["tis_no"], wl.expected["licence_no"])
        if got != want:
            wrong.append((wl.scenario, wl.listing["title"], want, got, v.reasons))
        assert v.reasons, "every verdict has a reason"
    assert len(wrong) <= len(w.listings) * 0.01, wrong[:5]


def test_registry_generation_follows_real_counts(catalogue):
    lics, _ = generate_licences(29183, seed=1, catalogue=catalogue)
    assert len(lics) == 29183
    per = Counter(lic.base for lic in lics)
    for s in catalogue.standards:
        assert per[s.base] == s.total_licences, s.tis_no
    types = Counter(lic.licence_type for lic in lics)
    assert set(types) <= {"ท", "น", "ส", "นค"} and types["น"] > types["ท"]
    statuses = Counter(lic.status for lic in lics)
    assert 0.8 < statuses["active"] / len(lics) < 0.9 and statuses["revoked"] > 0


def test_scenario_weights_cover_all_verdicts():
    assert {v for v, _ in SCENARIOS.values()} == {"not_controlled", "licensed", "unlicensed", "mislabeled", "needs_review"}


def test_every_scenario_is_made_and_hard_spellings_occur(catalogue):
    w = build_world(seed=4, n_listings=1500, catalogue=catalogue)
    made = Counter(x.scenario for x in w.listings)
    assert set(made) == set(SCENARIOS), set(SCENARIOS) - set(made)
    titles = " ".join(x.listing["title"] for x in w.listings)
    assert "เเ" in titles and "\u200b" in titles  # typing noise of the default (hard) world
    # a licence written in Latin letters only, its brand written in Thai by the listing
    thai = [x for x in w.listings if x.scenario == "licensed_thai_brand"]
    lic = {x.licence_no: x for x in w.licences}
    assert all(lic[x.expected["licence_no"]].trademarks[0].isascii() for x in thai)
    assert not any(lic[x.expected["licence_no"]].trademarks[0] in x.listing["title"] for x in thai)


def test_grown_world_variants_keep_their_truth(catalogue):
    """grow(): many listings cheaply (the store benchmark's 200,000), each variant a distinct listing of
    the same marketplace whose truth still holds for the matcher; deterministic from the seed."""
    w = build_world(seed=2, n_listings=150, catalogue=catalogue)
    g = grow(w, 600, seed=4)
    assert len(g.listings) == 600 and g.listings[:150] == w.listings
    assert len({(x.marketplace, x.item_id) for x in g.listings}) == 600
    assert [x.listing for x in grow(w, 600, seed=4).listings] == [x.listing for x in g.listings]
    assert [x.listing for x in grow(w, 600, seed=5).listings] != [x.listing for x in g.listings]
    sellers = {(s.marketplace, s.seller_id) for s in w.sellers}
    variants = g.listings[150:]
    assert all((x.marketplace, x.listing["seller_id"]) in sellers for x in variants)
    assert len({x.listing["title"] for x in variants}) > len(variants) * 0.6
    reg = Registry(w.licences, catalogue, "t")
    wrong = [(x.listing["title"], x.expected["verdict"], v.verdict) for x in variants
             if ((v := check(Listing(**x.listing), reg)).verdict, v.tis_no, v.licence_no)
             != (x.expected["verdict"], x.expected["tis_no"], x.expected["licence_no"])]
    assert len(wrong) <= len(variants) * 0.01, wrong[:5]
    assert grow(w, 100).listings == w.listings[:100]
