"""The pull feed as JSON, Atom and CSV, and its cursor. Pure: messages in, text out.

The cursor is the partner's feed position (`seq`): `added_after=N` returns the messages after N;
every page says `next`, the value to send next time. Listing text is hostile: Atom is built with an
XML serialiser (escaped), CSV cells that a spreadsheet would run as a formula are defused.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

from alerts.model import AlertMessage

ATOM_NS = "http://www.w3.org/2005/Atom"
CSV_COLUMNS = ("seq", "id", "type", "timestamp", "alert_id", "state", "basis", "marketplace", "item_id", "url",
               "title", "seller", "seller_id", "price", "tis_no", "standard_name", "verdict", "risk", "licence_no",
               "reasons", "reason_codes", "evidence_urls", "retraction", "resolution")
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


class CursorError(ValueError):
    pass


def parse_cursor(value: str | None) -> int:
    """`added_after` / `next`: a feed position, 0 for the start."""
    if value is None or value == "":
        return 0
    v = value.strip()
    if not v.isdigit() or len(v) > 18:
        raise CursorError(f"cursor {value!r} is not a feed position (the `next` or `seq` of an earlier answer)")
    return int(v)


def page_url(base: str, params: dict[str, str | int | None], cursor: int) -> str:
    q = {k: v for k, v in params.items() if v not in (None, "") and k not in ("added_after", "next")}
    q["added_after"] = cursor
    return f"{base}?{urlencode(q)}"


def csv_cell(v: object) -> str:
    """A CSV cell that no spreadsheet runs as a formula."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    s = str(v)
    return "'" + s if s.startswith(_FORMULA_START) else s


def to_csv(items: Iterable[AlertMessage]) -> str:
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads Thai correctly only with a BOM
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for m in items:
        d = m.data
        lst = d.listing
        w.writerow([csv_cell(x) for x in (
            m.seq, m.id, m.type, m.timestamp, d.alert_id, d.state, d.basis, lst.marketplace, lst.item_id, lst.url,
            lst.title, lst.seller, lst.seller_id, lst.price, d.standard.tis_no if d.standard else None,
            (d.standard.name_th or d.standard.name_en) if d.standard else None, d.verdict, d.risk, d.licence_no,
            "; ".join(r.en for r in d.reasons), " ".join(r.code for r in d.reasons),
            " ".join(e.url for e in d.evidence), d.retraction.reason if d.retraction else None,
            d.resolution.reason if d.resolution else None)])
    return out.getvalue()


def to_atom(items: list[AlertMessage], *, feed_id: str, title: str, self_url: str, next_url: str | None,
            updated: str) -> str:
    ET.register_namespace("", ATOM_NS)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        e = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", {k: _NOT_XML.sub("", v) for k, v in attrs.items()})
        if text is not None:
            e.text = _NOT_XML.sub("", text)  # characters XML 1.0 cannot carry (NUL, …) are dropped
        return e

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    el(feed, "id", feed_id)
    el(feed, "title", title)
    el(feed, "updated", items[-1].timestamp if items else updated)
    el(el(feed, "author"), "name", "tiswatch (TISI)")
    el(feed, "link", rel="self", href=self_url)
    if next_url:
        el(feed, "link", rel="next", href=next_url)
    for m in items:
        d = m.data
        e = el(feed, "entry")
        el(e, "id", f"urn:tiswatch:{m.id}")
        verdict = d.verdict or ""
        el(e, "title", f"{m.type} {verdict} {d.listing.title or d.listing.key}".strip())
        el(e, "updated", m.timestamp)
        el(e, "category", term=m.type)
        if d.listing.url:
            el(e, "link", rel="alternate", href=d.listing.url)
        for ev in d.evidence:
            el(e, "link", rel="related", href=ev.url, title=ev.kind)
        lines = [r.en for r in d.reasons]
        if d.retraction:
            lines.insert(0, "Retracted: " + d.retraction.en)
        if d.resolution:
            lines.insert(0, "Resolved: " + d.resolution.en)
        el(e, "summary", "\n".join(lines), type="text")
        el(e, "content", m.model_dump_json(), type="text")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode")
