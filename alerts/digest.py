"""Daily digests by e-mail: one per partner (at its address) and one per officer group (`[alerts.groups]`).

A digest covers one day in Asia/Bangkok. A partner's digest counts the messages of its feed that day
(opened, updated, retracted, resolved, re-opened; by marketplace, verdict and standard) and names the riskiest alerts opened;
an officer group's digest counts new flags, flags cleared, officers' decisions and partners' feedback in
its marketplaces and standards, and names the riskiest new flags. A digest is sent once per recipient
and day: running the job again sends only what failed before.

`build_*` are pure (data in, subject/text/HTML out; the HTML is autoescaped: listing titles are
hostile); `send_digests` reads the stores and sends through the `EmailNotifier`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, select_autoescape

from alerts.clock import run_async

BANGKOK = ZoneInfo("Asia/Bangkok")


@dataclass
class TopItem:
    title: str
    url: str | None
    marketplace: str
    verdict: str | None
    risk: int | None
    tis_no: str | None
    seller: str | None = None


@dataclass
class Digest:
    recipient_name: str
    day: date
    counts: dict[str, int]
    breakdown: dict[str, list[tuple[str, int]]]
    top: list[TopItem] = field(default_factory=list)
    kind: str = "partner"  # partner or group

    @property
    def subject(self) -> str:
        n = self.counts.get("alert.opened", self.counts.get("flagged", 0))
        what = "new alerts" if self.kind == "partner" else "new flags"
        return f"tiswatch daily digest {self.day.isoformat()}: {n} {what} ({self.recipient_name})"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC-aware start and end of a day in Asia/Bangkok."""
    start = datetime.combine(day, time(0), BANGKOK)
    return start, start + timedelta(days=1)


def previous_day(now: datetime) -> date:
    return now.astimezone(BANGKOK).date() - timedelta(days=1)


def build_partner_digest(name: str, day: date, messages: list[dict[str, Any]], top_n: int = 10) -> Digest:
    """`messages`: the partner's feed messages of the day (type and the stored public payload)."""
    counts = Counter(m["type"] for m in messages)
    opened = [m for m in messages if m["type"] == "alert.opened"]
    by_mp = Counter(m["payload"]["listing"]["marketplace"] for m in opened)
    by_v = Counter(m["payload"].get("verdict") or "?" for m in opened)
    by_std = Counter((m["payload"].get("standard") or {}).get("tis_no") or "—" for m in opened)
    top = sorted(opened, key=lambda m: (-(m["payload"].get("risk") or 0), m["payload"]["listing"]["key"]))[:top_n]
    return Digest(name, day, {t: counts.get(t, 0) for t in ("alert.opened", "alert.updated", "alert.retracted",
                                                            "alert.resolved", "alert.reopened")},
                  {"marketplace": by_mp.most_common(), "verdict": by_v.most_common(), "standard": by_std.most_common(10)},
                  [TopItem(p["listing"].get("title") or p["listing"]["key"], p["listing"].get("url"),
                           p["listing"]["marketplace"], p.get("verdict"), p.get("risk"),
                           (p.get("standard") or {}).get("tis_no"), p["listing"].get("seller"))
                   for p in (m["payload"] for m in top)])


def build_group_digest(name: str, day: date, activity: list[dict[str, Any]], listings: dict[str, dict[str, Any]],
                       marketplaces: list[str], bases: set[str], top_n: int = 10) -> Digest:
    """`activity`: the day's activity rows (what, key, marketplace, tis_base, verdict, risk)."""
    rows = [a for a in activity if (not marketplaces or a["marketplace"] in marketplaces)
            and (not bases or a["tis_base"] in bases)]
    counts = Counter(a["what"] for a in rows)
    flagged = [a for a in rows if a["what"] == "flagged"]
    best: dict[str, dict[str, Any]] = {}
    for a in flagged:
        if a["key"] not in best or (a["risk"] or 0) > (best[a["key"]]["risk"] or 0):
            best[a["key"]] = a
    top = sorted(best.values(), key=lambda a: (-(a["risk"] or 0), a["key"]))[:top_n]
    keys = ("flagged", "cleared", "confirmed", "dismissed", "escalated", "taken_down", "partner_removed",
            "partner_seller_warned", "partner_rejected")
    return Digest(name, day, {k: counts.get(k, 0) for k in keys},
                  {"marketplace": Counter(a["marketplace"] or "?" for a in flagged).most_common(),
                   "verdict": Counter(a["verdict"] or "?" for a in flagged).most_common()},
                  [TopItem((listings.get(a["key"]) or {}).get("title") or a["key"], (listings.get(a["key"]) or {}).get("url"),
                           a["marketplace"] or "", a["verdict"], a["risk"], (listings.get(a["key"]) or {}).get("tis_no"),
                           (listings.get(a["key"]) or {}).get("seller")) for a in top], kind="group")


_LABELS = {"alert.opened": "alerts opened", "alert.updated": "alerts updated", "alert.retracted": "alerts retracted",
           "alert.resolved": "alerts resolved (listing gone)", "alert.reopened": "alerts re-opened (listed again)",
           "flagged": "new flags", "cleared": "flags cleared", "confirmed": "confirmed by officers",
           "dismissed": "dismissed by officers", "escalated": "escalated", "taken_down": "taken down",
           "partner_removed": "reported removed by partners", "partner_seller_warned": "sellers warned by partners",
           "partner_rejected": "rejected by partners"}

_HTML = """<!doctype html><html lang="th"><head><meta charset="utf-8"><title>{{ d.subject }}</title></head>
<body style="font-family:sans-serif">
<h1>tiswatch — {{ d.recipient_name }} — {{ d.day.isoformat() }}</h1>
<table>{% for k, n in d.counts.items() %}<tr><td>{{ labels.get(k, k) }}</td><td style="text-align:right">{{ n }}</td></tr>{% endfor %}</table>
{% for name, rows in d.breakdown.items() if rows %}<h2>by {{ name }}</h2>
<table>{% for v, n in rows %}<tr><td>{{ v }}</td><td style="text-align:right">{{ n }}</td></tr>{% endfor %}</table>{% endfor %}
{% if d.top %}<h2>highest risk</h2><ol>{% for t in d.top %}
<li>{% if t.url %}<a href="{{ t.url }}">{{ t.title }}</a>{% else %}{{ t.title }}{% endif %}
 — {{ t.marketplace }}, {{ t.verdict }}, risk {{ t.risk }}{% if t.tis_no %}, มอก. {{ t.tis_no }}{% endif %}{% if t.seller %}, {{ t.seller }}{% endif %}</li>
{% endfor %}</ol>{% endif %}
</body></html>"""


def render(d: Digest) -> tuple[str, str]:
    """(plain text, HTML) of a digest. Listing text is escaped in the HTML; only http(s) links are kept."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    safe = [t if not t.url or t.url.startswith(("http://", "https://")) else TopItem(**{**t.__dict__, "url": None})
            for t in d.top]
    d2 = Digest(d.recipient_name, d.day, d.counts, d.breakdown, safe, d.kind)
    html = env.from_string(_HTML).render(d=d2, labels=_LABELS)
    lines = [f"tiswatch — {d.recipient_name} — {d.day.isoformat()}", ""]
    lines += [f"{_LABELS.get(k, k)}: {n}" for k, n in d.counts.items()]
    for name, rows in d.breakdown.items():
        if rows:
            lines += ["", f"by {name}:"] + [f"  {v}: {n}" for v, n in rows]
    if d.top:
        lines += ["", "highest risk:"]
        lines += [f"  {i}. [{t.risk}] {t.title} ({t.marketplace}, {t.verdict}{', มอก. ' + t.tis_no if t.tis_no else ''})"
                  + (f"\n     {t.url}" if t.url else "") for i, t in enumerate(d.top, 1)]
    return "\n".join(lines) + "\n", html


@dataclass
class DigestOutcome:
    recipient: str
    name: str
    status: str  # sent, skipped (already sent), failed, dry-run
    detail: str = ""


def collect(svc: Any, day: date) -> list[tuple[str, Digest]]:
    """Every digest of the day: (address, digest)."""
    from alerts.rules import tis_base

    start, end = day_bounds(day)
    top_n = svc.settings.alerts.digest_top
    out: list[tuple[str, Digest]] = []
    for p in svc.store.partners(enabled_only=True):
        if not (p.digest and p.email):
            continue
        msgs = [{"type": r["type"], "payload": json.loads(r["payload"])} for r in svc.store.messages_between(start, end, p.id)]
        out.append((p.email, build_partner_digest(p.name, day, msgs, top_n)))
    groups = svc.settings.alerts.groups
    if groups:
        act = [dict(r) for r in svc.store.activity(day.isoformat())]
        keys = {a["key"] for a in act if a["what"] == "flagged"}
        details = {}
        for k in keys:
            try:
                details[k] = svc.listings.get(k) or {}
            except Exception:
                details[k] = {}
        for name, g in groups.items():
            bases = {b for b in (tis_base(s) for s in g.standards) if b}
            d = build_group_digest(name, day, act, details, list(g.marketplaces), bases, top_n)
            out += [(addr, d) for addr in g.emails]
    return out


def send_digests(svc: Any, day: date | None = None, *, notifier: Any = None, dry_run: bool = False) -> list[DigestOutcome]:
    """Send the digests of `day` (default: yesterday in Bangkok) that were not sent yet."""
    from alerts.notify import EmailNotifier, Outgoing, SmtpConfig

    day = day or previous_day(svc.clock.now())
    smtp = svc.settings.alerts.smtp
    if notifier is None and not dry_run:
        if not smtp.host:
            return [DigestOutcome("", "", "failed", "no SMTP server: set [alerts.smtp] host")]
        notifier = EmailNotifier(SmtpConfig(smtp.host, smtp.port, smtp.username, smtp.password, smtp.security,
                                            smtp.sender, smtp.timeout))
    outcomes = []
    for addr, d in collect(svc, day):
        period = f"{d.kind}:{d.recipient_name}:{day.isoformat()}"
        if svc.store.digest_sent(addr, period):
            outcomes.append(DigestOutcome(addr, d.recipient_name, "skipped", "already sent"))
            continue
        text, html = render(d)
        if dry_run:
            outcomes.append(DigestOutcome(addr, d.recipient_name, "dry-run", text))
            continue
        tag = hashlib.sha256(f"{addr}\n{period}".encode()).hexdigest()[:16]
        msg = Outgoing(id=f"digest-{day.isoformat()}-{tag}", body=text.encode(),
                       subject=d.subject, html=html)
        res = run_async(lambda: notifier.send(addr, msg))  # noqa: B023 - called at once
        if res.ok:
            svc.store.mark_digest(addr, period, svc.clock.now())
            outcomes.append(DigestOutcome(addr, d.recipient_name, "sent"))
        else:
            outcomes.append(DigestOutcome(addr, d.recipient_name, "failed", res.error or ""))
    return outcomes
