"""Officers' decisions on flagged listings.

`check_decision` is the pure rule (which action is allowed from which review status, what it needs);
`Decider.decide` does it: the listing store's review status, the append-only `decisions` table and
audit log in app.sqlite, and a `decision` event in the listing event log (listings/events.py) that
the alerts package turns into partner alerts. A note is recorded in the decisions table and the
audit log but changes no status and writes no event.

| action       | from                          | to          | needs                         |
|--------------|-------------------------------|-------------|-------------------------------|
| `confirm`    | new, dismissed                | confirmed   |                               |
| `dismiss`    | new, confirmed                | dismissed   | a reason from DISMISS_REASONS |
| `escalate`   | new, confirmed                | escalated   | a target: etda or platform    |
| `taken_down` | confirmed, escalated          | taken_down  |                               |
| `reopen`     | confirmed, dismissed, escalated, taken_down | new |                     |
| `note`       | any                           | (unchanged) | the note                      |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from listings.model import FLAGGED
from review.db import AppDB, User, iso, now_utc

ACTIONS = ("confirm", "dismiss", "escalate", "taken_down", "reopen", "note")
TO_STATUS = {"confirm": "confirmed", "dismiss": "dismissed", "escalate": "escalated", "taken_down": "taken_down",
             "reopen": "new"}
FROM = {
    "confirm": {"new", "dismissed"},
    "dismiss": {"new", "confirmed"},
    "escalate": {"new", "confirmed"},
    "taken_down": {"confirmed", "escalated"},
    "reopen": {"confirmed", "dismissed", "escalated", "taken_down"},
}
# why a flag was wrong; each maps to the verdict the listing should have had (None: no label)
DISMISS_REASONS: dict[str, str | None] = {
    "licensed": "licensed",
    "not_controlled": "not_controlled",
    "accessory": "not_controlled",
    "form_not_covered": "not_controlled",
    "duplicate": None,
    "other": None,
}
TARGETS = ("etda", "platform")
MAX_NOTE = 4000


class DecisionError(ValueError):
    """A decision that cannot be made; `code` is a message key of review/i18n.py."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(detail or code)
        self.code = code
        self.detail = detail or code


def check_decision(action: str, status: str, verdict: str | None, reason: str | None = None,
                   target: str | None = None, note: str = "") -> str | None:
    """The review status the action leads to (None for a note), or DecisionError. Pure."""
    if action not in ACTIONS:
        raise DecisionError("act.not_allowed", f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    if len(note) > MAX_NOTE:
        raise DecisionError("act.not_allowed", f"a note is at most {MAX_NOTE} characters")
    if action == "note":
        if not note.strip():
            raise DecisionError("act.need_note", "the note is empty")
        return None
    if verdict not in FLAGGED and action != "reopen" and status == "new":
        raise DecisionError("act.not_allowed", f"the listing is not flagged (verdict {verdict})")
    if status not in FROM[action]:
        raise DecisionError("act.not_allowed", f"cannot {action} a listing whose status is {status}")
    if action == "dismiss":
        if reason not in DISMISS_REASONS:
            raise DecisionError("act.need_reason", f"a dismissal needs a reason ({', '.join(DISMISS_REASONS)})")
        if reason == "other" and not note.strip():
            raise DecisionError("act.need_reason", "a dismissal for another reason needs a note saying why")
    if action == "escalate" and target not in TARGETS:
        raise DecisionError("act.not_allowed", f"escalate to one of {', '.join(TARGETS)}")
    return TO_STATUS[action]


@dataclass
class Decided:
    id: int
    key: str
    action: str
    previous: str
    status: str


class Decider:
    def __init__(self, store: Any, appdb: AppDB, events: Any):
        self.store, self.appdb, self.events = store, appdb, events

    def decide(self, key: str, action: str, user: User, reason: str | None = None, target: str | None = None,
               note: str = "", licence_no: str | None = None, ip: str | None = None) -> Decided:
        listing = self.store.get(key)
        if listing is None:
            raise KeyError(key)
        note = (note or "").strip()
        previous = listing.get("review_status") or "new"
        new = check_decision(action, previous, listing.get("verdict"), reason, target, note)
        at = iso(now_utc())
        if action != "dismiss":
            reason = None
        if action != "escalate":
            target = None
        licence_no = (licence_no or "").strip()[:40] or None if action == "dismiss" and reason == "licensed" else None
        if new is not None:
            self.store.set_review_status(key, new)
        db = self.appdb
        with db._lock:
            db.db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.db.execute(
                    "INSERT INTO decisions(at, key, action, reason, target, note, previous, status, verdict, risk,"
                    " marketplace, tis_no, user_id, username) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (at, key, action, reason if licence_no is None else f"{reason}:{licence_no}", target, note or None,
                     previous, new or previous, listing.get("verdict"), listing.get("risk"), listing.get("marketplace"),
                     listing.get("tis_no"), user.id, user.username))
                did = int(cur.lastrowid or 0)
                db.db.execute(
                    "INSERT INTO audit(at, user_id, username, action, target, before, after, ip) VALUES (?,?,?,?,?,?,?,?)",
                    (at, user.id, user.username, f"decision.{action}", f"listing:{key}",
                     _json({"status": previous, "verdict": listing.get("verdict"), "risk": listing.get("risk")}),
                     _json({"status": new or previous, "reason": reason, "target": target, "note": note or None,
                            "licence_no": licence_no}), ip))
                db.db.execute("COMMIT")
            except BaseException:
                db.db.execute("ROLLBACK")
                raise
        if new is not None and self.events is not None:
            self.events.append("decision", key, {
                "decision": new, "action": action, "note": note or None, "previous": previous, "by": user.id,
                "reason": reason, "target": target, "marketplace": listing.get("marketplace"),
                "verdict": listing.get("verdict"), "risk": listing.get("risk"), "tis_no": listing.get("tis_no")},
                dedupe=f"review-decision:{self.appdb.path.resolve()}:{did}")
        return Decided(did, key, action, previous, new or previous)

    def for_listing(self, key: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.appdb.q("SELECT * FROM decisions WHERE key=? ORDER BY id", (key,))]


def _json(v: Any) -> str:
    import json

    return json.dumps(v, ensure_ascii=False, default=str)
