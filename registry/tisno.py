"""TIS standard numbers and licence numbers: parsing to a canonical form. Pure.

A TIS number is NNNN[ เล่ม P[(S)]]-YYYY with a Buddhist-Era year: 166-2549, 685 เล่ม 1-2562,
60335 เล่ม 2(23)-2564. Editions of a standard share the base (number and part) and differ by year;
a newer edition replaces an older one, so matching is done on the base too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from matching.normalise import clean

BE_OFFSET = 543
_TIS = re.compile(
    r"^\s*(?:มอก\.?|TIS)?\s*(?P<num>\d{1,5})"
    r"(?:\s*(?:เล่ม|part|pt\.?|ส่วน)\s*(?P<part>\d{1,3}(?:\s*\(\s*\d{1,3}\s*\))?))?"
    r"(?:\s*[-–/]\s*(?P<year>\d{2,4}))?\s*$",
    re.IGNORECASE,
)


def be_year(year: int) -> int:
    """A year as written in a listing, to the Buddhist Era: 2012 -> 2555, 55 -> 2555, 2555 -> 2555."""
    if year < 100:
        return 2500 + year
    if 1900 <= year < 2300:
        return year + BE_OFFSET
    return year


@dataclass(frozen=True, slots=True, order=True)
class TisNo:
    number: str
    part: str | None = None
    year: int | None = None

    @property
    def base(self) -> str:
        """The standard without its edition year: '685 เล่ม 1', '2432'."""
        return f"{self.number} เล่ม {self.part}" if self.part else self.number

    def __str__(self) -> str:
        return f"{self.base}-{self.year}" if self.year else self.base


@lru_cache(maxsize=4096)  # a registry names ~150 standards 30,000 times; TisNo is immutable
def parse_tis(text: str | None) -> TisNo | None:
    """Parse one TIS number written alone (a registry cell, an API argument). None if it is not one."""
    if not text:
        return None
    m = _TIS.match(clean(text))
    if not m:
        return None
    part = re.sub(r"\s+", "", m["part"]) if m["part"] else None
    year = be_year(int(m["year"])) if m["year"] else None
    if year is not None and not 2400 <= year <= 2700:
        return None
    return TisNo(str(int(m["num"])), part, year)


LICENCE_TYPES = ("นค", "ท", "น", "ส")
_LIC = re.compile(
    r"^\s*(?P<type>นค|ท|น|ส)\s*\.?\s*(?P<num>\d{1,6})\s*(?:-\s*(?P<a>\d{1,6}))?\s*(?:/\s*(?P<b>\d{1,6}))?\s*$"
)


def parse_licence_no(text: str | None) -> str | None:
    """Canonical licence number 'ท5137-2/10' (type prefix, digits), or None if it is not one."""
    if not text:
        return None
    m = _LIC.match(clean(text))
    if not m:
        return None
    if m["a"] is None and m["b"] is None:
        return None  # a bare "ท5" is too little to be a licence number
    out = f"{m['type']}{int(m['num'])}"
    if m["a"] is not None:
        out += f"-{int(m['a'])}"
    if m["b"] is not None:
        out += f"/{int(m['b'])}"
    return out
