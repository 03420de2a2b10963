"""Finding the licence behind a listing: candidates by standard, then brand, then model.

Brands are compared by key (case, spaces and punctuation removed) against every trademark of the
licences under the standard, Thai and Latin spellings alike, with a fuzzy fallback (rapidfuzz) for
small misspellings of longer names. Model codes compare by key: PB-2001 = pb2001, PB-2001 ≠ PB-2002.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from matching.normalise import brand_key, clean, fold, model_key
from registry.index import Registry
from registry.licences import Licence

NO_BRAND = frozenset(brand_key(b) for b in (
    "No Brand", "NoBrand", "ไม่มียี่ห้อ", "ไม่มีแบรนด์", "ไม่ระบุ", "OEM", "Generic", "none", "-", "n/a", "อื่นๆ", "Other", "Others"))
_MODEL = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{1,8}[-\s]?\d{1,6}(?:[-/]?[A-Za-z0-9]{1,6}){0,3}|\d{2,6}[-]?[A-Za-z]{1,4}\d{0,4})(?![A-Za-z0-9])")
_UNIT = re.compile(r"^\d+(?:mah|w|v|a|m|cm|mm|l|ml|kg|g|gb|tb|hz|in|inch|pcs|ชิ้น|นิ้ว|ft|btu|lm|k|x|mp|rpm)$")
_SPEC_WORDS = frozenset({"e27", "e14", "gu10", "t8", "t5", "pd20", "pd", "qc3", "usb3", "type-c", "usbc", "ip65", "ip67", "ip68", "ipx4", "ipx7", "5g", "4g", "3g", "wifi6", "ddr4", "ddr5"})
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9&'’.\-]*")


def model_codes(text: str) -> list[str]:
    """Model-like codes in text (PB-2001, X9 Pro, 5000A), without units and common spec words."""
    out: list[str] = []
    for m in _MODEL.finditer(clean(text)):
        code = m.group(1).strip()
        k = model_key(code)
        if len(k) < 3 or _UNIT.match(k) or k in _SPEC_WORDS or k.isdigit():
            continue
        if k not in (model_key(c) for c in out):
            out.append(code)
    return out


@dataclass
class BrandFinding:
    name: str | None  # as the listing writes it
    key: str | None
    source: str = ""  # "brand" field, "title", "fuzzy"
    score: float = 100.0


@dataclass
class LicenceFinding:
    brand: BrandFinding
    models: list[str] = field(default_factory=list)
    brand_licences: list[Licence] = field(default_factory=list)  # under the standard, any status
    match: Licence | None = None
    model_named: bool = False
    candidates: list[tuple[str, float]] = field(default_factory=list)


def find_brand(listing_brand: str | None, title: str, base: str, registry: Registry) -> BrandFinding:
    brands = registry.brands.get(base, {})
    given = brand_key(listing_brand)
    if given and given not in NO_BRAND:
        if given in brands:
            return BrandFinding(listing_brand, given, "brand")
        # a brand field like "Anker Official Store": the key must be one or more whole words of it
        # ("Pono" is not "Ponotor"; Thai runs together, so a Thai key must be the whole field)
        words = [brand_key(w) for w in re.split(r"[\s/,|()\[\]]+", fold(listing_brand)) if brand_key(w)]
        spans = {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, min(len(words), i + 3) + 1)}
        for k in brands:
            if k in spans:
                return BrandFinding(listing_brand, k, "brand")
        if len(given) >= 4 and brands:
            best = process.extractOne(given, list(brands), scorer=fuzz.ratio, score_cutoff=88)
            if best:
                return BrandFinding(listing_brand, best[0], "fuzzy", best[1])
        return BrandFinding(listing_brand, given, "brand", 0.0)
    # no brand field: look for any licensed trademark under this standard in the title
    t = fold(title)
    squeezed = brand_key(title)
    for k in sorted(brands, key=len, reverse=True):
        if len(k) >= 3 and k in squeezed:
            # Latin keys must stand as a word (or words) in the title, Thai ones may sit anywhere
            if k.isascii():
                words = [brand_key(w) for w in _LATIN_WORD.findall(t)]
                joined = {words[i] + (words[i + 1] if i + 1 < len(words) else "") for i in range(len(words))}
                if k not in words and k not in joined:
                    continue
            return BrandFinding(k, k, "title")
    return BrandFinding(None, None, "")


def find_licence(listing_brand: str | None, title: str, base: str, registry: Registry) -> LicenceFinding:
    brand = find_brand(listing_brand, title, base, registry)
    finding = LicenceFinding(brand=brand, models=model_codes(title))
    if not brand.key:
        return finding
    lics = registry.brands.get(base, {}).get(brand.key, [])
    finding.brand_licences = list(lics)
    if not lics:
        return finding
    # which of the title's codes are model codes of this brand: same letter prefix as a licensed model
    brand_models = {m for lic in lics for m in registry.model_keys.get(lic.licence_no, ())}
    prefixes = {re.match(r"[a-z]*", m)[0] for m in brand_models}  # type: ignore[index]
    named = [c for c in finding.models if model_key(c) in brand_models
             or (re.match(r"[a-z]*", model_key(c))[0] in prefixes)]  # type: ignore[index]
    finding.model_named = bool(named)
    named_keys = {model_key(c) for c in named}
    best: Licence | None = None
    for lic in lics:
        mk = registry.model_keys.get(lic.licence_no, frozenset())
        model_ok = not named_keys or bool(named_keys & mk)
        finding.candidates.append((lic.licence_no, 100.0 if model_ok else 50.0))
        if lic.active and model_ok and (best is None or (lic.issued or 0) > (best.issued or 0)):  # type: ignore[operator]
            best = lic
    finding.match = best
    return finding
