"""Exports: any list as CSV or XLSX, evidence packs (ZIP), officers' decisions as an evaluation set.

Listing text is hostile. A spreadsheet treats a cell starting with = + - @ (or a tab or carriage
return) as a formula, so such text cells get a leading apostrophe (OWASP "CSV injection"); numbers stay
numbers. XLSX cells lose the control characters Excel refuses.

An evidence pack holds, per listing, the stored evidence files (raw response, saved page, screenshot,
the crawl's own manifest), the listing, the verdict with its reasons as sentences, the history and
the decisions, and at the root `manifest.json` with the SHA-256 and size of every file in the pack,
when and by whom it was made. Evidence files whose SHA-256 no longer matches what the store recorded
are still packed and the manifest says so.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from matching.reasons import sentence
from review.i18n import BANGKOK, fmt_dt, tr

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

LISTING_COLUMNS = ("key", "marketplace", "item_id", "url", "title", "brand", "seller", "seller_id", "price", "currency",
                   "verdict", "risk", "tis_no", "licence_no", "reasons", "why", "review_status", "status",
                   "first_seen", "last_seen", "flagged_at")


def safe_cell(v: Any) -> Any:
    """A value safe to put in a spreadsheet cell: text that a spreadsheet would read as a formula
    gets a leading apostrophe; None becomes ''; numbers are kept."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float):
        return v
    s = str(v)
    if s.startswith(_FORMULA_START):
        return "'" + s
    return s


def listing_row(h: dict[str, Any], lang: str = "th") -> dict[str, Any]:
    reasons = h.get("reasons") or []
    return {
        "key": h.get("key"), "marketplace": h.get("marketplace"), "item_id": h.get("item_id"), "url": h.get("url"),
        "title": h.get("title"), "brand": h.get("brand"), "seller": h.get("seller"), "seller_id": h.get("seller_id"),
        "price": h.get("price"), "currency": h.get("currency"), "verdict": h.get("verdict"), "risk": h.get("risk"),
        "tis_no": h.get("tis_no"), "licence_no": h.get("licence_no"), "reasons": " ".join(reasons),
        "why": "; ".join(sentence(r, lang) for r in reasons), "review_status": h.get("review_status"),
        "status": h.get("status"), "first_seen": fmt_dt(h.get("first_seen"), lang),
        "last_seen": fmt_dt(h.get("last_seen"), lang), "flagged_at": fmt_dt(h.get("flagged_at"), lang)
        if h.get("flagged_at") else "",
    }


AUDIT_COLUMNS = ("id", "at", "at_utc", "username", "action", "target", "before", "after", "ip")
USER_COLUMNS = ("username", "display_name", "role", "active", "locked_until", "last_login", "created_at")
DASHBOARD_COLUMNS = ("table", "day", "marketplace", "standard", "label", "count")


def audit_row(r: dict[str, Any], lang: str = "th") -> dict[str, Any]:
    """An audit log entry as a spreadsheet row: the time in Asia/Bangkok and in UTC, before/after as JSON."""
    def js(v: Any) -> str:
        return "" if v is None else json.dumps(v, ensure_ascii=False, default=str, sort_keys=True)

    return {"id": r.get("id"), "at": fmt_dt(r.get("at"), lang), "at_utc": r.get("at"), "username": r.get("username"),
            "action": r.get("action"), "target": r.get("target"), "before": js(r.get("before")),
            "after": js(r.get("after")), "ip": r.get("ip")}


def user_row(u: Any, lang: str = "th") -> dict[str, Any]:
    """A user account as a spreadsheet row (never the password hash)."""
    return {"username": u.username, "display_name": u.display_name, "role": u.role, "active": u.active,
            "locked_until": fmt_dt(u.locked_until, lang) if u.locked_until else "",
            "last_login": fmt_dt(u.last_login, lang) if u.last_login else "",
            "created_at": fmt_dt(u.created_at, lang) if u.created_at else ""}


def dashboard_rows(d: dict[str, Any], lang: str = "th") -> Iterator[dict[str, Any]]:
    """The dashboard's figures (review.service.dashboard) as one long table: a row per figure, named by
    its `table` (flags_per_day_marketplace, flags_per_day_standard, flags_by_standard, backlog_age,
    decisions_per_officer, takedown)."""
    days = d.get("days") or []
    for mp, vals in (d.get("per_marketplace") or {}).items():
        for day, n in zip(days, vals, strict=False):
            if n:
                yield {"table": "flags_per_day_marketplace", "day": day, "marketplace": mp, "count": n}
    for std, vals in (d.get("per_standard") or {}).items():
        for day, n in zip(days, vals, strict=False):
            if n:
                yield {"table": "flags_per_day_standard", "day": day, "standard": std, "count": n}
    for std, n in d.get("by_standard") or []:
        yield {"table": "flags_by_standard", "standard": std, "count": n}
    for a, n in d.get("backlog") or []:
        yield {"table": "backlog_age", "label": tr(f"dash.age.{a}", lang), "count": n}
    for who, n in d.get("per_officer") or []:
        yield {"table": "decisions_per_officer", "label": who, "count": n}
    yield {"table": "takedown", "label": "taken_down", "count": d.get("taken_down", 0)}
    yield {"table": "takedown", "label": "acted_on", "count": d.get("acted", 0)}


def csv_bytes(rows: Iterable[dict[str, Any]], columns: Iterable[str]) -> Iterator[bytes]:
    """CSV (UTF-8 with BOM, so Excel reads Thai), streamed, every cell made safe."""
    cols = list(columns)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(cols)
    yield ("\ufeff" + buf.getvalue()).encode()
    for r in rows:
        buf.seek(0)
        buf.truncate()
        w.writerow([safe_cell(r.get(c)) for c in cols])
        yield buf.getvalue().encode()


def xlsx_bytes(rows: Iterable[dict[str, Any]], columns: Iterable[str], sheet: str = "tiswatch") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    cols = list(columns)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet[:31])
    header = []
    for c in cols:
        cell = WriteOnlyCell(ws, value=c)
        cell.font = Font(bold=True)
        header.append(cell)
    ws.append(header)
    for r in rows:
        out = []
        for c in cols:
            v = safe_cell(r.get(c))
            if isinstance(v, str):
                v = _ILLEGAL_XLSX.sub("", v)[:32_000]
                cell = WriteOnlyCell(ws, value=v)
                cell.data_type = "s"  # never a formula, whatever the text
            else:
                cell = WriteOnlyCell(ws, value=v)
            out.append(cell)
        ws.append(out)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---- the evaluation set -------------------------------------------------------------------------
LISTING_FIELDS = ("marketplace", "item_id", "shop_id", "url", "title", "description", "brand", "seller", "seller_id",
                  "price", "currency", "sold", "location", "category", "attributes", "images")


def expected_label(decision: dict[str, Any], listing: dict[str, Any]) -> dict[str, Any] | None:
    """The DOMAIN.md §4.2 `expected` object an officer's last decision implies, or None (no label).

    A dismissal names what the listing really is (DISMISS_REASONS); a confirmation (or escalation that
    ended in a takedown) says the flag was right: the verdict stays, except that a confirmed
    `needs_review` becomes `mislabeled` when the listing shows a specific TIS or licence number and
    `unlicensed` when it does not (DOMAIN.md §3)."""
    from review.decisions import DISMISS_REASONS

    status = decision.get("status")
    reason = (decision.get("reason") or "")
    if status == "dismissed":
        name, _, lic = reason.partition(":")
        verdict = DISMISS_REASONS.get(name)
        if verdict is None:
            return None
        if verdict == "licensed":
            return {"verdict": "licensed", "tis_no": listing.get("tis_no"), "licence_no": lic or None}
        return {"verdict": verdict, "tis_no": None, "licence_no": None}
    if status in ("confirmed", "taken_down"):
        v = listing.get("verdict")
        if v == "needs_review":
            claims = (listing.get("detail") or {}).get("claims") or []
            v = "mislabeled" if any(c.get("kind") in ("tis", "licence") for c in claims) else "unlicensed"
        if v not in ("unlicensed", "mislabeled"):
            return None
        return {"verdict": v, "tis_no": listing.get("tis_no"), "licence_no": None if v == "unlicensed" else listing.get("licence_no")}
    return None


def evaluation_line(listing: dict[str, Any], expected: dict[str, Any]) -> str:
    rec = {k: listing.get(k) for k in LISTING_FIELDS}
    rec["category"] = rec.get("category") or []
    rec["attributes"] = rec.get("attributes") or {}
    rec["images"] = rec.get("images") or []
    rec["observed_at"] = listing.get("last_seen")
    rec["expected"] = expected
    return json.dumps(rec, ensure_ascii=False)


# ---- evidence packs -----------------------------------------------------------------------------
class PackBuilder:
    """Builds an evidence pack ZIP in memory (packs are a few MB: screenshots and pages)."""

    def __init__(self, home: Path, made_by: str, made_at: datetime, lang: str = "th"):
        self.home = home.resolve()
        self.made_by, self.made_at, self.lang = made_by, made_at, lang
        self.buf = io.BytesIO()
        self.zip = zipfile.ZipFile(self.buf, "w", zipfile.ZIP_DEFLATED)
        self.files: list[dict[str, Any]] = []

    def _add(self, name: str, data: bytes, **extra: Any) -> None:
        info = zipfile.ZipInfo(name, date_time=self.made_at.astimezone(BANGKOK).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        self.files.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), **extra})

    def _json(self, name: str, obj: Any) -> None:
        self._add(name, json.dumps(obj, ensure_ascii=False, indent=1, default=str).encode())

    def add_listing(self, listing: dict[str, Any], history: dict[str, Any], evidence: list[dict[str, Any]],
                    decisions: list[dict[str, Any]]) -> None:
        folder = _safe_name(listing["key"])
        self._json(f"{folder}/listing.json", {k: listing.get(k) for k in (*LISTING_FIELDS, "key", "first_seen", "last_seen",
                                                                              "status", "delisted_at", "review_status")})
        reasons = listing.get("reasons") or []
        self._json(f"{folder}/verdict.json", {
            "verdict": listing.get("verdict"), "risk": listing.get("risk"), "tis_no": listing.get("tis_no"),
            "licence_no": listing.get("licence_no"), "reasons": reasons,
            "sentences_th": [sentence(r, "th") for r in reasons], "sentences_en": [sentence(r, "en") for r in reasons],
            "checked_at": listing.get("checked_at"), "registry_version": listing.get("registry_version"),
            "detail": listing.get("detail")})
        self._json(f"{folder}/history.json", history)
        self._json(f"{folder}/decisions.json", decisions)
        for e in evidence:
            p = (self.home / e["path"]).resolve()
            name = f"{folder}/evidence/{_safe_name(Path(e['path']).parent.name)}/{_safe_name(Path(e['path']).name)}"
            if not p.is_relative_to(self.home) or not p.is_file():
                self.files.append({"path": name, "missing": True, "recorded_sha256": e.get("sha256")})
                continue
            data = p.read_bytes()
            ok = hashlib.sha256(data).hexdigest() == e.get("sha256")
            self._add(name, data, kind=e.get("kind"), captured_at=e.get("created_at"), recorded_sha256=e.get("sha256"),
                      integrity="ok" if ok else "differs from the SHA-256 recorded at capture")
        lines = [f"{listing.get('key')}: {listing.get('title')}", f"URL: {listing.get('url')}",
                 f"{tr('queue.verdict', self.lang)}: {listing.get('verdict')} · {tr('queue.risk', self.lang)} {listing.get('risk')}"]
        lines += [f"- {sentence(r, self.lang)}" for r in reasons]
        self._add(f"{folder}/summary.txt", ("\n".join(str(x) for x in lines) + "\n").encode())

    def finish(self, title: str) -> bytes:
        manifest = {
            "title": title, "made_at_utc": self.made_at.isoformat(timespec="seconds"),
            "made_at_bangkok": self.made_at.astimezone(BANGKOK).isoformat(timespec="seconds"),
            "made_by": self.made_by, "made_with": "tiswatch", "hash": "sha256", "files": self.files,
        }
        self.zip.writestr(zipfile.ZipInfo("manifest.json", date_time=self.made_at.astimezone(BANGKOK).timetuple()[:6]),
                          json.dumps(manifest, ensure_ascii=False, indent=1))
        self.zip.close()
        return self.buf.getvalue()


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9ก-๙._-]+")


def _safe_name(s: str) -> str:
    return _UNSAFE_NAME.sub("_", s).strip("._")[:100] or "_"


def verify_pack(data: bytes) -> list[str]:
    """Problems in an evidence pack: files whose SHA-256 differs from its manifest, or that are missing."""
    z = zipfile.ZipFile(io.BytesIO(data))
    m = json.loads(z.read("manifest.json"))
    names = set(z.namelist())
    bad = []
    for f in m["files"]:
        if f.get("missing"):
            continue
        if f["path"] not in names:
            bad.append(f"{f['path']}: missing from the pack")
        elif hashlib.sha256(z.read(f["path"])).hexdigest() != f["sha256"]:
            bad.append(f"{f['path']}: SHA-256 differs from the manifest")
    return bad
