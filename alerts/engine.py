"""The alert engine: reads the listing event log forward from its cursor and writes each partner's feed.

For every `verdict`, `decision`, `delisted` and `relisted` event it updates what is known about the
listing (`rules.Facts`), then asks the rules, partner by partner, whether an alert opens, changes or is
retracted, and appends the message to that partner's feed (and webhook queue). The messages of a batch
and the new cursor are committed together (alerts/store.py), so nothing is missed or doubled across
restarts.

A **retraction** (`alert.retracted`) is sent to every partner that received an alert when the listing
no longer qualifies: it became licensed or not controlled on a re-check, an officer dismissed it after
an automatic alert, its risk fell under the partner's minimum, or it left the partner's filters. A
partner acting on takedowns must stop (or undo) the action for a retracted alert.

A **resolution** (`alert.resolved`, reason `delisted`) closes an open alert when the crawl finds the
listing gone from the marketplace: nothing is left to take down. If the listing comes back and still
qualifies, the same alert is re-opened (`alert.reopened`).

`Publisher` turns stored messages into what partners receive (alerts/model.py), adding evidence links
signed to expire (`[alerts] evidence_link_days`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.clock import Clock, SystemClock, iso, parse_iso
from alerts.model import (
    PUBLIC_EVIDENCE_KINDS,
    AlertData,
    AlertMessage,
    PublicEvidence,
    PublicListing,
    PublicReason,
    PublicResolution,
    PublicRetraction,
    PublicStandard,
)
from alerts.rules import (
    Facts,
    apply_event,
    effective_filters,
    eligibility,
    escalation_target,
    public_state,
    resolution_sentence,
    retraction_sentence,
    transition,
)
from alerts.signing import evidence_token
from alerts.store import AlertStore, Partner
from matching.reasons import sentence

EVENT_KINDS = ("verdict", "decision", "delisted", "relisted", "partner_status")
BANGKOK = ZoneInfo("Asia/Bangkok")
CURSOR = "events"
_STAND_IN_ID = "al_" + "0" * 20  # the shape of a real alert id (store.new_alert)
_STAND_IN_HEAD = '{"alert_id":"' + _STAND_IN_ID + '"'
_NO_EVIDENCE = '"evidence":[]'  # how AlertData.model_dump_json() writes a payload's empty evidence


def _listing(key: str, facts: Facts, d: dict[str, Any] | None) -> PublicListing:
    mp, _, item = key.partition(":")
    if not d:
        return PublicListing(key=key, marketplace=facts.marketplace or mp, item_id=item)

    def s(name: str) -> str | None:
        v = d.get(name)
        return None if v in (None, "") else str(v)

    price = d.get("price")
    return PublicListing(key=key, marketplace=s("marketplace") or mp, item_id=s("item_id") or item, shop_id=s("shop_id"),
                         url=s("url"), title=s("title"), seller=s("seller"), seller_id=s("seller_id"),
                         price=float(price) if isinstance(price, int | float) else None, currency=s("currency"),
                         first_seen=s("first_seen"), last_seen=s("last_seen"))


def public_parts(facts: Facts, listing: dict[str, Any] | None, catalogue: Any) -> dict[str, Any]:
    """What every partner's alert about this listing shares: standard, listing, reasons."""
    std = None
    if facts.tis_no:
        st = catalogue.find(facts.tis_no) if catalogue is not None else None
        std = PublicStandard(tis_no=facts.tis_no, name_th=st.name_th if st else None, name_en=st.name_en if st else None)
    return {"standard": std, "listing": _listing(facts.key, facts, listing),
            "reasons": [PublicReason(code=r, th=sentence(r, "th"), en=sentence(r, "en")) for r in facts.reasons]}


def build_alert_data(alert_id: str, state: str, basis: str | None, facts: Facts, listing: dict[str, Any] | None,
                     catalogue: Any, opened_at: str, retraction: str | None = None,
                     parts: dict[str, Any] | None = None, resolution: str | None = None) -> AlertData:
    """The public part of an alert, field by field (no evidence: links are signed when published)."""
    parts = parts or public_parts(facts, listing, catalogue)
    return AlertData(
        alert_id=alert_id, state=state if state in ("open", "resolved") else "retracted",  # type: ignore[arg-type]
        basis=basis if basis in ("automatic", "confirmed", "escalated") else None,  # type: ignore[arg-type]
        verdict=facts.verdict, risk=facts.risk, licence_no=facts.licence_no, standard=parts["standard"],
        listing=parts["listing"], reasons=parts["reasons"],
        retraction=PublicRetraction(reason=retraction, th=retraction_sentence(retraction, "th"),
                                    en=retraction_sentence(retraction, "en")) if retraction else None,
        resolution=PublicResolution(reason=resolution, th=resolution_sentence(resolution, "th"),
                                    en=resolution_sentence(resolution, "en"),
                                    at=facts.delisted_at if resolution == "delisted" else None) if resolution else None,
        opened_at=opened_at)


@dataclass
class BatchResult:
    events: int = 0
    messages: int = 0
    cursor: int = 0


class AlertEngine:
    def __init__(self, store: AlertStore, events: Any, listings: Any, catalogue: Any = None, clock: Clock | None = None,
                 on_event: Any = None):
        self.store, self.events, self.listings, self.catalogue = store, events, listings, catalogue
        self.clock = clock or SystemClock()
        self.on_event = on_event  # called (event, facts) inside the batch, e.g. removal verification
        self.handoff: timedelta | None = None  # lease new deliveries for this long and keep them (take_fresh)
        self._fresh: list[dict[str, Any]] = []
        self._lease_for: tuple[datetime | None, str] = (None, "")

    # ---- reading the event log ------------------------------------------------------------------------
    def process(self, limit: int = 500) -> BatchResult:
        """Handle the next batch of events (at most `limit`); one transaction with the cursor."""
        self._fresh = []
        try:
            return self._process(limit)
        except BaseException:
            self._fresh = []  # rolled back: none of them exists
            raise

    def _process(self, limit: int) -> BatchResult:
        res = BatchResult()
        if self.store.flag("reconcile_all"):  # after a schema migration: bring every partner up to date once
            for p in self.store.partners(enabled_only=True):
                res.messages += self.reconcile(p.id)
            self.store.take_flag("reconcile_all")
        with self.store.tx():
            after = self.store.cursor(CURSOR)
            evs = self.events.read(after=after, limit=limit, kinds=EVENT_KINDS)
            res.cursor = after
            if not evs:
                return res
            partners = self.store.partners(enabled_only=True)
            now = self.clock.now()
            cache: dict[str, dict[str, Any] | None] = {}
            for ev in evs:
                before = self.store.facts_json(ev.key)
                facts = apply_event(Facts.from_json(ev.key, before) if before else None, ev.kind, ev.key, ev.data,
                                    iso(ev.at))
                self.store.put_facts(ev.key, facts.to_json(), now)
                if self.on_event is not None:
                    self.on_event(ev, facts)
                self._activity(ev, before, facts)
                if ev.kind != "partner_status":
                    known = self.store.alerts_of_listing(ev.key)  # every partner's, in one query
                    shared: dict[Any, str] = {}
                    for p in partners:
                        res.messages += self._apply(p, facts, now, ev.id, cache, known.get(p.id, (None, None)), shared)
                res.events += 1
            res.cursor = evs[-1].id
            self.store.db.execute("INSERT INTO cursors VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                                  (CURSOR, res.cursor))
        return res

    def _activity(self, ev: Any, before: dict[str, Any] | None, facts: Facts) -> None:
        """What officers' daily digests count: new flags, flags cleared, decisions, partner feedback."""
        was_flagged = bool(before) and Facts.from_json(ev.key, before or {}).flagged
        what = None
        if ev.kind == "verdict":
            what = "flagged" if facts.flagged and not was_flagged else "cleared" if was_flagged and not facts.flagged else None
        elif ev.kind == "decision" and facts.decision:
            what = facts.decision
        elif ev.kind == "partner_status":
            what = "partner_" + str(ev.data.get("status") or "status")
        if what:
            self.store.add_activity(ev.at.astimezone(BANGKOK).date().isoformat(), ev.at, ev.key, facts.marketplace,
                                    facts.tis_no, what, facts.verdict, facts.risk)

    def process_all(self, limit: int = 500) -> BatchResult:
        total = BatchResult()
        while True:
            r = self.process(limit)
            total.events += r.events
            total.messages += r.messages
            total.cursor = r.cursor
            if r.events < limit:
                return total

    def lag(self) -> int:
        """Events not handled yet."""
        return max(0, self.events.last_id() - self.store.cursor(CURSOR))

    # ---- one partner, one listing ---------------------------------------------------------------------
    def _listing_details(self, key: str, cache: dict[str, dict[str, Any] | None]) -> dict[str, Any] | None:
        if key not in cache:
            try:
                cache[key] = self.listings.get(key) if self.listings is not None else None
            except Exception:  # the store being unreachable must not lose the alert; details are optional
                cache[key] = None
        return cache[key]

    def _apply(self, p: Partner, facts: Facts, now: datetime, event_id: int | None,
               cache: dict[Any, Any], known: tuple[Any, Any] | None = None,
               shared: dict[Any, str] | None = None) -> int:
        """What this listing's facts mean for one partner: write the message, if any. `known`: the
        partner's open and latest alert on the listing, when the caller read them already (one query for
        every partner); `shared`: the event's payloads already serialised (see `_payload`)."""
        if known is None:
            row, latest = self.store.open_alert(p.id, facts.key), None
        else:
            row, latest = known
        e = eligibility(effective_filters(p.kind, p.operates, p.filters), facts, escalation_target(p.kind, p.operates, facts))
        resolved = None
        if row is None and e.ok:  # a new alert, or the re-opening of one resolved when the listing went away
            if known is None:
                latest = self.store.latest_alert(p.id, facts.key)
            resolved = latest if latest is not None and latest["state"] == "resolved" else None
        action = transition(json.loads(row["public_state"]) if row else None, e, facts, resolved is not None)
        if action is None:
            return 0
        details = self._listing_details(facts.key, cache)
        pk = ("parts", facts)
        parts = cache.get(pk)
        if parts is None:
            parts = cache[pk] = public_parts(facts, details, self.catalogue)
        shared = {} if shared is None else shared
        if action.type == "alert.opened":
            assert e.basis is not None
            aid = self.store.new_alert(p.id, facts.key, e.basis, self._public_state(facts, e.basis, shared), now)
            payload = self._payload(aid, "open", e.basis, facts, details, iso(now), parts, shared)
        elif action.type == "alert.reopened":
            assert resolved is not None and e.basis is not None
            aid = resolved["id"]
            self.store.reopen_alert(aid, e.basis, public_state(facts, e.basis), now)
            payload = self._payload(aid, "open", e.basis, facts, details, resolved["opened_at"], parts, shared)
        elif action.type == "alert.updated":
            assert row is not None and e.basis is not None
            aid = row["id"]
            self.store.update_alert(aid, e.basis, public_state(facts, e.basis), now)
            payload = self._payload(aid, "open", e.basis, facts, details, row["opened_at"], parts, shared)
        elif action.type == "alert.resolved":
            assert row is not None and action.reason is not None
            aid = row["id"]
            self.store.retract_alert(aid, action.reason, now, state="resolved")
            payload = self._payload(aid, "resolved", row["basis"], facts, details, row["opened_at"], parts, shared,
                                    resolution=action.reason)
        else:
            assert row is not None
            aid = row["id"]
            self.store.retract_alert(aid, action.reason or "outside_filters", now)
            payload = self._payload(aid, "retracted", row["basis"], facts, details, row["opened_at"], parts, shared,
                                    retraction=action.reason or "outside_filters")
        # handed straight to the delivery worker (leased from the start) unless an earlier message of the
        # alert is still queued: that one goes first, through the queue (store.claim_due keeps the order)
        hand = (self.handoff is not None and bool(p.webhook_url)
                and (action.type == "alert.opened" or not self.store.has_pending(aid)))
        lease = None
        if hand and self.handoff is not None:
            if self._lease_for[0] is not now:  # one text per batch (`now` is the batch's)
                self._lease_for = (now, iso(now + self.handoff))
            lease = self._lease_for[1]
        rowid, msg_id, seq = self.store.add_message(p, aid, action.type, facts.key, payload, now,
                                                    marketplace=facts.marketplace, verdict=facts.verdict,
                                                    tis_no=facts.tis_no, risk=facts.risk, event_id=event_id,
                                                    lease_until=lease)
        n = iso(now)
        if hand:
            self._fresh.append({"message_id": rowid, "partner_id": p.id, "alert_id": aid, "attempts": 0, "created_at": n,
                                "body": None, "msg_id": msg_id, "seq": seq, "type": action.type, "payload": payload,
                                "msg_created_at": n, "key": facts.key})
        return 1

    def take_fresh(self) -> list[dict[str, Any]]:
        """The deliveries leased to the worker by the last `process` (with `handoff` set): what
        `store.claim_due` would have returned for them. Empty after a batch that failed (rolled back)."""
        out, self._fresh = self._fresh, []
        return out

    @staticmethod
    def _public_state(facts: Facts, basis: str, shared: dict[Any, str]) -> str:
        k = ("state", basis)
        if k not in shared:
            shared[k] = json.dumps(public_state(facts, basis))
        return shared[k]

    def _payload(self, aid: str, state: str, basis: str | None, facts: Facts, details: dict[str, Any] | None,
                 opened_at: str, parts: dict[str, Any], shared: dict[Any, str], *, retraction: str | None = None,
                 resolution: str | None = None) -> str:
        """The stored payload (AlertData as JSON). The partners' messages about one event differ only in
        their alert id when the rest is the same (a bulk confirmation opens the same alert for every
        partner), so the models serialise it once per event with a stand-in id, and each partner's copy
        swaps its own id in: `alert_id` is AlertData's first field, at a fixed place in the text."""
        k = ("payload", state, basis, opened_at, retraction, resolution)
        text = shared.get(k)
        if text is None:
            text = build_alert_data(_STAND_IN_ID, state, basis, facts, details, self.catalogue, opened_at, parts=parts,
                                    retraction=retraction, resolution=resolution).model_dump_json()
            if not text.startswith(_STAND_IN_HEAD):  # cannot happen while alert_id is the first field; never guess
                return build_alert_data(aid, state, basis, facts, details, self.catalogue, opened_at, parts=parts,
                                        retraction=retraction, resolution=resolution).model_dump_json()
            shared[k] = text
        return '{"alert_id":' + json.dumps(aid) + text[len(_STAND_IN_HEAD):]

    def reconcile(self, pid: str, *, reason_if_closed: str | None = None) -> int:
        """Bring a partner's open alerts in line with what is eligible now (after it was added with a
        backfill, its filters changed, or it was enabled again). Returns the messages written."""
        n = 0
        now = self.clock.now()
        cache: dict[str, dict[str, Any] | None] = {}
        with self.store.tx():
            p = self.store.partner(pid)
            if p is None or not p.enabled:
                return 0
            seen = set()
            for key, d in self.store.all_facts():
                seen.add(key)
                n += self._apply(p, Facts.from_json(key, d), now, None, cache)
            for row in self.store.open_alerts(pid):  # open alerts of listings with no facts: cannot happen, but be safe
                if row["key"] not in seen:
                    n += self._apply(p, Facts(row["key"]), now, None, cache)
        return n


class Publisher:
    """Renders stored messages for partners, with evidence links signed to expire."""

    def __init__(self, store: AlertStore, listings: Any, base_url: str, link_days: float = 30,
                 clock: Clock | None = None):
        self.store, self.listings = store, listings
        self.base_url = base_url.rstrip("/")
        self.link_ttl = timedelta(days=link_days)
        self.clock = clock or SystemClock()
        self._key = store.signing_key()
        self._ev_cache: dict[tuple[str, str, str], str] = {}  # (listing, created, expiry) -> evidence JSON

    def evidence(self, key: str, created: datetime, base_url: str | None = None) -> list[PublicEvidence]:
        """Links to the listing's evidence files. They expire `link_days` after `created`, or after now
        when that has passed, so a link in a webhook is the same on every retry."""
        try:
            files = self.listings.evidence(key) if self.listings is not None else []
        except Exception:
            files = []
        now = self.clock.now()
        exp = created + self.link_ttl
        if exp <= now:
            exp = now + self.link_ttl
        base = (base_url or self.base_url).rstrip("/")
        out = []
        for f in files:
            if f.get("kind") not in PUBLIC_EVIDENCE_KINDS:
                continue
            tok = evidence_token(self._key, key, f["sha256"], exp)
            out.append(PublicEvidence(kind=str(f["kind"]), sha256=str(f["sha256"]), size=f.get("size"),
                                      captured_at=f.get("created_at"), url=f"{base}/api/v1/evidence/{tok}",
                                      expires_at=iso(exp)))
        return out

    def message(self, row: sqlite3.Row | dict[str, Any], base_url: str | None = None) -> AlertMessage:
        data = AlertData.model_validate(json.loads(row["payload"]))
        keys = row.keys()
        created = parse_iso(row["msg_created_at"] if "msg_created_at" in keys else row["created_at"])
        if row["type"] != "alert.retracted":
            data = data.model_copy(update={"evidence": self.evidence(row["key"], created, base_url)})
        return AlertMessage(id=row["msg_id"], seq=row["seq"], type=row["type"], timestamp=iso(created), data=data)

    def _evidence_json(self, key: str, created: datetime) -> str:
        """`evidence(key, created)` as JSON text, shared by the messages of one engine batch: every
        partner's message about a listing made by the same event has the same `created`, so the evidence
        files are looked up and the links signed once for all of them, not once per partner."""
        exp = created + self.link_ttl
        ck = (key, iso(created), iso(exp) if exp > self.clock.now() else "")  # "" : links from now, not cached
        hit = self._ev_cache.get(ck) if ck[2] else None
        if hit is not None:
            return hit
        text = json.dumps([e.model_dump(mode="json") for e in self.evidence(key, created)], ensure_ascii=False,
                          separators=(",", ":"))
        if ck[2]:
            if len(self._ev_cache) >= 4096:
                self._ev_cache.pop(next(iter(self._ev_cache)))
            self._ev_cache[ck] = text
        return text

    def body(self, row: sqlite3.Row) -> bytes:
        """The webhook body: the same JSON as `message(row)`. The stored payload was made by the allow-list
        models and the evidence entries are too, so the body is put together from them as text (their
        `"evidence":[]` filled in) instead of parsed and serialised again for every partner."""
        keys = row.keys()
        stamp = row["msg_created_at"] if "msg_created_at" in keys else row["created_at"]
        created = parse_iso(stamp)
        payload: str = row["payload"]
        if row["type"] != "alert.retracted":
            at = payload.find(_NO_EVIDENCE)
            if at < 0 or payload.rfind(_NO_EVIDENCE) != at:  # not as the engine writes it: the general way
                data = json.loads(payload)
                data["evidence"] = json.loads(self._evidence_json(row["key"], created))
                payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            else:  # a key, never inside a string (a quote in a string is escaped), and only AlertData has it
                payload = f'{payload[:at]}"evidence":{self._evidence_json(row["key"], created)}{payload[at + len(_NO_EVIDENCE):]}'
        return (f'{{"id":{json.dumps(row["msg_id"])},"seq":{int(row["seq"])},"type":{json.dumps(row["type"])},'
                f'"timestamp":{json.dumps(iso(created))},"data":{payload}}}').encode()
