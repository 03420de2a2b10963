"""Small parsing helpers shared by the marketplace parsers. Pure."""

from __future__ import annotations

import re
from typing import Any

from matching.normalise import clean

_THAI_MULT = {"พัน": 1_000, "หมื่น": 10_000, "แสน": 100_000, "ล้าน": 1_000_000, "k": 1_000, "m": 1_000_000}
_COUNT = re.compile(r"(\d+(?:[.,]\d+)*)\s*(พัน|หมื่น|แสน|ล้าน|k|m)?\s*\+?", re.IGNORECASE)
_MONEY = re.compile(r"(\d[\d,]*(?:\.\d+)?)")


def parse_count(text: Any) -> int | None:
    """'ขายแล้ว 1.4พัน ชิ้น' -> 1400, '10k+' -> 10000, '1,550 sold' -> 1550, 37554 -> 37554."""
    if text is None or text == "":
        return None
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return int(text)
    m = _COUNT.search(clean(str(text)))
    if not m:
        return None
    num = m.group(1)
    mult = _THAI_MULT.get((m.group(2) or "").lower(), 1)
    if mult == 1:
        return int(num.replace(",", "").split(".")[0])
    return int(round(float(num.replace(",", "")) * mult))


def parse_money(text: Any) -> float | None:
    """'฿1,234.50' -> 1234.5; '฿39 - ฿69' -> 39.0 (the lowest); 2990 -> 2990.0."""
    if text is None or text == "":
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    m = _MONEY.search(clean(str(text)))
    return float(m.group(1).replace(",", "")) if m else None


def html_to_text(fragment: str | None) -> str:
    """Text of an HTML fragment (Lazada descriptions), one line per block."""
    if not fragment:
        return ""
    from lxml import html as lh

    try:
        doc = lh.fromstring(f"<div>{fragment}</div>")
    except Exception:
        return clean(re.sub(r"<[^>]+>", " ", fragment))
    for br in doc.iter("br", "p", "li", "div"):
        br.tail = "\n" + (br.tail or "")
    lines = [clean(x) for x in doc.text_content().splitlines()]
    return "\n".join(x for x in lines if x)


def drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}


class ParseError(ValueError):
    """A response is not what the parser expects; the message names the URL or file."""


class Blocked(Exception):
    """The marketplace answered with a block or captcha page instead of data."""

    def __init__(self, marketplace: str, url: str, why: str):
        super().__init__(f"{marketplace}: blocked at {url}: {why}")
        self.marketplace, self.url, self.why = marketplace, url, why
