"""Partner administration: the operations behind the admin pages (alerts/admin.py) and the admin JSON API
(alerts/admin_api.py), each written to the review app's audit log the same way whichever way it came.

An `Actor` is who does it (the review app's user, the client's address, the app database that keeps the
audit log). Errors are `PartnerError` (a bad request: the message says why) and `NotFound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from alerts.rules import Filters
from alerts.store import Created, Partner, PartnerError


class NotFound(LookupError):
    pass


@dataclass
class Actor:
    user: Any
    ip: str | None
    appdb: Any

    def audit(self, action: str, target: str, before: Any, after: Any) -> None:
        self.appdb.audit(action, target, before, after, self.user, self.ip)


def partner_or_404(svc: Any, pid: str) -> Partner:
    p = svc.store.partner(pid)
    if p is None:
        raise NotFound(f"no partner {pid!r}")
    return p


def _audit_view(p: Partner) -> dict[str, Any]:
    return {"filters": p.filters.to_json(), "webhook": p.webhook_url, "scopes": list(p.scopes), "kind": p.kind,
            "operates": list(p.operates)}


def add_partner(svc: Any, actor: Actor, pid: str, name: str, *, filters: Filters, scopes: tuple[str, ...],
                webhook_url: str | None, email: str | None, digest: bool, kind: str, operates: tuple[str, ...],
                concurrency: int | None, backfill: bool) -> tuple[Created, int]:
    """Add a partner; with `backfill`, alerts open at once for what qualifies now. Returns it (with its
    API key and webhook secret, to show once) and the alerts opened."""
    svc.engine.process_all()  # the backfill starts from what is known now
    c = svc.store.add_partner(pid.strip(), name.strip() or pid.strip(), svc.clock.now(), scopes=scopes, filters=filters,
                              webhook_url=webhook_url or None, email=email or None, digest=digest, kind=kind,
                              operates=operates, concurrency=concurrency or svc.settings.alerts.concurrency)
    n = svc.engine.reconcile(c.partner.id) if backfill else 0
    actor.audit("partner.add", f"partner:{c.partner.id}", None,
                {"filters": c.partner.filters.to_json(), "scopes": list(c.partner.scopes), "webhook": c.partner.webhook_url,
                 "kind": c.partner.kind, "operates": list(c.partner.operates), "backfill": n})
    return c, n


def update_partner(svc: Any, actor: Actor, pid: str, **changes: Any) -> tuple[Partner, str | None, int]:
    """Change a partner (the keyword arguments of AlertStore.update_partner). New filters or a new kind
    apply at once (alerts opened or retracted: the count is returned). Returns the partner, a webhook
    secret when a URL was set for the first time (show it once), and that count."""
    before = partner_or_404(svc, pid)
    p, secret = svc.store.update_partner(pid, svc.clock.now(), **changes)
    n = svc.engine.reconcile(pid) if (p.filters, p.kind, p.operates) != (before.filters, before.kind, before.operates) else 0
    actor.audit("partner.update", f"partner:{pid}", _audit_view(before), {**_audit_view(p), "reconciled": n})
    return p, secret, n


def set_enabled(svc: Any, actor: Actor, pid: str, enabled: bool) -> int:
    """Disable (keys refused, nothing made or sent) or enable again (alerts brought up to date: returned)."""
    partner_or_404(svc, pid)
    svc.store.update_partner(pid, svc.clock.now(), enabled=enabled)
    n = svc.engine.reconcile(pid) if enabled else 0
    actor.audit("partner.enable" if enabled else "partner.disable", f"partner:{pid}", None, None)
    return n


def rotate_key(svc: Any, actor: Actor, pid: str, grace_hours: float) -> str:
    partner_or_404(svc, pid)
    key = svc.store.rotate_key(pid, svc.clock.now(), timedelta(hours=grace_hours))
    actor.audit("partner.rotate_key", f"partner:{pid}", None, {"grace_hours": grace_hours})
    return key


def rotate_secret(svc: Any, actor: Actor, pid: str, grace_hours: float) -> str:
    partner_or_404(svc, pid)
    secret = svc.store.rotate_secret(pid, svc.clock.now(), timedelta(hours=grace_hours))
    actor.audit("partner.rotate_secret", f"partner:{pid}", None, {"grace_hours": grace_hours})
    return secret


def replay(svc: Any, actor: Actor, pid: str, msg_ids: list[str] | None) -> int:
    """Dead letters of a partner back in the queue (all, or these webhook ids); returns how many."""
    partner_or_404(svc, pid)
    n = svc.store.replay(pid, svc.clock.now(), msg_ids or None)
    actor.audit("partner.replay", f"partner:{pid}", None, {"message": ", ".join(msg_ids) if msg_ids else "all", "queued": n})
    return n


def delivery(svc: Any, message_id: int) -> dict[str, Any]:
    """One delivery with its attempts (NotFound when there is none)."""
    rows = svc.store.db.execute(
        "SELECT d.message_id, d.partner_id, d.alert_id, d.state, d.attempts, d.created_at, d.next_at, d.first_at,"
        " d.last_at, d.last_status, d.last_error, d.delivered_at, d.dead_at, m.msg_id, m.seq, m.type, m.key"
        " FROM deliveries d JOIN messages m ON m.id=d.message_id WHERE d.message_id=?", (message_id,)).fetchall()
    if not rows:
        raise NotFound("no such delivery")
    return {**dict(rows[0]), "attempts_detail": [dict(a) for a in svc.store.attempts(message_id)]}


def partner_statuses(svc: Any, key: str) -> list[dict[str, Any]]:
    """What partners were sent about a listing and what they reported, for officers (the listing page and
    the review API): one entry per alert, oldest first."""
    names = {p.id: p.name for p in svc.store.partners()}
    out = []
    for a in svc.store.alerts_for_listing(key):
        out.append({
            "partner": a["partner_id"], "partner_name": names.get(a["partner_id"], a["partner_id"]), "alert_id": a["id"],
            "state": a["state"], "basis": a["basis"], "opened_at": a["opened_at"], "closed_at": a["closed_at"],
            "close_reason": a["close_reason"],
            "feedback": [{"status": f["status"], "reason": f["reason"], "at": f["at"], "verification": f["verify_state"],
                          "verified_at": f["verified_at"], "verification_detail": f["verify_detail"]}
                         for f in svc.store.feedback(alert_id=a["id"])]})
    return out


__all__ = ["Actor", "NotFound", "PartnerError", "add_partner", "delivery", "partner_or_404", "partner_statuses",
           "replay", "rotate_key", "rotate_secret", "set_enabled", "update_partner"]
