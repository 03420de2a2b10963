"""Reading TIS claims from listing text: standard numbers, licence numbers and vague mark claims.

Every way sellers write them (DOMAIN.md §2): มอก. 166-2549, มอก.166-2549, มอก 166, ม.อ.ก., TIS 166-2549,
Thai digits, CE years (TIS 2432-2012), editions with เล่ม, zero-width characters, full-width digits.
Pure: text in, claims out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from matching.normalise import clean, fold
from registry.tisno import be_year, parse_licence_no

# the mark word: มอก, มอก., ม.อ.ก., ม อ ก, TIS, T.I.S.
_MARK = r"(?:ม\s*\.?\s*อ\s*\.?\s*ก\s*\.?|(?<![A-Za-z])T\s*\.?\s*I\s*\.?\s*S\s*\.?(?![A-Za-z]))"
_NUM = r"(?P<num>\d{1,5})(?!\d)"
_PART = r"(?:\s*(?:เล่ม|ส่วน|part|pt\.?)\s*(?P<part>\d{1,3}(?:\s*\(\s*\d{1,3}\s*\))?))?"
_YEAR = r"(?:\s*[-–/.]\s*(?P<year>\d{4}|\d{2})(?!\d))?"
TIS_AFTER_MARK = re.compile(_MARK + r"\s*[:：#]?\s*(?:เลขที่|no\.?|number)?\s*" + _NUM + _PART + _YEAR, re.IGNORECASE)
# a bare NNNN-25YY: a TIS number without the mark word (Lazada slugs: "...-934-2558-...")
TIS_BARE = re.compile(r"(?<![\d/.:])(?P<num>\d{1,5})" + _PART + r"\s*-\s*(?P<year>25[0-9]{2})(?!\d)")
LICENCE = re.compile(
    r"(?<![ก-๙A-Za-z])(?P<lic>(?:นค|ท|น|ส)\s*\.?\s*\d{1,6}\s*-\s*\d{1,6}\s*/\s*\d{1,6})(?!\d)")
LICENCE_LABELLED = re.compile(
    r"(?:ใบอนุญาต(?:เลขที่)?|เลขที่ใบอนุญาต|licen[cs]e\s*(?:no\.?|number)?)\s*[:：#]?\s*"
    r"(?P<lic>(?:นค|ท|น|ส)\s*\.?\s*\d{1,6}(?:\s*-\s*\d{1,6})?(?:\s*/\s*\d{1,6})?)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim read from the listing: kind is 'tis', 'licence' or 'vague'; where is the field."""

    kind: str
    value: str
    where: str
    span: tuple[int, int] = (0, 0)
    text: str = ""

    @property
    def number(self) -> str:
        return self.value.split(" ")[0].split("-")[0]


def _tis_value(num: str, part: str | None, year: str | None) -> str:
    base = str(int(num))
    if part:
        base += " เล่ม " + re.sub(r"\s+", "", part)
    if year:
        y = be_year(int(year))
        if 2400 <= y <= 2700:
            return f"{base}-{y}"
    return base


def read_claims(fields: dict[str, str | None], vague_words: tuple[str, ...] = ()) -> list[Claim]:
    """Claims in the given fields ({'title': ..., 'description': ..., 'attr:แบรนด์': ...}), in order.

    Each TIS or licence number is reported once (the first place it appears)."""
    out: list[Claim] = []
    seen: set[tuple[str, str]] = set()
    for where, raw in fields.items():
        text = clean(raw)
        if not text:
            continue
        spans: list[tuple[int, int]] = []
        for rx in (LICENCE_LABELLED, LICENCE):
            for m in rx.finditer(text):
                no = parse_licence_no(m["lic"])
                if no and not any(a <= m.start("lic") < b for a, b in spans):
                    spans.append((m.start("lic"), m.end("lic")))
                    if ("licence", no) not in seen:
                        seen.add(("licence", no))
                        out.append(Claim("licence", no, where, (m.start("lic"), m.end("lic")), m["lic"]))
        for rx in (TIS_AFTER_MARK, TIS_BARE):
            for m in rx.finditer(text):
                if any(a <= m.start() < b or a < m.end() <= b for a, b in spans):
                    continue
                if rx is TIS_BARE and _inside_number_context(text, m.start(), m.end()):
                    continue
                value = _tis_value(m["num"], m["part"], m["year"])
                spans.append((m.start(), m.end()))
                if ("tis", value) not in seen:
                    seen.add(("tis", value))
                    out.append(Claim("tis", value, where, (m.start(), m.end()), m.group(0)))
        if vague_words and not any(c.kind == "tis" and c.where == where for c in out):
            f = fold(text).replace(".", "").replace(" ", "")
            for w in vague_words:
                if w.replace(".", "").replace(" ", "") in f:
                    if ("vague", where) not in seen:
                        seen.add(("vague", where))
                        out.append(Claim("vague", w, where))
                    break
    return out


def _inside_number_context(text: str, start: int, end: int) -> bool:
    """A bare 1234-2560 inside a phone number, a date or a price range is not a TIS number."""
    before = text[max(0, start - 12):start].casefold()
    return any(w in before for w in ("โทร", "tel", "฿", "บาท", "ราคา", "line", "ไลน์"))
