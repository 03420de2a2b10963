"""Licences and the licence file of DOMAIN.md §4.1 (CSV or XLSX, Thai or English headers).

Reading is forgiving per row and strict per file: a bad row is reported with its file, line and
column and skipped; a file that is not a licence file at all is refused before anything is stored.

What a TISI export throws at us, and what we do with it:
- encodings: UTF-8 with or without BOM, cp874 (Windows Thai); XLSX (first sheet with a header row);
- a title line or two above the header row (the header is looked for in the first 30 rows);
- the delimiter: `,` `;` tab or `|`, chosen by which one makes a header row we recognise (a sniffer
  would be fooled by the `;` that separates models inside a quoted cell);
- dates in the Buddhist Era or ISO, with Thai digits or Thai month names (15 มี.ค. 2565), and
  Excel dates typed as BE years (a datetime in 2565 CE);
- a tax id that Excel turned into a number (its leading zero lost);
- quoted cells with newlines (model lists), so a row's line number is the line where it starts;
- the same licence on several rows (one per model or trademark): merged; contradictory rows rejected.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from matching.normalise import clean, fold
from registry.tisno import TisNo, parse_licence_no, parse_tis

STATUSES = ("active", "suspended", "cancelled", "revoked")
_STATUS_WORDS = {
    "ใช้งาน": "active", "active": "active", "valid": "active", "ปกติ": "active", "ใช้งานได้": "active", "": "active",
    "พักใช้": "suspended", "suspended": "suspended", "พักใช้ใบอนุญาต": "suspended", "ถูกพักใช้": "suspended",
    "ยกเลิก": "cancelled", "cancelled": "cancelled", "canceled": "cancelled", "ยกเลิกใบอนุญาต": "cancelled",
    "ถูกยกเลิก": "cancelled",
    "เพิกถอน": "revoked", "revoked": "revoked", "เพิกถอนใบอนุญาต": "revoked", "ถูกเพิกถอน": "revoked",
}
STATUS_TH = {"active": "ใช้งาน", "suspended": "พักใช้", "cancelled": "ยกเลิก", "revoked": "เพิกถอน"}
LICENCE_TYPES = {"ท": "manufacture", "น": "import", "ส": "mark display", "นค": "one-time import"}
LICENCE_TYPES_TH = {"ท": "ทำ", "น": "นำเข้า", "ส": "แสดงเครื่องหมาย", "นค": "นำเข้าเฉพาะครั้ง"}
_TYPE_WORDS = {
    "ท": "ท", "ทำ": "ท", "ผลิต": "ท", "manufacture": "ท", "m": "ท",
    "น": "น", "นำเข้า": "น", "import": "น", "i": "น",
    "ส": "ส", "แสดง": "ส", "แสดงเครื่องหมาย": "ส", "markdisplay": "ส", "mark": "ส",
    "นค": "นค", "นำเข้าเฉพาะครั้ง": "นค", "onetimeimport": "นค",
}

# canonical key -> header names: the first is the §4.1 English header, the last the §4.1 Thai one
# (what write_licence_csv writes). _ALIASES adds other spellings seen in TISI exports and hand-made files.
COLUMNS: dict[str, tuple[str, ...]] = {
    "licence_no": ("licence_no", "license_no", "เลขที่ใบอนุญาต"),
    "licence_type": ("licence_type", "license_type", "ประเภทใบอนุญาต"),
    "tis_no": ("tis_no", "มอก.", "เลขที่ มอก."),
    "licensee": ("licensee", "ผู้รับใบอนุญาต"),
    "tax_id": ("tax_id", "เลขประจำตัวผู้เสียภาษี"),
    "trademark": ("trademark", "trademarks", "เครื่องหมายการค้า"),
    "product": ("product", "ชื่อผลิตภัณฑ์"),
    "models": ("models", "model", "แบบ รุ่น ขนาด"),
    "factory": ("factory", "โรงงาน"),
    "origin": ("origin", "ประเทศผู้ผลิต"),
    "issued": ("issued", "วันที่ออกใบอนุญาต"),
    "status": ("status", "สถานะ"),
    "status_date": ("status_date", "วันที่เปลี่ยนสถานะ"),
}
_ALIASES: dict[str, tuple[str, ...]] = {
    "licence_no": ("licence number", "license number", "licence", "license", "เลขใบอนุญาต", "ใบอนุญาตเลขที่"),
    "licence_type": ("type", "ประเภท"),
    "tis_no": ("tis", "tis number", "standard", "standard_no", "เลข มอก.", "มาตรฐานเลขที่", "เลขมาตรฐาน"),
    "licensee": ("licence holder", "license holder", "holder", "ชื่อผู้รับใบอนุญาต", "ผู้ได้รับใบอนุญาต", "ผู้ประกอบการ"),
    "tax_id": ("tax id", "taxid", "เลขประจำตัวผู้เสียภาษีอากร", "เลขทะเบียนนิติบุคคล"),
    "trademark": ("brand", "brands", "ตราสินค้า", "ยี่ห้อ", "เครื่องหมายการค้า/ยี่ห้อ"),
    "product": ("product name", "ผลิตภัณฑ์", "ชื่อสินค้า"),
    "models": ("แบบรุ่น", "รุ่น", "แบบ/รุ่น/ขนาด", "model/size"),
    "factory": ("factory address", "สถานที่ผลิต", "ที่ตั้งโรงงาน"),
    "origin": ("country", "country of origin", "ประเทศ", "ประเทศที่ผลิต", "ประเทศผู้ผลิต/แหล่งกำเนิด"),
    "issued": ("issue date", "issued_date", "date issued", "issued_on", "วันที่ออก", "วันออกใบอนุญาต", "วันที่อนุญาต"),
    "status": ("licence status", "license status", "สถานะใบอนุญาต"),
    "status_date": ("status date", "status_changed", "วันที่สถานะ", "วันที่เปลี่ยนแปลงสถานะ"),
}
REQUIRED = ("licence_no", "tis_no")
HEADER_SEARCH_ROWS = 30
_HEADER_NOISE = re.compile(r"[\s_\-.:()/]+")


def _header_key(h: object) -> str:
    return _HEADER_NOISE.sub("", fold(str(h or "")).lstrip("\ufeff"))


_HEADER_LOOKUP = {_header_key(h): key for table in (COLUMNS, _ALIASES) for key, names in table.items() for h in names}


@dataclass(slots=True)
class Licence:
    licence_no: str
    tis_no: str
    licence_type: str = ""
    licensee: str = ""
    tax_id: str = ""
    trademarks: tuple[str, ...] = ()
    product: str = ""
    models: tuple[str, ...] = ()
    factory: str = ""
    origin: str = ""
    issued: date | None = None
    status: str = "active"
    status_date: date | None = None

    @property
    def tis(self) -> TisNo:
        t = parse_tis(self.tis_no)
        assert t is not None
        return t

    @property
    def base(self) -> str:
        return self.tis.base

    @property
    def active(self) -> bool:
        return self.status == "active"

    def row(self) -> dict[str, str]:
        """As a §4.1 row with English headers."""
        return {
            "licence_no": self.licence_no, "licence_type": self.licence_type, "tis_no": self.tis_no,
            "licensee": self.licensee, "tax_id": self.tax_id, "trademark": " / ".join(self.trademarks),
            "product": self.product, "models": "; ".join(self.models), "factory": self.factory,
            "origin": self.origin, "issued": self.issued.isoformat() if self.issued else "",
            "status": self.status, "status_date": self.status_date.isoformat() if self.status_date else "",
        }


@dataclass
class RowError:
    file: str
    line: int
    column: str
    message: str
    letter: str = ""  # the spreadsheet column (A, B, ... AA), when known

    def __str__(self) -> str:
        col = f"column {self.letter} ({self.column})" if self.letter else f"column {self.column}"
        return f"{self.file}:{self.line}: {col}: {self.message}"


@dataclass
class LicenceFile:
    path: str
    licences: list[Licence] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    encoding: str = ""
    header_language: str = ""
    header_line: int = 0
    delimiter: str = ""
    ignored_columns: list[str] = field(default_factory=list)
    merged: int = 0  # rows that repeated a licence and were merged into it (models, trademarks)


class LicenceFileError(Exception):
    """The file is not a licence file (or cannot be read at all); nothing was imported."""


Progress = Callable[[int, int], None]  # (rows done, rows in all, 0 when unknown)

# ---- cells ----------------------------------------------------------------------------------------
_ASCII_PRINTABLE = re.compile(r"^[ -~]*$")


@lru_cache(maxsize=1 << 16)
def _clean_cached(text: str) -> str:
    return clean(text)


def _clean(text: str) -> str:
    """clean() for a cell: plain printable ASCII needs only its spaces collapsed (NFKC, Thai repair and
    Thai digits change nothing there), which keeps a 30,000-row import fast; the rest is cached, since
    licensees, products, origins and factories repeat."""
    if _ASCII_PRINTABLE.match(text):
        return " ".join(text.split())
    return _clean_cached(text)


_THAI_MONTHS = {
    "มกราคม": 1, "มค": 1, "กุมภาพันธ์": 2, "กพ": 2, "มีนาคม": 3, "มีค": 3, "เมษายน": 4, "เมย": 4,
    "พฤษภาคม": 5, "พค": 5, "มิถุนายน": 6, "มิย": 6, "กรกฎาคม": 7, "กค": 7, "สิงหาคม": 8, "สค": 8,
    "กันยายน": 9, "กย": 9, "ตุลาคม": 10, "ตค": 10, "พฤศจิกายน": 11, "พย": 11, "ธันวาคม": 12, "ธค": 12,
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4, "may": 5,
    "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
    "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}
_DATE_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})$")
_DATE_YMD = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?$")
_DATE_NAMED = re.compile(r"^(\d{1,2})\s*([^\d\s]+?)\s*(\d{2,4})$")


def _year(y: int) -> int:
    if y < 100:  # 65 -> 2565 BE (2022); 22 -> 2022: a two-digit year of 40 or more is Buddhist Era
        y += 2500 if y >= 40 else 2000
    return y - 543 if y > 2400 else y


def parse_date(value: object) -> date | None:
    """15/03/2565 (Buddhist Era), 15/03/2022, 2022-03-15, 2565-03-15, 15 มี.ค. 2565, 15 March 2022,
    Thai digits; empty -> None. Raises ValueError naming the value for anything else."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):  # Excel took a typed BE date for a CE one: 15/03/2565 -> 2565-03-15
        return value.replace(year=value.year - 543) if value.year > 2400 else value
    return _parse_date_text(str(value))


@lru_cache(maxsize=8192)  # a registry has a few thousand distinct dates in 60,000 cells
def _parse_date_text(value: str) -> date | None:
    text = clean(value)
    if not text or text in ("-", "—", "–"):
        return None
    if m := _DATE_YMD.match(text):
        y, mo, d = _year(int(m[1])), int(m[2]), int(m[3])
    elif m := _DATE_DMY.match(text):
        d, mo, y = int(m[1]), int(m[2]), _year(int(m[3]))
    elif (m := _DATE_NAMED.match(text)) and (mo := _THAI_MONTHS.get(re.sub(r"[\s.]", "", m[2].casefold()), 0)):
        d, y = int(m[1]), _year(int(m[3]))
    else:
        raise ValueError(f"{value!r} is not a date (write 15/03/2565, 15 มี.ค. 2565 or 2022-03-15)")
    try:
        return date(y, mo, d)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date (day {d}, month {mo}, year {y} CE)") from None


def parse_status(value: object) -> str:
    if isinstance(value, str) and value in _STATUS_WORDS:
        return _STATUS_WORDS[value]
    key = fold(str(value or "")).replace(" ", "")
    if key in _STATUS_WORDS:
        return _STATUS_WORDS[key]
    raise ValueError(f"{value!r} is not a licence status (ใช้งาน, พักใช้, ยกเลิก, เพิกถอน or active, suspended, cancelled, revoked)")


@lru_cache(maxsize=256)
def _licence_type(text: str) -> str | None:
    return _TYPE_WORDS.get(re.sub(r"[\s\-_.]", "", fold(text)))


def parse_licence_type(value: object) -> str | None:
    """ท, น, ส, นค, or the word for one (ทำ, นำเข้า, import, ...); None when it is none of them."""
    return _licence_type(str(value or ""))


_TM_SPLIT = re.compile(r"\s*[,/]\s*")
_MODEL_SPLIT = re.compile(r"\s*(?:;|\n|\r)\s*")


def split_trademarks(value: str) -> tuple[str, ...]:
    """'Sharp / ชาร์ป', 'Sharp, ชาร์ป' -> ('Sharp', 'ชาร์ป'); repeats (by case) dropped, order kept."""
    seen: dict[str, str] = {}
    for t in _TM_SPLIT.split(_clean(value)):
        if t and t.casefold() not in seen:
            seen[t.casefold()] = t
    return tuple(seen.values())


def split_models(value: str) -> tuple[str, ...]:
    """Model lines separated by `;` or newlines; blank lines and repeats dropped, order kept."""
    if not value:
        return ()
    out: dict[str, None] = {}
    for line in str(value).splitlines():
        for m in _MODEL_SPLIT.split(_clean(line)):
            if m:
                out.setdefault(m.strip(), None)
    return tuple(out)


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: how a spreadsheet names a column."""
    s = ""
    index += 1
    while index:
        index, r = divmod(index - 1, 26)
        s = chr(65 + r) + s
    return s


# ---- rows -----------------------------------------------------------------------------------------
def _map_header(header: Sequence[object]) -> tuple[dict[int, str], str]:
    mapping: dict[int, str] = {}
    thai = latin = 0
    for i, h in enumerate(header):
        key = _HEADER_LOOKUP.get(_header_key(h))
        if key and key not in mapping.values():
            mapping[i] = key
            if re.search("[\u0e00-\u0e7f]", str(h)):
                thai += 1
            else:
                latin += 1
    return mapping, ("th" if thai > latin else "en")


def _blank(raw: Sequence[object]) -> bool:
    return not any(c is not None and str(c).strip() for c in raw)


class _CellError(Exception):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key, self.message = key, message


def parse_rows(rows: Iterable[tuple[int, Sequence[object]]], path: str, progress: Progress | None = None,
               total: int = 0) -> LicenceFile:
    """Parse (line number, cells) rows of a CSV or XLSX sheet into licences and row errors.

    The header is the first of the first 30 non-blank rows that names the licence number and TIS
    number columns; rows above it (a report title) are skipped. Raises LicenceFileError when there is
    no such row, or when there are data rows and not one of them is a licence."""
    it: Iterator[tuple[int, Sequence[object]]] = iter(rows)
    result = LicenceFile(path=path)
    header: Sequence[object] | None = None
    mapping: dict[int, str] = {}
    first: Sequence[object] | None = None
    seen_rows = 0
    for line, raw in it:
        if _blank(raw):
            continue
        first = first or raw
        mapping, lang = _map_header(raw)
        if all(k in mapping.values() for k in REQUIRED):
            header, result.header_line, result.header_language = raw, line, lang
            break
        seen_rows += 1
        if seen_rows >= HEADER_SEARCH_ROWS:
            break
    if first is None:
        raise LicenceFileError(f"{path}: empty file, not a licence file")
    if header is None:
        want = " and ".join(f"{COLUMNS[k][0]} / {COLUMNS[k][-1]}" for k in REQUIRED)
        found = ", ".join(str(h).strip() for h in first[:8] if h is not None and str(h).strip()) or "nothing"
        raise LicenceFileError(f"{path}: not a licence file: no header row with the columns {want} "
                               f"in its first {HEADER_SEARCH_ROWS} rows (the first row has: {found})")
    result.ignored_columns = [str(h).strip() for i, h in enumerate(header)
                              if i not in mapping and h is not None and str(h).strip()]
    col_name = {k: (str(header[i]).strip(), column_letter(i)) for i, k in mapping.items()}
    first_line: dict[str, int] = {}
    by_no: dict[str, int] = {}  # licence_no -> index in result.licences
    for line, raw in it:
        if _blank(raw):
            continue
        result.rows += 1
        if progress and result.rows % 1000 == 0:
            progress(result.rows, total)
        cells = {key: (raw[i] if i < len(raw) else None) for i, key in mapping.items()}
        try:
            lic = _licence_from_cells(cells)
        except _CellError as e:
            name, letter = col_name.get(e.key, (e.key, ""))
            result.errors.append(RowError(path, line, name, e.message, letter))
            continue
        if lic.licence_no in by_no:
            old = result.licences[by_no[lic.licence_no]]
            conflict = _merge(old, lic)
            if conflict:
                name, letter = col_name.get(conflict, (conflict, ""))
                result.errors.append(RowError(
                    path, line, name, f"licence {lic.licence_no} is already on line {first_line[lic.licence_no]} "
                    f"with another {conflict} ({_show(getattr(old, conflict))} ≠ {_show(getattr(lic, conflict))}); "
                    "this row is skipped", letter))
            else:
                result.merged += 1
            continue
        by_no[lic.licence_no] = len(result.licences)
        first_line[lic.licence_no] = line
        result.licences.append(lic)
    if progress:
        progress(result.rows, total or result.rows)
    if result.rows and not result.licences:
        shown = "; ".join(str(e) for e in result.errors[:3])
        raise LicenceFileError(f"{path}: not one of its {result.rows} rows is a licence, nothing imported ({shown})")
    return result


def _show(v: object) -> str:
    return v.isoformat() if isinstance(v, date) else str(v or "—")


_MERGEABLE = ("trademarks", "models")


def _merge(into: Licence, other: Licence) -> str | None:
    """Merge a repeated row of the same licence (its other models or trademarks) into the first one.
    Returns the first field in which the two rows contradict each other (nothing merged then)."""
    for k in ("tis_no", "licence_type", "status", "status_date", "issued", "licensee", "tax_id", "product"):
        a, b = getattr(into, k), getattr(other, k)
        if a and b and a != b:
            return k
    for k in ("licensee", "tax_id", "product", "factory", "origin", "issued", "status_date"):
        if not getattr(into, k) and getattr(other, k):
            setattr(into, k, getattr(other, k))
    for k in _MERGEABLE:
        setattr(into, k, tuple(dict.fromkeys(getattr(into, k) + getattr(other, k))))
    return None


def _text(cells: dict[str, object], key: str) -> str:
    v = cells.get(key)
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return _clean(str(v))


_SCIENTIFIC = re.compile(r"^\d(?:\.\d+)?e\+?\d+$", re.IGNORECASE)


def _tax_id(cells: dict[str, object]) -> str:
    raw = _text(cells, "tax_id")
    if not raw:
        return ""
    if _SCIENTIFIC.match(raw):
        raise _CellError("tax_id", f"{raw!r} was written by Excel in scientific notation and its digits are lost "
                                   "(format the column as text and export again)")
    digits = re.sub(r"[\s\-]", "", raw)
    if not digits.isdigit():
        raise _CellError("tax_id", f"{raw!r} is not a 13-digit tax id")
    if len(digits) == 12:  # Excel dropped the leading zero of a juristic person's id (0105551234567)
        digits = "0" + digits
    if len(digits) != 13:
        raise _CellError("tax_id", f"{raw!r} is not a 13-digit tax id")
    return digits


def _raw(cells: dict[str, object], key: str) -> str:
    """A cell as text, not yet cleaned (for the parsers that clean, and cache, themselves)."""
    v = cells.get(key)
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _licence_from_cells(cells: dict[str, object]) -> Licence:
    raw_no = _raw(cells, "licence_no")
    raw_type = _raw(cells, "licence_type")
    ltype = parse_licence_type(raw_type) if raw_type else None
    if raw_type and ltype is None:
        raise _CellError("licence_type", f"{_clean(raw_type)!r} is not a licence type (ท, น, ส, นค)")
    no = parse_licence_no(raw_no)
    if no is None and ltype and _clean(raw_no)[:1].isdigit():
        no = parse_licence_no(ltype + raw_no)  # a number written without its type prefix: 5137-2/10
    if not no:
        raise _CellError("licence_no", f"{_clean(raw_no)!r} is not a licence number like ท5137-2/10" if raw_no
                         else "empty licence number")
    prefix = "นค" if no.startswith("นค") else no[0]
    if ltype and ltype != prefix:
        raise _CellError("licence_type", f"type {_clean(raw_type)!r} contradicts licence number {no} (a {prefix} licence)")
    raw_tis = _raw(cells, "tis_no")
    tis = parse_tis(raw_tis)
    if tis is None or tis.year is None:
        raise _CellError("tis_no", f"{_clean(raw_tis)!r} is not a TIS number with its year, like 2879-2560" if raw_tis
                         else "empty TIS number")
    out: dict[str, date | None] = {}
    for key in ("issued", "status_date"):
        try:
            out[key] = parse_date(cells.get(key))
        except ValueError as e:
            raise _CellError(key, str(e)) from None
    try:
        status = parse_status(_raw(cells, "status"))
    except ValueError as e:
        raise _CellError("status", str(e)) from None
    return Licence(
        licence_no=no, tis_no=_tis_str(tis), licence_type=ltype or prefix, licensee=_text(cells, "licensee"),
        tax_id=_tax_id(cells), trademarks=split_trademarks(_raw(cells, "trademark")), product=_text(cells, "product"),
        models=split_models(_raw(cells, "models")), factory=_text(cells, "factory"),
        origin=_text(cells, "origin"), issued=out["issued"], status=status, status_date=out["status_date"],
    )


@lru_cache(maxsize=4096)
def _tis_str(tis: TisNo) -> str:
    return str(tis)


# ---- files ----------------------------------------------------------------------------------------
def _decode(data: bytes, path: str) -> tuple[str, str]:
    """UTF-8 (with or without a BOM), UTF-16 with a BOM, or else cp874 (Windows Thai: any byte string
    decodes except a few unused bytes, so it is tried last)."""
    skip = 0
    if data.startswith(b"\xef\xbb\xbf"):
        encs: tuple[str, ...] = ("utf-8-sig",)
        skip = 3
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encs = ("utf-16",)
    else:
        encs = ("utf-8", "cp874")
    for enc in encs:
        try:
            return data[skip:].decode("utf-8" if enc == "utf-8-sig" else enc), enc
        except UnicodeDecodeError as e:
            last, at = e, skip + e.start
    line = data[:at].count(b"\n") + 1
    raise LicenceFileError(f"{path}:{line}: cannot be read as {' or '.join(encs)} text "
                           f"(byte {data[at]:#04x}); save it as UTF-8 or Windows Thai (cp874) CSV, or XLSX") from last


DELIMITERS = (",", ";", "\t", "|")


def _csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (a quoted cell may hold newlines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=False)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as e:
        raise LicenceFileError(f"line {reader.line_num}: {e}") from None


def _pick_delimiter(text: str) -> str:
    """The delimiter under which a header row names the most known columns (ties: the comma)."""
    sample = text[:65536]
    best, score = ",", -1
    for d in DELIMITERS:
        s = 0
        try:
            for n, (_, row) in enumerate(_csv_rows(sample, d)):
                s = max(s, len(_map_header(row)[0]))
                if n >= HEADER_SEARCH_ROWS:
                    break
        except (LicenceFileError, csv.Error):
            continue
        if s > score:
            best, score = d, s
    return best


def read_licence_file(path: str | Path, progress: Progress | None = None) -> LicenceFile:
    """Read a licence file (.csv or .xlsx). Raises LicenceFileError when it is not one."""
    p = Path(path)
    if not p.exists():
        raise LicenceFileError(f"{p}: file not found")
    if p.is_dir():
        raise LicenceFileError(f"{p}: a directory, not a licence file")
    data = p.read_bytes()
    if data[:4] == b"PK\x03\x04" or p.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(data, str(p), progress)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise LicenceFileError(f"{p}: an old Excel .xls workbook; save it as .xlsx or CSV first")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LicenceFileError(f"{p}: a binary file, not a licence file (CSV or XLSX)")
    text, enc = _decode(data, str(p))
    delimiter = _pick_delimiter(text)
    total = text.count("\n")
    try:
        result = parse_rows(_csv_rows(text, delimiter), str(p), progress, total)
    except LicenceFileError as e:
        msg = str(e)
        raise LicenceFileError(msg if msg.startswith(str(p)) else f"{p}:{msg.removeprefix('line ')}") from None
    result.encoding, result.delimiter = enc, delimiter
    return result


def _read_xlsx(data: bytes, path: str, progress: Progress | None = None) -> LicenceFile:
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as e:
        raise LicenceFileError(f"{path}: not a readable XLSX workbook ({e})") from None
    try:
        errors: list[str] = []
        for ws in wb.worksheets:  # the first sheet that has a licence header row
            rows = ((i, list(r)) for i, r in enumerate(ws.iter_rows(values_only=True), 1))
            where = path if len(wb.worksheets) == 1 else f"{path} [{ws.title}]"
            try:
                result = parse_rows(rows, where, progress, ws.max_row or 0)
            except LicenceFileError as e:
                errors.append(str(e))
                if "not one of its" in str(e):
                    raise
                continue
            result.encoding = "xlsx"
            return result
        raise LicenceFileError(errors[0] if len(errors) == 1 else
                               f"{path}: no sheet is a licence file:\n  " + "\n  ".join(errors))
    finally:
        wb.close()


def write_licence_csv(licences: Iterable[Licence], path: str | Path, thai_headers: bool = False,
                      encoding: str = "utf-8-sig") -> int:
    """Write licences as a §4.1 CSV (by default UTF-8 with BOM, which Excel needs for Thai)."""
    keys = list(COLUMNS)
    header = [COLUMNS[k][-1] if thai_headers else k for k in keys]
    n = 0
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for lic in licences:
            r = lic.row()
            if thai_headers:
                r["status"] = STATUS_TH[lic.status]
            w.writerow([r[k] for k in keys])
            n += 1
    return n


def write_licence_xlsx(licences: Iterable[Licence], path: str | Path, thai_headers: bool = False) -> int:
    """Write licences as a §4.1 XLSX workbook (one sheet)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("licences")
    keys = list(COLUMNS)
    ws.append([COLUMNS[k][-1] if thai_headers else k for k in keys])
    n = 0
    for lic in licences:
        r = lic.row()
        if thai_headers:
            r["status"] = STATUS_TH[lic.status]
        ws.append([r[k] for k in keys])
        n += 1
    wb.save(path)
    return n
