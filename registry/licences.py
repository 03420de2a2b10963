"""Licences and the licence file of DOMAIN.md §4.1 (CSV or XLSX, Thai or English headers).

Reading is forgiving per row and strict per file: a bad row is reported with its file, line and
column and skipped; a file that is not a licence file at all is refused before anything is stored.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from matching.normalise import clean, fold
from registry.tisno import TisNo, parse_licence_no, parse_tis

STATUSES = ("active", "suspended", "cancelled", "revoked")
_STATUS_WORDS = {
    "ใช้งาน": "active", "active": "active", "valid": "active", "ปกติ": "active", "": "active",
    "พักใช้": "suspended", "suspended": "suspended", "พักใช้ใบอนุญาต": "suspended",
    "ยกเลิก": "cancelled", "cancelled": "cancelled", "canceled": "cancelled", "ยกเลิกใบอนุญาต": "cancelled",
    "เพิกถอน": "revoked", "revoked": "revoked", "เพิกถอนใบอนุญาต": "revoked",
}
STATUS_TH = {"active": "ใช้งาน", "suspended": "พักใช้", "cancelled": "ยกเลิก", "revoked": "เพิกถอน"}

COLUMNS: dict[str, tuple[str, ...]] = {
    "licence_no": ("licence_no", "license_no", "เลขที่ใบอนุญาต"),
    "licence_type": ("licence_type", "license_type", "ประเภทใบอนุญาต"),
    "tis_no": ("tis_no", "เลขที่ มอก.", "เลขที่มอก.", "เลขที่ มอก", "มอก."),
    "licensee": ("licensee", "ผู้รับใบอนุญาต"),
    "tax_id": ("tax_id", "เลขประจำตัวผู้เสียภาษี"),
    "trademark": ("trademark", "trademarks", "เครื่องหมายการค้า"),
    "product": ("product", "ชื่อผลิตภัณฑ์"),
    "models": ("models", "model", "แบบ รุ่น ขนาด", "แบบรุ่นขนาด"),
    "factory": ("factory", "โรงงาน"),
    "origin": ("origin", "ประเทศผู้ผลิต"),
    "issued": ("issued", "วันที่ออกใบอนุญาต"),
    "status": ("status", "สถานะ"),
    "status_date": ("status_date", "วันที่เปลี่ยนสถานะ"),
}
REQUIRED = ("licence_no", "tis_no")
_HEADER_LOOKUP = {fold(h).replace(" ", ""): key for key, names in COLUMNS.items() for h in names}


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

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: column {self.column}: {self.message}"


@dataclass
class LicenceFile:
    path: str
    licences: list[Licence] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    encoding: str = ""
    header_language: str = ""


class LicenceFileError(Exception):
    """The file is not a licence file (or cannot be read at all); nothing was imported."""


_DATE_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})$")
_DATE_YMD = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?$")


def parse_date(value: object) -> date | None:
    """15/03/2565 (Buddhist Era), 15/03/2022, 2022-03-15, 2565-03-15, Thai digits; empty -> None.
    Raises ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = clean(str(value))
    if not text or text in ("-", "—"):
        return None
    m = _DATE_YMD.match(text)
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    else:
        m = _DATE_DMY.match(text)
        if not m:
            raise ValueError(f"{value!r} is not a date (use 15/03/2565 or 2022-03-15)")
        d, mo, y = int(m[1]), int(m[2]), int(m[3])
        if y < 100:
            y += 2500 if y >= 40 else 2000
    if y > 2400:
        y -= 543
    return date(y, mo, d)


def parse_status(value: object) -> str:
    key = fold(str(value or "")).replace(" ", "")
    if key in _STATUS_WORDS:
        return _STATUS_WORDS[key]
    raise ValueError(f"{value!r} is not a licence status (ใช้งาน, พักใช้, ยกเลิก, เพิกถอน or active, suspended, cancelled, revoked)")


_TM_SPLIT = re.compile(r"\s*[,/]\s*")
_MODEL_SPLIT = re.compile(r"\s*(?:;|\n|\r)\s*")


def split_trademarks(value: str) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for t in _TM_SPLIT.split(clean(value)):
        if t and fold(t) not in seen:
            seen[fold(t)] = t
    return tuple(seen.values())


def split_models(value: str) -> tuple[str, ...]:
    text = "\n".join(clean(line) for line in str(value or "").splitlines()) if value else ""
    return tuple(m for m in (x.strip() for x in _MODEL_SPLIT.split(text)) if m)


def _map_header(header: list[str]) -> tuple[dict[int, str], str]:
    mapping: dict[int, str] = {}
    thai = latin = 0
    for i, h in enumerate(header):
        key = _HEADER_LOOKUP.get(fold(str(h or "")).lstrip("\ufeff").replace(" ", ""))
        if key and key not in mapping.values():
            mapping[i] = key
            if re.search("[\u0e00-\u0e7f]", str(h)):
                thai += 1
            else:
                latin += 1
    return mapping, ("th" if thai > latin else "en")


def parse_rows(rows: Iterable[list[object]], path: str, first_line: int = 1) -> LicenceFile:
    """Parse a header row and data rows (from CSV or XLSX) into licences and row errors."""
    it: Iterator[list[object]] = iter(rows)
    result = LicenceFile(path=path)
    line = first_line - 1
    header: list[str] | None = None
    for raw in it:
        line += 1
        if any(str(c or "").strip() for c in raw):
            header = [str(c or "") for c in raw]
            break
    if header is None:
        raise LicenceFileError(f"{path}: empty file, not a licence file")
    mapping, lang = _map_header(header)
    missing = [k for k in REQUIRED if k not in mapping.values()]
    if missing:
        names = ", ".join(f"{COLUMNS[k][0]} / {COLUMNS[k][-1]}" for k in missing)
        raise LicenceFileError(
            f"{path}: not a licence file: line {line} has no column {names} "
            f"(found: {', '.join(h.strip() for h in header[:8] if h.strip()) or 'nothing'})")
    result.header_language = lang
    col_name = {k: header[i].strip() for i, k in mapping.items()}
    for raw in it:
        line += 1
        if not any(str(c or "").strip() for c in raw):
            continue
        result.rows += 1
        cells = {key: (raw[i] if i < len(raw) else "") for i, key in mapping.items()}
        try:
            result.licences.append(_licence_from_cells(cells))
        except _CellError as e:
            result.errors.append(RowError(path, line, col_name.get(e.key, e.key), e.message))
    return result


class _CellError(Exception):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key, self.message = key, message


def _text(cells: dict[str, object], key: str) -> str:
    v = cells.get(key)
    return clean(str(v)) if v is not None else ""


def _licence_from_cells(cells: dict[str, object]) -> Licence:
    raw_no = _text(cells, "licence_no")
    no = parse_licence_no(raw_no)
    if not no:
        raise _CellError("licence_no", f"{raw_no!r} is not a licence number like ท5137-2/10" if raw_no else "empty licence number")
    raw_tis = _text(cells, "tis_no")
    tis = parse_tis(raw_tis)
    if tis is None or tis.year is None:
        raise _CellError("tis_no", f"{raw_tis!r} is not a TIS number like 2879-2560" if raw_tis else "empty TIS number")
    ltype = _text(cells, "licence_type") or re.match("นค|ท|น|ส", no)[0]  # type: ignore[index]
    if ltype not in ("ท", "น", "ส", "นค"):
        raise _CellError("licence_type", f"{ltype!r} is not a licence type (ท, น, ส, นค)")
    out = {}
    for key in ("issued", "status_date"):
        try:
            out[key] = parse_date(cells.get(key))
        except ValueError as e:
            raise _CellError(key, str(e)) from None
    try:
        status = parse_status(cells.get("status"))
    except ValueError as e:
        raise _CellError("status", str(e)) from None
    tax = re.sub(r"\D", "", _text(cells, "tax_id"))
    if tax and len(tax) != 13:
        raise _CellError("tax_id", f"{_text(cells, 'tax_id')!r} is not a 13-digit tax id")
    return Licence(
        licence_no=no, tis_no=str(tis), licence_type=ltype, licensee=_text(cells, "licensee"), tax_id=tax,
        trademarks=split_trademarks(_text(cells, "trademark")), product=_text(cells, "product"),
        models=split_models(str(cells.get("models") or "")), factory=_text(cells, "factory"),
        origin=_text(cells, "origin"), issued=out["issued"], status=status, status_date=out["status_date"],
    )


def _decode(data: bytes, path: str) -> tuple[str, str]:
    for enc in ("utf-8-sig", "cp874"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise LicenceFileError(f"{path}: cannot be read as UTF-8 or cp874 (Windows Thai) text")


def read_licence_file(path: str | Path) -> LicenceFile:
    """Read a licence file (.csv or .xlsx). Raises LicenceFileError when it is not one."""
    p = Path(path)
    if not p.exists():
        raise LicenceFileError(f"{p}: file not found")
    data = p.read_bytes()
    if data[:4] == b"PK\x03\x04" or p.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(data, str(p))
    if b"\x00" in data[:4096]:
        raise LicenceFileError(f"{p}: a binary file, not a licence file (CSV or XLSX)")
    text, enc = _decode(data, str(p))
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    result = parse_rows(csv.reader(io.StringIO(text, newline=""), dialect), str(p))
    result.encoding = enc
    return result


def _read_xlsx(data: bytes, path: str) -> LicenceFile:
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise LicenceFileError(f"{path}: not a readable XLSX workbook ({e})") from None
    ws = wb.worksheets[0]
    result = parse_rows(([c for c in row] for row in ws.iter_rows(values_only=True)), path)
    result.encoding = "xlsx"
    wb.close()
    return result


def write_licence_csv(licences: Iterable[Licence], path: str | Path, thai_headers: bool = False) -> int:
    """Write licences as a §4.1 CSV (UTF-8 with BOM, which Excel needs for Thai)."""
    keys = list(COLUMNS)
    header = [COLUMNS[k][-1] if thai_headers else k for k in keys]
    n = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for lic in licences:
            r = lic.row()
            if thai_headers:
                r["status"] = STATUS_TH[lic.status]
            w.writerow([r[k] for k in keys])
            n += 1
    return n
