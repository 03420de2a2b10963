"""Reading TIS claims from listing text: standard numbers, licence numbers and vague mark claims. Pure.

Every way sellers write them (DOMAIN.md §2): มอก. 166-2549, มอก.166-2549, มอก 166, ม.อ.ก., มอก-166,
เลขที่ มอก. 166, TIS 166-2549, T.I.S. 166, Thai digits (๑๖๖-๒๕๔๙), CE years (TIS 2432-2012 is 2555),
two-digit years (166-49), editions with เล่ม / part / ส่วนที่ (685 เล่ม 1-2562, 60335 เล่ม 2(23)-2564),
zero-width characters and full-width digits (clean() removes them first), and the bare NNNN-25YY
that Lazada slugs carry (...-934-2558-...). Licence numbers: ท5137-2/10, ท 5137-2/10, ท.5137-2/10,
ใบอนุญาตเลขที่ ท5137-2/10, licence no. น12-3/456. A vague "มีมอก." / "ได้มาตรฐาน" names no number
and is kept as kind "vague"; "ไม่มีมอก." is not a claim but a statement, kind "no_tis".

A number after the mark that is really a quantity is not a claim: "ปลั๊กไฟ มอก 3 ตา" (three pins),
"มอก. 10A". Nor is a bare NNNN-25YY inside a phone number, a price or a date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from matching.normalise import clean, fold
from registry.tisno import be_year, parse_licence_no

# the mark word: มอก, มอก., ม.อ.ก., ม อ ก, มอก-, TIS, T.I.S., with "เลขที่"/"no." after it
_MARK = r"(?:ม\s*\.?\s*อ\s*\.?\s*ก\s*\.?|(?<![A-Za-z])T\s*\.?\s*I\s*\.?\s*S\s*\.?(?![A-Za-z]))"
_NUM = r"(?P<num>\d{1,5})(?![\d.,])"
_PART = r"(?:\s*(?:เล่ม(?:ที่)?|ส่วนที่|ส่วน|part|pt\.?)\s*(?P<part>\d{1,3}(?:\s*\(\s*\d{1,3}\s*\))?))?"
_YEAR = r"(?:\s*[-–/.]\s*(?P<year>\d{4}|\d{2})(?!\d))?"
TIS_AFTER_MARK = re.compile(
    r"(?:เลขที่\s*)?" + _MARK + r"\s*[:：#\-]?\s*(?:เลขที่|เลข|no\.?|number|standard)?\s*[:：#]?\s*" + _NUM + _PART + _YEAR,
    re.IGNORECASE)
# a bare NNNN-25YY: a TIS number without the mark word (Lazada slugs: "...-934-2558-...")
TIS_BARE = re.compile(r"(?<![\d/.:,])(?P<num>\d{1,5})" + _PART + r"\s*-\s*(?P<year>25[0-9]{2})(?![\d/])")
LICENCE = re.compile(
    r"(?<![ก-๙A-Za-z])(?P<lic>(?:นค|ท|น|ส)\s*\.?\s*\d{1,6}\s*-\s*\d{1,6}\s*/\s*\d{1,6})(?!\d)")
LICENCE_LABELLED = re.compile(
    r"(?:ใบอนุญาต(?:เลขที่)?|เลขที่ใบอนุญาต|licen[cs]e\s*(?:no\.?|number)?)\s*[:：#]?\s*"
    r"(?P<lic>(?:นค|ท|น|ส)\s*\.?\s*\d{1,6}(?:\s*-\s*\d{1,6})?(?:\s*/\s*\d{1,6})?)", re.IGNORECASE)
# what follows a number that makes it a quantity, not a standard number
_QUANTITY = re.compile(
    r"\s*(?:ตา|ขา|ช่อง|ชิ้น|เมตร|ม\.|เส้น|ปุ่ม|ใบ|นิ้ว|วัตต์|โวลต์|แอมป์|ลิตร|สวิตช์|สวิทช์|สาย|ก้อน|ชั้น|แพ็ค|ปี|"
    r"m\b|cm\b|mm\b|w\b|v\b|a\b|mah\b|l\b|pcs\b|x\b|in\b|inch\b|ft\b|%)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim read from the listing: kind is 'tis', 'licence', 'vague' or 'no_tis'; where is the
    field ('title', 'description', 'attr:<name>', 'url', 'image:N'); span is in clean(text)."""

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


def _squash(s: str) -> str:
    return s.replace(".", "").replace(" ", "")


@lru_cache(maxsize=64)
def _squashed(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_squash(w) for w in words)


def read_claims(fields: dict[str, str | None], vague_words: tuple[str, ...] = (),
                no_tis_words: tuple[str, ...] = ()) -> list[Claim]:
    """Claims in the given fields ({'title': ..., 'description': ..., 'attr:แบรนด์': ...}), in order.

    Each TIS or licence number is reported once (the first place it appears)."""
    out: list[Claim] = []
    seen: set[tuple[str, str]] = set()
    vague = _squashed(vague_words)
    no_tis = _squashed(no_tis_words)
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
        found_tis = False
        for rx in (TIS_AFTER_MARK, TIS_BARE):
            for m in rx.finditer(text):
                if any(a <= m.start() < b or a < m.end() <= b for a, b in spans):
                    continue
                if rx is TIS_BARE and _inside_number_context(text, m.start(), m.end()):
                    continue
                if rx is TIS_AFTER_MARK and not m["year"] and not m["part"] and _QUANTITY.match(text, m.end()):
                    continue  # "มอก 3 ตา": a count of pins, not TIS 3
                value = _tis_value(m["num"], m["part"], m["year"])
                spans.append((m.start(), m.end()))
                found_tis = True
                if ("tis", value) not in seen:
                    seen.add(("tis", value))
                    out.append(Claim("tis", value, where, (m.start(), m.end()), m.group(0)))
        if not (vague or no_tis):
            continue
        f = _squash(fold(text))
        denial = next((w for w in no_tis if w in f), None)
        if denial:
            if ("no_tis", where) not in seen:
                seen.add(("no_tis", where))
                out.append(Claim("no_tis", denial, where))
            continue
        if vague and not found_tis:
            w = next((w for w in vague if w in f), None)
            if w and ("vague", where) not in seen:
                seen.add(("vague", where))
                out.append(Claim("vague", w, where))
    return out


def _inside_number_context(text: str, start: int, end: int) -> bool:
    """A bare 1234-2560 inside a phone number, a date or a price range is not a TIS number."""
    before = text[max(0, start - 12):start].casefold()
    after = text[end:end + 6].casefold()
    return any(w in before for w in ("โทร", "tel", "฿", "บาท", "ราคา", "line", "ไลน์", "ปี", "พ.ศ", "วันที่", "year")) \
        or after.lstrip().startswith(("บาท", "฿", "thb"))
