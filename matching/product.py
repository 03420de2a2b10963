"""Which compulsory standard, if any, covers a listing: from its title, category and attributes.

Accessories and look-alike words must not trigger: a power-bank case, a cap that is not a helmet,
ear plugs. A standard that covers only one form of a product (electric grills, not charcoal ones)
needs the form to be stated; when it is not, the evidence does not decide and we say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from matching.normalise import fold
from registry.catalogue import Catalogue, Standard

_LATIN = re.compile(r"[a-z0-9]")


@dataclass
class ProductMatch:
    status: str  # "controlled", "not_controlled" or "unclear"
    standards: list[Standard] = field(default_factory=list)
    word: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def primary(self) -> Standard | None:
        return self.standards[0] if self.standards else None


@dataclass(frozen=True)
class _Hit:
    pos: int
    word: str
    standard: Standard


class ProductIndex:
    """The catalogue's product words prepared for fast scanning of many titles."""

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue
        words: list[tuple[str, Standard]] = []
        for s in catalogue.standards:
            for w in s.words:
                words.append((w, s))
        words.sort(key=lambda x: -len(x[0]))
        self.words = words
        self.accessory = catalogue.accessory_words
        self.for_words = catalogue.for_words

    def scan(self, text: str) -> list[_Hit]:
        hits: list[_Hit] = []
        taken: list[tuple[int, int]] = []
        for w, s in self.words:
            start = text.find(w)
            while start >= 0:
                end = start + len(w)
                if _bounded(text, start, end, w) and not any(a <= start < b or a < end <= b for a, b in taken):
                    hits.append(_Hit(start, w, s))
                    taken.append((start, end))
                start = text.find(w, start + 1)
        hits.sort(key=lambda h: (h.pos, -len(h.word)))
        return hits


def _bounded(text: str, start: int, end: int, word: str) -> bool:
    """Latin words match whole words only ('cap' is not in 'capacitor'); Thai has no spaces."""
    if _LATIN.match(word[0]) and start > 0 and _LATIN.match(text[start - 1]):
        return False
    return not (_LATIN.match(word[-1]) and end < len(text) and _LATIN.match(text[end]))


def _contains(text: str, word: str) -> bool:
    start = text.find(word)
    while start >= 0:
        if _bounded(text, start, start + len(word), word):
            return True
        start = text.find(word, start + 1)
    return False


@lru_cache(maxsize=8)
def product_index(catalogue: Catalogue) -> ProductIndex:
    return ProductIndex(catalogue)


def decide_product(title: str, category: list[str] | None, attributes: dict[str, str] | None,
                   catalogue: Catalogue) -> ProductMatch:
    idx = product_index(catalogue)
    text = fold(title)
    hits = idx.scan(text)
    source = "title"
    if not hits:
        ctx = fold(" > ".join(category or []) + " " + " ".join((attributes or {}).values()))
        hits = idx.scan(ctx) if ctx.strip() else []
        source = "category"
        text_for_excl = text + " " + ctx
    else:
        text_for_excl = text
    if not hits:
        return ProductMatch("not_controlled", reasons=["no_controlled_product"])

    rejected: list[str] = []
    unclear: list[_Hit] = []
    accepted: list[_Hit] = []
    for h in hits:
        s = h.standard
        excl = next((w for w in s.exclude if _contains(text_for_excl, w)), None)
        if excl:
            rejected.append(f"accessory:{excl}")
            continue
        acc = _accessory_before(text, h, idx)
        if acc:
            rejected.append(f"accessory:{acc}")
            continue
        nf = next((w for w in s.not_form if _contains(text_for_excl, w)), None)
        if nf:
            rejected.append(f"not_form:{s.tis_no}:{nf}")
            continue
        if s.requires and not any(_contains(text_for_excl, w) for w in s.requires):
            unclear.append(h)
            continue
        accepted.append(h)
    if accepted:
        h = accepted[0]
        standards = [h.standard]
        for other in h.standard.with_:
            o = catalogue.find(other)
            if o and o not in standards:
                standards.append(o)
        code = "product" if source == "title" else "category"
        reasons = [f"{code}:{h.standard.tis_no}:{h.word}"] + [f"also_standard:{o.tis_no}" for o in standards[1:]]
        return ProductMatch("controlled", standards, h.word, reasons)
    if unclear:
        h = unclear[0]
        return ProductMatch("unclear", [h.standard], h.word,
                            [f"product:{h.standard.tis_no}:{h.word}", f"form_unclear:{h.standard.tis_no}"])
    return ProductMatch("not_controlled", reasons=rejected[:1] or ["no_controlled_product"])


def _accessory_before(text: str, hit: _Hit, idx: ProductIndex) -> str | None:
    """An accessory word before the product word ('เคส พาวเวอร์แบงค์'), or 'for <product>'
    ('สำหรับ หม้อหุงข้าว'), makes the item an accessory; after it ('... แถมเคส') it does not."""
    before = text[:hit.pos]
    if not before.strip():
        return None
    window = before[-40:]
    for w in idx.for_words:
        i = window.rfind(w)
        if i >= 0 and _bounded(window, i, i + len(w), w) and len(window) - (i + len(w)) <= 12:
            return w
    for w in idx.accessory:
        if _contains(before, w):
            return w
    return None
