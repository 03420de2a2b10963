"""What one ingest does to the stored state of a listing: pure, shared by every store backend.

A backend reads the listing's current state and its observation runs, asks `plan_ingest` what to
write, and writes it in one transaction (SQLite) or one guarded bulk request (Elasticsearch/
OpenSearch). Keeping the decision here makes both backends agree on every edge case, and lets the
rules be tested with tables of cases.

The rules:
- An **observation run** is one view of the listing (its content hash) with the first and last time
  it was seen and how many sightings it merges. A sighting of the same content right after a run
  extends the run; identical consecutive content is stored once.
- Ingestion is **idempotent and order-tolerant**: a sighting already covered by a run with the same
  content is a no-op (sending the same observation twice, or replaying a crawl, changes nothing); a
  late sighting (older than what is stored) is placed among the runs by time, backdating the next
  run when it has the same content. Late sightings never change the current state or make change
  events: changes are between the newest view and the one before it.
- The listing's **current state** is its newest view; a view newer than `last_seen` replaces it and
  the fields that differ become **change events** (price, title, seller, brand, stock, ...). A
  listing that was delisted and is seen after it was delisted is **relisted**.
- A **verdict** is kept in the history when it differs from the listing's current one (or was made
  with another registry version); `verdict_changed` says whether the verdict, risk, standard,
  licence or reasons changed (the event log writes an event then).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from listings.model import FLAGGED
from listings.store import IngestResult
from matching.normalise import fold
from matching.reasons import substantive

# the listing fields a view carries (DOMAIN.md §4.2 without the ids and the time)
VIEW_FIELDS = ("shop_id", "url", "title", "description", "brand", "seller", "seller_id", "price", "currency",
               "sold", "location", "category", "attributes", "images")
# fields whose change is an event, and the event's name
TRACKED = {"title": "title", "price": "price", "seller": "seller", "seller_id": "seller", "brand": "brand",
           "description": "description", "sold": "stock", "url": "url"}
CHANGE_KINDS = ("price", "title", "claim", "seller", "brand", "stock", "description", "url", "verdict",
                "delisted", "relisted")
# the verdict columns of a listing's state
VERDICT_FIELDS = ("verdict", "risk", "tis_no", "licence_no", "reasons", "detail", "checked_at", "registry_version",
                  "flagged_at")


@dataclass(frozen=True)
class Run:
    """One stored observation run. `ref` is the backend's handle on it (a row id, a document id)."""

    ref: Any
    content_hash: str
    first_seen: str
    last_seen: str
    times: int = 1
    order: int = 0  # creation order, for runs that start at the same time


@dataclass
class ObsOp:
    action: str  # "none", "insert", "extend" (last_seen moves on), "backdate" (first_seen moves back)
    ref: Any = None
    first_seen: str = ""
    last_seen: str = ""
    times: int = 1
    content_hash: str = ""
    order: int = 0  # the run's creation order (extend, backdate)


@dataclass
class Plan:
    result: IngestResult
    at: str
    obs: ObsOp
    state: dict[str, Any] | None  # the listing's new state (planner-owned fields), None: unchanged
    verdict_row: dict[str, Any] | None = None  # a row for the verdict history
    changes: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # as stored (text)


def tis_base(tis_no: str | None) -> str | None:
    """The standard without its edition year, for filtering by standard: '2432-2555' -> '2432'."""
    if not tis_no:
        return None
    from registry.tisno import parse_tis

    t = parse_tis(tis_no)
    return t.base if t else tis_no.split("-")[0].strip() or None


def seller_norm(seller: str | None) -> str | None:
    return fold(seller) or None


def _blank(v: Any) -> Any:
    return None if v in ("", None, [], {}) else v


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 1e15 else str(v)
    return str(v)


def needs_all_runs(latest: Run | None, at: str) -> bool:
    """Whether placing a sighting at `at` needs every run of the listing, not only the latest
    (only for a sighting older than the latest run's last sighting)."""
    return latest is not None and at < latest.last_seen


def place_observation(runs: Sequence[Run], content_hash: str, at: str) -> ObsOp:
    """Where a sighting goes among the runs (any order given; ordered here by first seen)."""
    if not runs:
        return ObsOp("insert", None, at, at, 1)
    ordered = sorted(runs, key=lambda r: (r.first_seen, r.order))
    for r in ordered:
        if r.content_hash == content_hash and r.first_seen <= at <= r.last_seen:
            return ObsOp("none", r.ref, r.first_seen, r.last_seen, r.times, order=r.order)
    prev = next((r for r in reversed(ordered) if r.first_seen <= at), None)
    nxt = next((r for r in ordered if r.first_seen > at), None)
    if prev is not None and prev.last_seen < at and prev.content_hash == content_hash:
        return ObsOp("extend", prev.ref, prev.first_seen, at, prev.times + 1, order=prev.order)
    if nxt is not None and nxt.content_hash == content_hash and (prev is None or prev.last_seen < at):
        return ObsOp("backdate", nxt.ref, at, nxt.last_seen, nxt.times + 1, order=nxt.order)
    return ObsOp("insert", None, at, at, 1)


def view_state(record: dict[str, Any], content_hash: str) -> dict[str, Any]:
    """The state fields a view sets."""
    s = {f: record.get(f) for f in VIEW_FIELDS}
    for f, empty in (("category", []), ("attributes", {}), ("images", [])):
        if s[f] is None:
            s[f] = empty
    s["content_hash"] = content_hash
    s["seller_norm"] = seller_norm(record.get("seller"))
    return s


def plan_ingest(prior: dict[str, Any] | None, runs: Sequence[Run], record: dict[str, Any], content_hash: str,
                at: str, verdict: Any | None, key: str) -> Plan:
    """The writes for one sighting of a listing.

    prior: the listing's stored state (None when new); runs: its observation runs (the latest one is
    enough unless `needs_all_runs`); record: the view (Listing.record()); at: ISO time in UTC;
    verdict: a matching.Verdict or None."""
    res = IngestResult(key)
    obs = place_observation(runs, content_hash, at)
    obs.content_hash = content_hash
    res.new_observation = obs.action == "insert"
    if prior is None:
        res.new_listing = True
        state = {**view_state(record, content_hash), "marketplace": record["marketplace"], "item_id": record["item_id"],
                 "first_seen": at, "last_seen": at, "status": "active", "delisted_at": None}
        changes: list[tuple[str, Any, Any]] = []
        if verdict is not None:
            row, vfields, changed = _apply_verdict(None, verdict, at)
            state.update(vfields)
            res.verdict_changed = changed
            return Plan(res, at, obs, state, row, [])
        return Plan(res, at, obs, state, None, [])
    state = None
    changes = []
    newest = at >= prior["last_seen"]
    if newest:
        state = {"last_seen": at}
        if prior.get("status") == "delisted" and (prior.get("delisted_at") is None or at > prior["delisted_at"]):
            changes.append(("relisted", prior.get("delisted_at"), at))
            state.update(status="active", delisted_at=None)
        if prior.get("content_hash") != content_hash:
            for f, name in TRACKED.items():
                a, b = _blank(prior.get(f)), _blank(record.get(f))
                if a != b:
                    changes.append((name, prior.get(f), record.get(f)))
            state.update(view_state(record, content_hash))
    elif at < prior["first_seen"]:
        state = {"first_seen": at}
    row = None
    if verdict is not None and newest:
        row, vfields, changed = _apply_verdict(prior, verdict, at)
        res.verdict_changed = changed
        res.previous_verdict = prior.get("verdict")
        if prior.get("verdict") is not None and prior.get("verdict") != verdict.verdict:
            changes.append(("verdict", prior.get("verdict"), verdict.verdict))
        old_claims = _claim_values(prior.get("detail") or {})
        new_claims = _claim_values({"claims": verdict.claims})
        if prior.get("detail") is not None and old_claims != new_claims:
            changes.append(("claim", ", ".join(sorted(old_claims)) or None, ", ".join(sorted(new_claims)) or None))
        state = {**(state or {}), **vfields}
    res.changes = changes
    return Plan(res, at, obs, state, row, [(n, _text(a), _text(b)) for n, a, b in changes])


def plan_verdict(prior: dict[str, Any], verdict: Any, at: str, key: str) -> Plan:
    """A verdict made again for the stored view (a registry re-check), without a new sighting."""
    res = IngestResult(key)
    row, vfields, changed = _apply_verdict(prior, verdict, at)
    res.verdict_changed = changed
    res.previous_verdict = prior.get("verdict")
    changes: list[tuple[str, Any, Any]] = []
    if prior.get("verdict") is not None and prior.get("verdict") != verdict.verdict:
        changes.append(("verdict", prior.get("verdict"), verdict.verdict))
    res.changes = changes
    return Plan(res, at, ObsOp("none"), vfields, row, [(n, _text(a), _text(b)) for n, a, b in changes])


def _claim_values(detail: dict[str, Any]) -> set[str]:
    return {str(c.get("value")) for c in detail.get("claims", []) or [] if isinstance(c, dict) and c.get("kind") != "vague"}


def verdict_record(v: Any) -> tuple[Any, ...]:
    return (v.verdict, v.risk, v.tis_no, v.licence_no, substantive(list(v.reasons)))


def _apply_verdict(prior: dict[str, Any] | None, v: Any, at: str) -> tuple[dict[str, Any] | None, dict[str, Any], bool]:
    """(history row or None, the listing's verdict fields, whether the verdict changed)."""
    same = prior is not None and prior.get("verdict") is not None and \
        (prior.get("verdict"), prior.get("risk"), prior.get("tis_no"), prior.get("licence_no"),
         substantive(list(prior.get("reasons") or []))) == verdict_record(v)  # registry_* codes are no difference
    row = None
    if not same or prior is None or prior.get("registry_version") != v.registry_version:
        row = {"at": at, "verdict": v.verdict, "risk": v.risk, "tis_no": v.tis_no, "licence_no": v.licence_no,
               "reasons": list(v.reasons), "registry_version": v.registry_version}
    flagged_at = None
    if v.verdict in FLAGGED:
        keep = prior is not None and prior.get("flagged_at") and prior.get("verdict") in FLAGGED
        flagged_at = prior["flagged_at"] if keep else at  # type: ignore[index]
    fields = {"verdict": v.verdict, "risk": v.risk, "tis_no": v.tis_no, "licence_no": v.licence_no,
              "reasons": list(v.reasons), "detail": v.detail(), "checked_at": at,
              "registry_version": v.registry_version, "flagged_at": flagged_at, "tis_base": tis_base(v.tis_no)}
    return row, fields, not same


def plan_delist(prior: dict[str, Any] | None, at: str) -> tuple[dict[str, Any], tuple[str, str | None, str]] | None:
    """A listing found gone at `at`: (state update, change row), or None when it is not active or was
    seen after `at` (a late delisting never hides a newer sighting)."""
    if prior is None or prior.get("status") != "active" or prior["last_seen"] > at:
        return None
    return {"status": "delisted", "delisted_at": at}, ("delisted", prior["last_seen"], at)
