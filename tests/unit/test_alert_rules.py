"""Which listings reach a partner, and when an alert opens, changes or is retracted."""

import pytest

from alerts.rules import (
    Facts,
    Filters,
    apply_event,
    effective_filters,
    eligibility,
    escalation_target,
    public_state,
    transition,
)

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


# ---- escalation targets --------------------------------------------------------------------------------
def esc(target, decision="escalated", marketplace="shopee", risk=20):
    f = F(risk=risk, marketplace=marketplace)
    return apply_event(f, "decision", f.key, {"decision": decision, "target": target})


SHOPEE = ("platform", ("shopee",))
LAZADA = ("platform", ("lazada", "lazmall"))
ETDA = ("etda", ())
OTHER = ("other", ())


@pytest.mark.parametrize("partner,facts,target", [
    (ETDA, esc("etda"), True),
    (ETDA, esc("platform"), False),
    (SHOPEE, esc("platform"), True),  # the platform operating the listing's marketplace
    (LAZADA, esc("platform"), False),  # another platform is not the target
    (LAZADA, esc("platform", marketplace="lazmall"), True),
    (SHOPEE, esc("etda"), False),
    (OTHER, esc("etda"), False),
    (OTHER, esc("platform"), False),
    (ETDA, esc(None), False),  # an escalation without a target (older events): a plain confirmation
    (ETDA, esc("police"), False),  # an unknown target reaches nobody in particular
    (ETDA, F(decision="confirmed"), False),  # a plain confirmation targets nobody
    (ETDA, apply_event(esc("etda"), "decision", "shopee:1", {"decision": "taken_down"}), True),  # still theirs
    (ETDA, apply_event(esc("etda"), "decision", "shopee:1", {"decision": "new"}), False),  # reopened
    (ETDA, apply_event(esc("etda"), "decision", "shopee:1", {"decision": "dismissed"}), False),
    (ETDA, apply_event(esc("etda"), "verdict", "shopee:1", {"verdict": "mislabeled", "risk": 90}), False),
    (ETDA, apply_event(esc("etda"), "verdict", "shopee:1", {"verdict": "unlicensed", "risk": 95}), True),
])
def test_who_an_escalation_reaches(partner, facts, target):
    assert escalation_target(partner[0], partner[1], facts) is target


@pytest.mark.parametrize("filters,facts,target,ok,basis_or_reason", [
    # the target gets it whatever its filters: an officer sent it to them for action
    (Filters(marketplaces=("lazada",), standards=("166",), verdicts=("mislabeled",), confirmed_only=True),
     esc("etda"), True, True, "escalated"),
    (Filters(min_risk=99), esc("etda", risk=1), True, True, "escalated"),
    # for everyone else an escalation is a confirmation, within their filters (as before)
    (CONF, esc("etda"), False, True, "confirmed"),
    (Filters(marketplaces=("lazada",)), esc("etda"), False, False, "outside_filters"),
    # nothing opens for a listing that is no longer flagged, dismissed or gone, target or not
    (AUTO, apply_event(esc("etda"), "verdict", "shopee:1", {"verdict": "licensed", "risk": 2}), True, False, "licensed"),
    (AUTO, apply_event(esc("etda"), "delisted", "shopee:1", {}), True, False, "delisted"),
])
def test_eligibility_of_escalations(filters, facts, target, ok, basis_or_reason):
    e = eligibility(filters, facts, target)
    assert e.ok is ok and (e.basis if ok else e.reason) == basis_or_reason


def test_an_escalation_to_a_partner_that_had_the_alert_updates_its_basis():
    f = F(risk=90, decision="confirmed")
    g = esc("etda", risk=90)
    a = transition(public_state(f, "confirmed"), eligibility(AUTO, g, True), g)
    assert a.type == "alert.updated" and a.basis == "escalated"
    assert transition(public_state(f, "confirmed"), eligibility(AUTO, g, False), g) is None  # not the target


# ---- delisted and relisted -------------------------------------------------------------------------------
def test_delisting_resolves_and_relisting_reopens():
    f = F(risk=90)
    gone = apply_event(f, "delisted", f.key, {"last_seen": "2026-11-20"}, at="2026-11-23T03:00:00.000000Z")
    assert gone.status == "delisted" and gone.delisted_at == "2026-11-23T03:00:00.000000Z"
    e = eligibility(AUTO, gone)
    assert not e.ok and e.reason == "delisted"
    a = transition(public_state(f, "automatic"), e, gone)
    assert a.type == "alert.resolved" and a.reason == "delisted"  # resolved, not retracted: nothing to undo
    assert transition(None, e, gone) is None  # no alert, nothing to say
    back = apply_event(gone, "relisted", f.key, {})
    assert back.status == "active" and back.delisted_at is None
    e2 = eligibility(AUTO, back)
    assert transition(None, e2, back, resolved=True).type == "alert.reopened"  # the resolved alert comes back
    assert transition(None, e2, back, resolved=False).type == "alert.opened"
    # a delisted listing that a re-check clears stays resolved; relisted, it does not qualify
    cleared = apply_event(gone, "verdict", f.key, {"verdict": "licensed", "risk": 3})
    assert eligibility(AUTO, cleared).reason == "delisted"
    assert eligibility(AUTO, apply_event(cleared, "relisted", f.key, {})).reason == "licensed"


def test_new_facts_round_trip_and_old_facts_read_as_before():
    f = apply_event(esc("platform"), "delisted", "shopee:1", {}, at="2026-11-23T03:00:00.000000Z")
    assert Facts.from_json(f.key, f.to_json()) == f
    old = {"marketplace": "shopee", "verdict": "unlicensed", "risk": 80, "tis_no": None, "licence_no": None,
           "reasons": [], "decision": "escalated", "status": "active"}  # stored by the first version
    g = Facts.from_json("shopee:1", old)
    assert g.escalated_to is None and g.delisted_at is None
    assert eligibility(CONF, g, escalation_target("etda", (), g)).basis == "confirmed"


def test_a_platform_gets_its_own_marketplaces_unless_its_filter_names_others():
    own = effective_filters("platform", ("lazada",), CONF)
    assert own.marketplaces == ("lazada",) and own.confirmed_only
    assert eligibility(own, F(decision="confirmed")).reason == "outside_filters"  # a shopee listing
    named = Filters(marketplaces=("lazada", "shopee"), confirmed_only=True)
    assert effective_filters("platform", ("lazada",), named) == named
    assert effective_filters("etda", (), CONF) == CONF and effective_filters("other", (), AUTO) == AUTO
