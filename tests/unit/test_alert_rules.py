"""Which listings reach a partner, and when an alert opens, changes or is retracted."""

import pytest

from alerts.rules import Facts, Filters, apply_event, eligibility, public_state, transition

AUTO = Filters(min_risk=70)
CONF = Filters(confirmed_only=True)


def F(verdict="unlicensed", risk=80, decision=None, marketplace="shopee", tis="2432-2555"):
    return Facts("shopee:1", marketplace, verdict, risk, tis, None, ("no_claim",), decision)


@pytest.mark.parametrize("filters,facts,ok,basis_or_reason", [
    (AUTO, F(), True, "automatic"),
    (AUTO, F(risk=70), True, "automatic"),  # the minimum is inclusive
    (AUTO, F(risk=69), False, "below_min_risk"),
    (AUTO, F("mislabeled", 95), True, "automatic"),
    (AUTO, F("needs_review", 95), False, "undecided"),  # undecided evidence is never pushed automatically
    (AUTO, F("needs_review", 20, "confirmed"), True, "confirmed"),  # an officer decided it
    (AUTO, F(risk=10, decision="confirmed"), True, "confirmed"),  # a confirmation ignores the risk minimum
    (AUTO, F(risk=10, decision="taken_down"), True, "confirmed"),
    (AUTO, F(risk=99, decision="dismissed"), False, "dismissed"),
    (AUTO, F(risk=10, decision="escalated"), True, "confirmed"),  # sent on to ETDA or the platform
    (AUTO, F("licensed", 5), False, "licensed"),
    (AUTO, F("not_controlled", 0), False, "not_controlled"),
    (AUTO, F(None, 0), False, "not_controlled"),
    (CONF, F(risk=99), False, "not_confirmed"),
    (CONF, F(risk=1, decision="escalated"), True, "confirmed"),
    (CONF, F(risk=1, decision="confirmed"), True, "confirmed"),
    (Filters(marketplaces=("lazada",)), F(risk=99), False, "outside_filters"),
    (Filters(marketplaces=("lazada",)), F(risk=99, decision="confirmed"), False, "outside_filters"),
    (Filters(marketplaces=("lazada", "shopee")), F(risk=99), True, "automatic"),
    (Filters(standards=("2432",)), F(risk=99, tis="2432-2555"), True, "automatic"),  # any edition
    (Filters(standards=("มอก. 2432-2547",)), F(risk=99, tis="2432-2555"), True, "automatic"),
    (Filters(standards=("166-2549",)), F(risk=99, tis="2432-2555"), False, "outside_filters"),
    (Filters(standards=("685 เล่ม 1-2562",)), F(risk=99, tis="685 เล่ม 1-2562"), True, "automatic"),
    (Filters(standards=("685 เล่ม 1-2562",)), F(risk=99, tis="685 เล่ม 2-2562"), False, "outside_filters"),
    (Filters(standards=("2432",)), F(risk=99, tis=None), False, "outside_filters"),
    (Filters(verdicts=("mislabeled",)), F("unlicensed", 99), False, "outside_filters"),
    (Filters(verdicts=("mislabeled",)), F("mislabeled", 99), True, "automatic"),
])
def test_eligibility(filters, facts, ok, basis_or_reason):
    e = eligibility(filters, facts)
    assert e.ok is ok
    assert (e.basis if ok else e.reason) == basis_or_reason


def test_transitions_open_update_retract():
    f = F(risk=80)
    e = eligibility(AUTO, f)
    assert transition(None, e, f).type == "alert.opened"
    assert transition(public_state(f, "automatic"), e, f) is None  # nothing a partner sees changed
    f2 = F(risk=90)
    assert transition(public_state(f, "automatic"), eligibility(AUTO, f2), f2).type == "alert.updated"
    f3 = F(risk=90, decision="confirmed")  # an officer confirms an automatic alert: the basis changes
    a = transition(public_state(f2, "automatic"), eligibility(AUTO, f3), f3)
    assert a.type == "alert.updated" and a.basis == "confirmed"
    f4 = F("licensed", 3)
    r = transition(public_state(f3, "confirmed"), eligibility(AUTO, f4), f4)
    assert r.type == "alert.retracted" and r.reason == "licensed"
    assert transition(None, eligibility(AUTO, f4), f4) is None


def test_a_decision_belongs_to_the_verdict_it_was_made_on():
    f = apply_event(None, "verdict", "lazada:9", {"verdict": "unlicensed", "risk": 80, "marketplace": "lazada"})
    assert f.marketplace == "lazada" and f.decision is None
    f = apply_event(f, "decision", "lazada:9", {"decision": "dismissed", "note": "x", "by": "u1"})
    assert f.decision == "dismissed"
    f = apply_event(f, "verdict", "lazada:9", {"verdict": "unlicensed", "risk": 85, "marketplace": "lazada"})
    assert f.decision == "dismissed"  # same verdict, new risk: the officer's decision stands
    f = apply_event(f, "verdict", "lazada:9", {"verdict": "mislabeled", "risk": 95, "marketplace": "lazada"})
    assert f.decision is None  # a new verdict needs a new look
    f = apply_event(f, "decision", "lazada:9", {"decision": "confirmed"})
    f = apply_event(f, "decision", "lazada:9", {"decision": "made-up"})
    assert f.decision == "confirmed"  # an unknown decision changes nothing
    f = apply_event(f, "decision", "lazada:9", {"decision": "new", "action": "reopen"})
    assert f.decision is None  # reopened: the officer took the decision back
    assert apply_event(f, "delisted", "lazada:9", {}).status == "delisted"
    assert apply_event(apply_event(f, "delisted", "lazada:9", {}), "relisted", "lazada:9", {}).status == "active"


@pytest.mark.parametrize("risk,want", [("87", 87), (None, 0), ("junk", 0), (250, 100), (-3, 0)])
def test_hostile_risk_values_are_clamped(risk, want):
    assert apply_event(None, "verdict", "shop:1", {"verdict": "unlicensed", "risk": risk}).risk == want


def test_facts_and_filters_round_trip_through_json():
    f = F(decision="confirmed")
    assert Facts.from_json(f.key, f.to_json()) == f
    flt = Filters(("shopee",), ("2432-2555",), ("mislabeled",), 55, True)
    assert Filters.from_json(flt.to_json()) == flt


@pytest.mark.parametrize("filters,problem", [
    (Filters(verdicts=("licensed",)), "not a flagged verdict"),
    (Filters(standards=("plugs",)), "not a TIS number"),
    (Filters(min_risk=101), "between 0 and 100"),
])
def test_bad_filters_are_reported(filters, problem):
    assert any(problem in p for p in filters.validate())
