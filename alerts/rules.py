"""Which listings a partner is alerted about, and when an alert opens, changes or is retracted. Pure.

The alert engine folds the listing event log into `Facts` (what is known about a listing now) and asks,
for each partner, whether the listing is *eligible* under the partner's filters. A partner's open
alerts are always exactly its eligible listings: a listing that becomes eligible opens an alert, one
whose public facts change while eligible updates it, one that stops being eligible retracts it.

Rules (DOMAIN.md §3 and the partners' needs):
- only flagged verdicts (unlicensed, mislabeled, needs_review) can be alerted;
- an officer's `dismissed` decision withdraws the listing; `confirmed`, `escalated` (sent on to ETDA or
  the platform) and `taken_down` confirm it, whatever its risk; reopening it (`new`) takes the
  decision back;
- an officer's decision applies to the verdict it was made on: when the verdict changes, the listing
  is undecided again (a flag that a registry re-check turns into another verdict needs a new look);
- a partner taking automatic flags gets listings the matcher decided (unlicensed, mislabeled) with a
  risk at or above its minimum; `needs_review` means the evidence does not decide it, so it reaches
  partners only once an officer has confirmed it;
- marketplace, standard (by base number: any edition) and verdict filters apply to every alert; a
  platform partner without a marketplace filter gets the marketplaces it operates only;
- an **escalation** names a target (review/decisions.py: `etda` or `platform`). For every partner it
  counts as a confirmation; for the partners it targets (partners of kind `etda` for an escalation to
  ETDA; partners of kind `platform` operating the listing's marketplace for one to the platform) it opens
  an alert whatever their filters, with basis `escalated`: an officer sent it to them for action. It
  stays theirs when the listing is then marked taken down; reopening or dismissing takes it back;
- a **delisted** listing (the crawl no longer finds it) resolves its open alerts (`alert.resolved`,
  reason `delisted`): nothing is left to take down, and nothing is to be undone either, unlike a
  retraction. When it is listed again and still qualifies, the partner's latest alert on it, if that
  was resolved, is re-opened (`alert.reopened`, same alert id).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from registry.tisno import parse_tis

FLAGGED = frozenset({"unlicensed", "mislabeled", "needs_review"})
AUTO_VERDICTS = frozenset({"unlicensed", "mislabeled"})
CONFIRMING = frozenset({"confirmed", "escalated", "taken_down"})
DECISIONS = ("confirmed", "dismissed", "escalated", "taken_down")
REOPENED = "new"  # the review status a reopened listing goes back to
ESCALATION_TARGETS = ("etda", "platform")  # review/decisions.py TARGETS
PARTNER_KINDS = {
    "etda": "ETDA: receives escalations to ETDA",
    "platform": "a marketplace operator: receives escalations to the platform for the marketplaces it operates",
    "other": "anyone else: an escalation counts as a confirmation",
}
RESOLUTION_REASONS: dict[str, tuple[str, str]] = {
    "delisted": ("ประกาศนี้ไม่อยู่บนตลาดออนไลน์แล้ว (ถูกลบโดยผู้ขายหรือแพลตฟอร์ม)",
                 "the listing is no longer on the marketplace (removed by the seller or the platform)"),
}

# Why an alert was retracted: public codes with the sentences a partner reads.
RETRACTION_REASONS: dict[str, tuple[str, str]] = {
    "licensed": ("ประกาศนี้ตรงกับใบอนุญาตที่ใช้งานอยู่แล้ว", "the listing now matches an active licence"),
    "not_controlled": ("ตรวจซ้ำแล้วสินค้าไม่อยู่ภายใต้มาตรฐานบังคับ", "on re-check the product falls under no compulsory standard"),
    "dismissed": ("เจ้าหน้าที่ตรวจสอบแล้วและถอนการแจ้งเตือน", "an officer reviewed the listing and withdrew the alert"),
    "undecided": ("ผลตรวจอัตโนมัติไม่ชี้ขาดแล้ว รอเจ้าหน้าที่ตรวจสอบ", "the automatic check no longer decides it; an officer will review it"),
    "not_confirmed": ("ไม่ได้รับการยืนยันจากเจ้าหน้าที่แล้ว", "no longer confirmed by an officer"),
    "below_min_risk": ("คะแนนความเสี่ยงต่ำกว่าเกณฑ์ของท่าน", "the risk score fell below your minimum"),
    "outside_filters": ("ไม่อยู่ในเงื่อนไขการรับแจ้งเตือนของท่านแล้ว", "no longer within the filters of your feed"),
    "partner_disabled": ("บัญชีผู้รับแจ้งเตือนถูกระงับ", "your feed was disabled"),
}


def retraction_sentence(code: str, lang: str = "en") -> str:
    th, en = RETRACTION_REASONS.get(code, (code, code))
    return th if lang == "th" else en


def resolution_sentence(code: str, lang: str = "en") -> str:
    th, en = RESOLUTION_REASONS.get(code, (code, code))
    return th if lang == "th" else en


@lru_cache(maxsize=4096)
def tis_base(tis: str | None) -> str | None:
    """The base number of a TIS number ('2432-2555' -> '2432'), or None."""
    t = parse_tis(tis) if tis else None
    return t.base if t else None


@dataclass(frozen=True)
class Facts:
    """What the event log says about a listing now."""

    key: str
    marketplace: str = ""
    verdict: str | None = None
    risk: int = 0
    tis_no: str | None = None
    licence_no: str | None = None
    reasons: tuple[str, ...] = ()
    decision: str | None = None  # the officer's decision on the current verdict
    status: str = "active"  # active or delisted
    escalated_to: str | None = None  # etda or platform, while the decision is an escalation (or taken_down after it)
    delisted_at: str | None = None  # when the crawl found it gone (ISO time of the event)

    @property
    def flagged(self) -> bool:
        return self.verdict in FLAGGED

    def to_json(self) -> dict[str, Any]:
        return {"marketplace": self.marketplace, "verdict": self.verdict, "risk": self.risk, "tis_no": self.tis_no,
                "licence_no": self.licence_no, "reasons": list(self.reasons), "decision": self.decision,
                "status": self.status, "escalated_to": self.escalated_to, "delisted_at": self.delisted_at}

    @classmethod
    def from_json(cls, key: str, d: dict[str, Any]) -> Facts:
        return cls(key, d.get("marketplace") or "", d.get("verdict"), int(d.get("risk") or 0), d.get("tis_no"),
                   d.get("licence_no"), tuple(d.get("reasons") or ()), d.get("decision"), d.get("status") or "active",
                   d.get("escalated_to"), d.get("delisted_at"))


def apply_event(facts: Facts | None, kind: str, key: str, data: dict[str, Any], at: str | None = None) -> Facts:
    """The facts after one event of the listing event log (`at`: the event's time, ISO)."""
    f = facts or Facts(key, marketplace=data.get("marketplace") or key.split(":", 1)[0])
    if kind == "verdict":
        verdict = data.get("verdict")
        same = verdict == f.verdict
        decision = f.decision if same else None
        try:
            risk = max(0, min(100, int(data.get("risk") or 0)))
        except (TypeError, ValueError):
            risk = 0
        return replace(f, marketplace=data.get("marketplace") or f.marketplace, verdict=verdict, risk=risk,
                       tis_no=data.get("tis_no"), licence_no=data.get("licence_no"),
                       reasons=tuple(str(r) for r in data.get("reasons") or ()), decision=decision,
                       escalated_to=f.escalated_to if same else None)
    if kind == "decision":
        d = data.get("decision")
        if d == REOPENED:
            return replace(f, decision=None, escalated_to=None)
        if d not in DECISIONS:
            return f
        if d == "escalated":
            target = data.get("target")
            return replace(f, decision=d, escalated_to=target if target in ESCALATION_TARGETS else None)
        # marking an escalated listing taken down keeps its target; any other decision ends the escalation
        return replace(f, decision=d, escalated_to=f.escalated_to if d == "taken_down" else None)
    if kind == "delisted":
        return replace(f, status="delisted", delisted_at=at or f.delisted_at)
    if kind == "relisted":
        return replace(f, status="active", delisted_at=None)
    return f


def effective_filters(kind: str, operates: tuple[str, ...], f: Filters) -> Filters:
    """A platform partner with no marketplace filter gets its own marketplaces only (Lazada is not sent
    Shopee's listings unless an administrator names them in its filter)."""
    if kind == "platform" and operates and not f.marketplaces:
        return replace(f, marketplaces=tuple(operates))
    return f


def escalation_target(kind: str, operates: tuple[str, ...], facts: Facts) -> bool:
    """Whether a partner of this kind (and, for a platform, operating these marketplaces) is the target of
    the listing's escalation."""
    if facts.decision not in ("escalated", "taken_down") or not facts.escalated_to:
        return False
    if facts.escalated_to == "etda":
        return kind == "etda"
    if facts.escalated_to == "platform":
        return kind == "platform" and facts.marketplace in operates
    return False


@dataclass(frozen=True)
class Filters:
    """A partner's filters. Empty lists mean "all"."""

    marketplaces: tuple[str, ...] = ()
    standards: tuple[str, ...] = ()  # TIS numbers; matched by base number
    verdicts: tuple[str, ...] = ()
    min_risk: int = 70
    confirmed_only: bool = False
    _bases: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bases", frozenset(b for b in (tis_base(s) for s in self.standards) if b))

    def to_json(self) -> dict[str, Any]:
        return {"marketplaces": list(self.marketplaces), "standards": list(self.standards),
                "verdicts": list(self.verdicts), "min_risk": self.min_risk, "confirmed_only": self.confirmed_only}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Filters:
        return cls(tuple(d.get("marketplaces") or ()), tuple(d.get("standards") or ()), tuple(d.get("verdicts") or ()),
                   int(d.get("min_risk", 70)), bool(d.get("confirmed_only", False)))

    def validate(self) -> list[str]:
        """What is wrong with these filters (empty when fine)."""
        bad = []
        for v in self.verdicts:
            if v not in FLAGGED:
                bad.append(f"verdict {v!r} is not a flagged verdict ({', '.join(sorted(FLAGGED))})")
        for s in self.standards:
            if tis_base(s) is None:
                bad.append(f"{s!r} is not a TIS number")
        if not 0 <= self.min_risk <= 100:
            bad.append("min_risk must be between 0 and 100")
        return bad


@dataclass(frozen=True)
class Eligibility:
    ok: bool
    basis: str | None = None  # "automatic", "confirmed" or "escalated" when ok
    reason: str | None = None  # a RETRACTION_REASONS (or RESOLUTION_REASONS) code when not ok


def eligibility(f: Filters, facts: Facts, target: bool = False) -> Eligibility:
    """Whether a partner with filters `f` is alerted about the listing now; `target`: the partner is
    the target of the listing's escalation (`escalation_target`)."""
    if facts.status == "delisted":
        return Eligibility(False, reason="delisted")
    if not facts.flagged:
        return Eligibility(False, reason="licensed" if facts.verdict == "licensed" else "not_controlled")
    if facts.decision == "dismissed":
        return Eligibility(False, reason="dismissed")
    if target:
        return Eligibility(True, basis="escalated")
    if ((f.marketplaces and facts.marketplace not in f.marketplaces)
            or (f._bases and tis_base(facts.tis_no) not in f._bases)
            or (f.verdicts and facts.verdict not in f.verdicts)):
        return Eligibility(False, reason="outside_filters")
    if facts.decision in CONFIRMING:
        return Eligibility(True, basis="confirmed")
    if f.confirmed_only:
        return Eligibility(False, reason="not_confirmed")
    if facts.verdict not in AUTO_VERDICTS:
        return Eligibility(False, reason="undecided")
    if facts.risk < f.min_risk:
        return Eligibility(False, reason="below_min_risk")
    return Eligibility(True, basis="automatic")


def public_state(facts: Facts, basis: str) -> list[Any]:
    """What a partner sees of the facts (JSON-ready): an open alert is updated when this changes."""
    return [basis, facts.verdict, facts.risk, facts.tis_no, facts.licence_no, list(facts.reasons)]


@dataclass(frozen=True)
class Action:
    type: str  # alert.opened, alert.updated, alert.retracted, alert.resolved, alert.reopened
    basis: str | None = None
    reason: str | None = None


def transition(open_state: list[Any] | None, e: Eligibility, facts: Facts, resolved: bool = False) -> Action | None:
    """What to send a partner about a listing, given the public state of its open alert (None when it
    has none), the listing's eligibility now, and whether the partner's latest alert on the listing
    was resolved because it was delisted (`resolved`: re-opened rather than a new alert)."""
    if e.ok:
        assert e.basis is not None
        if open_state is None:
            return Action("alert.reopened" if resolved else "alert.opened", basis=e.basis)
        if list(open_state) != public_state(facts, e.basis):
            return Action("alert.updated", basis=e.basis)
        return None
    if open_state is not None:
        if e.reason in RESOLUTION_REASONS:
            return Action("alert.resolved", reason=e.reason)
        return Action("alert.retracted", reason=e.reason)
    return None
