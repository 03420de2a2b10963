"""Timelines for people: what happened to a listing, or to a seller's listings, in time order. Pure.

`tiswatch history`, `tiswatch seller` and the JSON API print these; the store gives the raw history
(listings/store.py). Times stay ISO 8601 in UTC here; `local()` shows them in Asia/Bangkok.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

BANGKOK = ZoneInfo("Asia/Bangkok")
# order of entries that share a time: the listing appears, is seen, changes, is judged, is captured
_RANK = {"listed": 0, "view": 1, "change": 2, "verdict": 3, "evidence": 4, "last_seen": 5}
CHANGE_LABELS = {
    "price": "price", "title": "title", "claim": "TIS/licence claim", "seller": "seller", "brand": "brand",
    "stock": "sold count (stock)", "description": "description", "url": "URL", "verdict": "verdict",
    "delisted": "delisted", "relisted": "relisted",
}


def listing_timeline(listing: dict[str, Any], history: dict[str, list[dict[str, Any]]],
                     evidence: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Entries {at, kind, ...} oldest first: listed, each view (observation run: from, until, how
    many sightings, price), each change (field, old, new), each verdict (with its registry version),
    each evidence capture, and the last sighting."""
    out: list[dict[str, Any]] = [{"at": listing["first_seen"], "kind": "listed", "title": listing.get("title"),
                                  "url": listing.get("url"), "seller": listing.get("seller")}]
    for i, o in enumerate(history.get("observations", [])):
        d = o.get("data") or {}
        out.append({"at": o["first_seen"], "kind": "view", "n": i + 1, "until": o["last_seen"], "times": o.get("times", 1),
                    "price": d.get("price"), "sold": d.get("sold"), "title": d.get("title")})
    for c in history.get("changes", []):
        out.append({"at": c["at"], "kind": "change", "field": c["field"], "label": CHANGE_LABELS.get(c["field"], c["field"]),
                    "old": c.get("old"), "new": c.get("new")})
    for v in history.get("verdicts", []):
        out.append({"at": v["at"], "kind": "verdict", "verdict": v["verdict"], "risk": v.get("risk"), "tis_no": v.get("tis_no"),
                    "licence_no": v.get("licence_no"), "reasons": list(v.get("reasons") or []),
                    "registry_version": v.get("registry_version")})
    caps: dict[str, list[dict[str, Any]]] = {}
    for e in evidence or []:
        caps.setdefault(e["created_at"], []).append(e)
    for at, files in caps.items():
        out.append({"at": at, "kind": "evidence", "files": [f["kind"] for f in files], "paths": [f["path"] for f in files],
                    "pruned": all(f.get("pruned_at") for f in files)})
    out.append({"at": listing["last_seen"], "kind": "last_seen", "status": listing.get("status"),
                "delisted_at": listing.get("delisted_at")})
    out.sort(key=lambda e: (e["at"], _RANK[e["kind"]]))
    return out


def describe(e: dict[str, Any]) -> str:
    """One line for a person (English; listing text inside is data: escape it where markup is read)."""
    k = e["kind"]
    if k == "listed":
        return f"first seen: {e.get('title') or ''}"
    if k == "view":
        price = "" if e.get("price") is None else f", price {e['price']:g}"
        sold = "" if e.get("sold") is None else f", sold {e['sold']}"
        times = f"seen {e['times']}×" if e.get("times", 1) > 1 else "seen once"
        until = f" until {local(e['until'])}" if e.get("until") and e["until"] != e["at"] else ""
        return f"view {e['n']}: {times}{until}{price}{sold}"
    if k == "change":
        if e["field"] == "delisted":
            return "delisted (no longer on the marketplace)"
        if e["field"] == "relisted":
            return "relisted (back on the marketplace)"
        return f"{e['label']}: {_short(e.get('old'))} → {_short(e.get('new'))}"
    if k == "verdict":
        extra = ", ".join(x for x in (f"TIS {e['tis_no']}" if e.get("tis_no") else "",
                                      f"licence {e['licence_no']}" if e.get("licence_no") else "",
                                      f"registry {e['registry_version']}" if e.get("registry_version") else "") if x)
        return f"verdict {e['verdict']} (risk {e.get('risk')})" + (f" [{extra}]" if extra else "")
    if k == "evidence":
        return f"evidence captured: {', '.join(e['files'])}" + (" (files pruned)" if e.get("pruned") else "")
    if k == "last_seen":
        return "last seen" + (" (delisted)" if e.get("status") == "delisted" else "")
    return k


def _short(v: Any, n: int = 60) -> str:
    if v is None or v == "":
        return "—"
    s = str(v).replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def local(iso: str | None) -> str:
    """An ISO time in UTC shown in Asia/Bangkok: '2026-11-01 10:00'."""
    if not iso:
        return "—"
    try:
        return datetime.fromisoformat(iso).astimezone(BANGKOK).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def parse_when(text: str | None, end: bool = False) -> datetime | None:
    """A time given by a person: a day (2026-03-01, read in Asia/Bangkok: its start, or its end when
    `end`), or an ISO date-time (without an offset: Asia/Bangkok). Raises ValueError naming the text."""
    if text is None or not text.strip():
        return None
    t = text.strip()
    try:
        if len(t) == 10:
            d = date.fromisoformat(t)
            return datetime.combine(d, time.max if end else time.min, BANGKOK).astimezone(UTC)
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=BANGKOK)).astimezone(UTC)


def seller_summary(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of one seller's accounts across marketplaces."""
    n = sum(p["listings"] for p in profiles)
    flagged = sum(p["flagged"] for p in profiles)
    firsts = [p["first_seen"] for p in profiles if p.get("first_seen")]
    lasts = [p["last_seen"] for p in profiles if p.get("last_seen")]
    return {"accounts": len(profiles), "marketplaces": sorted({p["marketplace"] for p in profiles}), "listings": n,
            "flagged": flagged, "flagged_share": round(flagged / n, 3) if n else 0.0,
            "first_seen": min(firsts) if firsts else None, "last_seen": max(lasts) if lasts else None}
