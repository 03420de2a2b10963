"""The verdict engine: check(listing, registry) -> Verdict, pure (no network, no disk, no clock).

The five steps: normalise (normalise.py) → read claims (claims.py) → decide the product (product.py)
→ find the licence (licence.py) → the verdict of DOMAIN.md §3, with a risk score and reason codes
(reasons.py gives each a Thai and an English sentence). Every verdict carries at least one reason.

Risk orders the officers' triage queue. It starts from what the evidence shows (a licence number
that does not exist is worse than a missing claim, which is worse than an unclear form) and adds a
little for exposure: many units sold, a seller abroad. Not flagged: 0 (not controlled) or 5
(licensed); flagged: 40 to 100.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from urllib.parse import unquote, urlsplit

from matching.claims import Claim, read_claims
from matching.licence import NO_BRAND, LicenceFinding, brand_index, find_licence
from matching.normalise import brand_key, fold, model_key
from matching.product import ProductMatch, decide_product
from matching.reasons import code
from matching.translit import names_sound_alike
from matching.verdict import Verdict
from matching.vocab import Vocabulary, load_vocabulary
from registry.catalogue import Standard
from registry.index import Registry
from registry.licences import Licence
from registry.tisno import TisNo, parse_tis

_MIN = date(1900, 1, 1)
_LATIN_WORD = re.compile(r"[a-z0-9][a-z0-9&'’.+\-]*")
_OVERSEAS = ("ต่างประเทศ", "overseas", "china", "จีน", "mainland", "hong kong", "ฮ่องกง")


def _claim_fields(listing) -> dict[str, str | None]:
    fields: dict[str, str | None] = {"title": listing.title, "description": listing.description}
    for k, v in (listing.attributes or {}).items():
        fields[f"attr:{k}"] = f"{k} {v}"
    return fields


def _url_claims(listing, registry: Registry) -> list[Claim]:
    """TIS numbers in the product slug (Lazada: ...-934-2558-i4200690269.html). The slug is the title
    with its Thai letters dropped ("11 เล่ม 3-2553" becomes "11-3-2553"), so it is read only when the
    text claims nothing, and only whole numbers (with their year) of standards in the catalogue count."""
    if not listing.url:
        return []
    path = unquote(urlsplit(listing.url).path)
    out = []
    for c in read_claims({"url": path}):
        t = parse_tis(c.value) if c.kind == "tis" else None
        if t is not None and t.year and registry.catalogue.find(t):
            out.append(c)
    return out


def _model_text(listing) -> str:
    """Where a model may be named besides the title: attributes such as รุ่น / Model."""
    return " ".join(v for k, v in (listing.attributes or {}).items()
                    if any(w in fold(k) for w in ("รุ่น", "model", "แบบ")))


def check(listing, registry: Registry, image_claims: Sequence[Claim] | None = None, *,
          vocab: Vocabulary | None = None) -> Verdict:
    """The verdict of one listing (DOMAIN.md §4.2 fields; a `listings.model.Listing`).

    `image_claims` are claims read from the listing's images (matching/image_claims.py: a TIS mark, a
    licence QR code); they count like claims in the text, and the reasons say in which image."""
    cat = registry.catalogue
    vocab = vocab or load_vocabulary()
    claims = read_claims(_claim_fields(listing), cat.vague_claims, vocab.no_tis)
    if not any(c.kind in ("tis", "licence") for c in claims):
        claims += _url_claims(listing, registry)
    doubtful: list[str] = []
    if image_claims:
        from matching.image_claims import drop_doubtful, merge_claims

        image_claims, doubtful = drop_doubtful(image_claims, registry)
        claims = merge_claims(claims, image_claims)
    tis_claims = [c for c in claims if c.kind == "tis"]
    lic_claims = [c for c in claims if c.kind == "licence"]
    vague = any(c.kind == "vague" for c in claims)
    denies = any(c.kind == "no_tis" for c in claims)
    v = Verdict(listing.marketplace, listing.item_id, "not_controlled", 0,
                claims=[_claim_detail(c) for c in claims], registry_version=registry.version)
    if image_claims or doubtful:
        from matching.image_claims import claim_reasons as _image_claim_reasons

        claim_reasons = _image_claim_reasons(claims) + doubtful  # says in which image each was read
    else:
        claim_reasons = [code("claims_tis", c.value) for c in tis_claims] + [code("claims_licence", c.value) for c in lic_claims]

    product = decide_product(listing.title, listing.category, listing.attributes, cat, listing.description, vocab)
    if product.status == "not_controlled" and product.reasons == ["no_controlled_product"] and (tis_claims or lic_claims):
        # a claimed TIS number can name the product when the words do not ("… มอก. 2879-2560")
        claimed = _claimed_standard(tis_claims, lic_claims, registry)
        if claimed is not None and claimed.consumer and claimed.words:
            product = ProductMatch("controlled", [claimed], None, [code("product_from_claim", claimed.tis_no)], "claim")
            for other in claimed.with_:
                o = cat.find(other)
                if o and o not in product.standards:
                    product.standards.append(o)
                    product.reasons.append(code("also_standard", o.tis_no))

    if product.status == "not_controlled" and product.reasons == ["no_controlled_product"]:
        # no product word, but a brand and a model that a licence lists: that licence says what it is
        # ("Fisher-Price Laugh & Learn Smart Phone HVY73" is the toy on the toy licence of HVY73)
        found = _product_from_model(listing, registry, vocab)
        if found is not None:
            product = found
    if product.status == "not_controlled":
        return _set(v, "not_controlled", 0, product.reasons + claim_reasons)
    std = product.primary
    assert std is not None
    v.tis_no = std.tis_no
    v.standards = [s.tis_no for s in product.standards]
    if product.status == "unclear" and _claims_standard(tis_claims, lic_claims, std, registry):
        # a claim of this very standard (or a licence under it) says the listed form is the covered one
        product.status = "controlled"
        product.reasons = [r for r in product.reasons if not r.startswith("form_unclear")]
    if product.status == "unclear":
        # a brand and model that a licence under this standard lists: the licence says it is the form
        # the standard covers (an electric grill on an electric-grill licence)
        f = find_licence(listing.brand, listing.title, std.base, registry, _model_text(listing), vocab)
        if f.model_named and f.model_licence is not None:
            product.status = "controlled"
            product.reasons = [r for r in product.reasons if not r.startswith("form_unclear")] + [
                code("form_from_licence", f.model_named, f.model_licence.licence_no)]
    if product.status == "unclear":
        return _set(v, "needs_review", _exposure(45, listing), product.reasons + claim_reasons)

    reasons = list(product.reasons) + claim_reasons + _older_editions(tis_claims, product, registry)
    finding = find_licence(listing.brand, listing.title, std.base, registry, _model_text(listing), vocab)
    v.candidates = finding.candidates[:10]
    v.brand = finding.brand.name
    v.model = finding.model_named
    if finding.brand.known and finding.brand.source in ("alias", "sound", "fuzzy"):
        reasons.append(code("brand_read_as", finding.brand.name or "", _trademark(finding, registry, std)))

    # 1. a claimed licence number is looked up directly
    if lic_claims:
        return _licence_claimed(v, listing, lic_claims, finding, product, reasons, registry, vocab)

    # 2. no licence claimed: an active licence of the brand (and of the model, when one is named)
    wrong_tis = _wrong_tis_claim(tis_claims, product, registry)
    if finding.match is not None:
        v.licence_no = finding.match.licence_no
        if wrong_tis:
            return _set(v, "mislabeled", _exposure(80, listing), reasons + [wrong_tis, code("licence_match", finding.match.licence_no)])
        return _covered(v, listing, reasons, finding, product, registry, finding.match, claims_number=bool(tis_claims))

    why = _why_no_licence(v, finding, std, registry)
    if tis_claims:
        return _set(v, "mislabeled", _exposure(85, listing), reasons + ([wrong_tis] if wrong_tis else []) + why)
    if denies:
        reasons.append("states_no_tis")
    elif vague:
        reasons.append("vague_claim")
    else:
        reasons.append("no_claim")
    risk = (75 if finding.brand.key else 70) + (5 if denies else 3 if vague else 0)
    return _set(v, "unlicensed", _exposure(risk, listing), reasons + why)


# ---- the pieces ---------------------------------------------------------------------------------
def _licence_claimed(v: Verdict, listing, lic_claims: list[Claim], finding: LicenceFinding, product: ProductMatch,
                     reasons: list[str], registry: Registry, vocab: Vocabulary) -> Verdict:
    """DOMAIN.md §3 for a listing that shows a licence number: the first claimed licence that backs
    the product decides; otherwise the first one's fault makes it mislabeled."""
    bases = {s.base for s in product.standards}
    faults: list[tuple[int, str, Licence | None]] = []
    for c in lic_claims:
        lic = registry.licence(c.value)
        if lic is None:
            from matching.image_claims import misread_licence

            near = misread_licence(c, registry, sorted(bases))  # only numbers OCR read are doubted
            faults.append((-1, near, None) if near else (95, code("licence_not_found", c.value), None))
            continue
        if _licence_base(lic, registry) not in bases:
            faults.append((92, code("licence_other_standard", lic.licence_no, lic.tis_no), lic))
            continue
        shown = _licence_brand_shown(lic, listing, finding, registry, vocab)
        if shown is False:
            faults.append((93, code("licence_other_brand", lic.licence_no, " / ".join(lic.trademarks)), lic))
            continue
        if not lic.active:
            faults.append((90, code("licence_inactive", lic.licence_no, lic.status), lic))
            continue
        if finding.model_named and finding.brand.known and finding.match is None:
            faults.append((82, code("model_not_licensed", finding.model_named), lic))
            continue
        if shown is None:
            # an active licence under the standard, but the listing names no brand to check it against
            v.licence_no = lic.licence_no
            return _set(v, "needs_review", _exposure(55, listing), reasons + [code("licence_match", lic.licence_no), "licence_brand_not_named"])
        match = lic
        if finding.model_named and finding.match is not None and finding.match.licence_no != lic.licence_no:
            match = finding.match  # the named model is on another active licence of the same brand
        return _covered(v, listing, reasons, finding, product, registry, match, claimed=lic)
    risk, why, lic = faults[0]
    v.licence_no = lic.licence_no if lic else None
    if risk < 0:  # OCR may have misread one character of a real licence: a person looks at the picture
        return _set(v, "needs_review", _exposure(60, listing), reasons + [why])
    return _set(v, "mislabeled", _exposure(risk, listing), reasons + [why])


def _licence_brand_shown(lic: Licence, listing, finding: LicenceFinding, registry: Registry,
                         vocab: Vocabulary) -> bool | None:
    """Does the listing show the brand of the licence it claims? True: yes; False: it shows another
    brand; None: it names no brand at all."""
    if finding.brand.known and any(x.licence_no == lic.licence_no for x in finding.brand_licences):
        return True  # the brand found in the listing, in whatever spelling, holds this very licence
    keys = {brand_key(t) for t in lic.trademarks}
    groups = set().union(*(vocab.brand_group(k) for k in keys)) if keys else set()
    if finding.brand.key and finding.brand.key in groups:
        return True
    names = [listing.brand or "", listing.title, listing.description or ""]
    squeezed = brand_key(" ".join(names))
    for k in groups:
        if len(k) >= 2 and k in squeezed and (not k.isascii() or _latin_word_in(k, " ".join(names))):
            return True
    if listing.brand and brand_key(listing.brand) and not _no_brand(listing.brand):
        return any(names_sound_alike(listing.brand, t) for t in lic.trademarks)
    if finding.brand.key:
        return False
    return None


def _latin_word_in(key: str, text: str) -> bool:
    words = [brand_key(w) for w in _LATIN_WORD.findall(fold(text))]
    return any("".join(words[i:i + n]) == key for n in (1, 2, 3) for i in range(len(words) - n + 1))


def _no_brand(name: str) -> bool:
    return brand_key(name) in NO_BRAND


def _why_no_licence(v: Verdict, finding: LicenceFinding, std: Standard, registry: Registry) -> list[str]:
    """The reason no active licence backs the listing (and the licence it concerns, if any)."""
    b = finding.brand
    if b.known and finding.brand_licences:
        if finding.model_named:
            ml = finding.model_licence
            if ml is not None and not ml.active:
                v.licence_no = ml.licence_no
                return [code("model_licence_inactive", finding.model_named, ml.licence_no, ml.status)]
            # the model is on none of the brand's licences: whatever their status, none concerns it
            return [code("model_not_licensed", finding.model_named)]
        inactive = sorted((x for x in finding.brand_licences if not x.active),
                          key=lambda x: (x.status_date or x.issued or _MIN), reverse=True)
        if inactive:
            v.licence_no = inactive[0].licence_no
            return [code("brand_licence_inactive", b.name or "", inactive[0].status)]
    if b.key:
        why = [code("no_active_licence_for_brand", b.name or b.key, std.tis_no)]
        if b.similar:
            lics = brand_index(registry, std.base).licences(b.similar)
            shown = next((t for x in lics for t in x.trademarks if brand_key(t) == b.similar), b.similar)
            why.append(code("brand_similar", b.name or b.key, shown))
        elsewhere = sorted(registry.all_brands.get(brand_key(b.name or b.key), set()) - {std.base})
        if elsewhere:
            s = registry.catalogue.by_base(elsewhere[0])
            why.append(code("brand_licensed_elsewhere", b.name or b.key, s.tis_no if s else elsewhere[0]))
        return why
    return [code("no_licensed_brand", std.tis_no)]


def _covered(v: Verdict, listing, reasons: list[str], finding: LicenceFinding, product: ProductMatch,
             registry: Registry, lic: Licence, claimed: Licence | None = None, claims_number: bool = False) -> Verdict:
    """Licensed only when every standard that applies is covered by an active licence of the brand."""
    v.licence_no = lic.licence_no
    reasons = reasons + [code("licence_match", lic.licence_no)]
    if finding.model_named:
        reasons.append(code("model_licensed", finding.model_named))
    brand_keys = {brand_key(t) for t in lic.trademarks}
    for other in product.standards[1:]:
        idx = brand_index(registry, other.base)
        if not any(x.active for k in brand_keys for x in idx.licences(k)):
            why = [code("standard_not_covered", other.tis_no)]
            if claimed is not None or claims_number:
                # it shows a licence or standard number, yet one standard that applies is not covered
                return _set(v, "mislabeled", _exposure(78, listing), reasons + why)
            return _set(v, "unlicensed", _exposure(65, listing), reasons + why)
    reasons.append(code("brand_licensed", finding.brand.name or lic.trademarks[0] if lic.trademarks else ""))
    return _set(v, "licensed", 5, reasons)


def _product_from_model(listing, registry: Registry, vocab: Vocabulary) -> ProductMatch | None:
    """The standard of the licence that lists the listing's brand and model, when exactly one does."""
    from matching.licence import model_codes

    codes = {model_key(c): c for c in model_codes(listing.title)}
    if not codes:
        return None
    words = [brand_key(w) for w in _LATIN_WORD.findall(fold(listing.title))]
    keys = {brand_key(listing.brand)} if listing.brand else set()
    keys |= {"".join(words[i:i + n]) for n in (1, 2) for i in range(len(words) - n + 1)}
    found: dict[str, tuple[Standard, str]] = {}
    for k in keys:
        for base in registry.all_brands.get(k, ()) if k else ():
            std = registry.catalogue.by_base(base)
            if std is None or not std.consumer or base in found:
                continue
            per_licence, _ = brand_index(registry, base, vocab).models(k)
            hit = next((codes[c] for c in codes if any(c in mk for mk in per_licence.values())), None)
            if hit:
                found[base] = (std, hit)
    if len(found) != 1:
        return None
    std, model = next(iter(found.values()))
    standards = [std] + [o for o in (registry.catalogue.find(w) for w in std.with_) if o is not None]
    return ProductMatch("controlled", standards, None,
                        [code("product_from_model", std.tis_no, model)] + [code("also_standard", o.tis_no) for o in standards[1:]],
                        "model")


def _licence_base(lic: Licence, registry: Registry) -> str:
    """The base of the standard a licence is filed under in the catalogue: a licence issued under an
    older edition with another number (1985-2549) counts under the current one (60335 เล่ม 2(23))."""
    return registry.base_of.get(lic.licence_no) or lic.base


def _tis_names(t: TisNo, bases: set[str], numbers: set[str], registry: Registry) -> bool:
    """Does a claimed TIS number name one of these standards: its base (any year), its number without
    a part, or an older edition the catalogue links to one of them (1985-2549 of 60335 เล่ม 2(23)-2564)?"""
    if t.base in bases or (t.part is None and t.number in numbers):
        return True
    s = registry.catalogue.find(t)
    return s is not None and s.base in bases


def _older_editions(tis_claims: list[Claim], product: ProductMatch, registry: Registry) -> list[str]:
    """A note for each claimed older edition with another base number that the catalogue links to the
    product's standard: the officer sees why "มอก. 1985-2549" on a hair dryer is no wrong number."""
    bases = {s.base for s in product.standards}
    out = []
    for c in tis_claims:
        t = parse_tis(c.value)
        s = registry.catalogue.find(t) if t is not None and t.base not in bases else None
        if s is not None and s.base in bases:
            out.append(code("tis_older_edition", c.value, s.tis_no))
    return out


def _claims_standard(tis_claims: list[Claim], lic_claims: list[Claim], std: Standard, registry: Registry) -> bool:
    for c in lic_claims:
        lic = registry.licence(c.value)
        if lic is not None and _licence_base(lic, registry) == std.base:
            return True
    for c in tis_claims:
        t = parse_tis(c.value)
        if t is not None and _tis_names(t, {std.base}, {std.tis.number}, registry):
            return True
    return False


def _claimed_standard(tis_claims: list[Claim], lic_claims: list[Claim], registry: Registry) -> Standard | None:
    for c in lic_claims:
        lic = registry.licence(c.value)
        if lic:
            return registry.catalogue.find(lic.tis_no)
    for c in tis_claims:
        s = registry.catalogue.find(c.value)
        if s:
            return s
        t = parse_tis(c.value)
        if t is not None and t.part is None:
            parts = registry.catalogue.bases_for_number(t.number)
            if len(parts) == 1:
                return parts[0]
    return None


def _wrong_tis_claim(tis_claims: list[Claim], product: ProductMatch, registry: Registry) -> str | None:
    """A claimed TIS number that does not exist, or exists but is not this product's standard (an
    older edition the catalogue links to the product's standard is that standard)."""
    bases = {s.base for s in product.standards}
    numbers = {s.tis.number for s in product.standards}
    for c in tis_claims:
        t = parse_tis(c.value)
        if t is None:
            continue
        if _tis_names(t, bases, numbers, registry):
            continue
        if registry.catalogue.find(t) is None and not registry.catalogue.bases_for_number(t.number):
            return code("tis_unknown", c.value)
        return code("tis_not_for_product", c.value, product.primary.tis_no if product.primary else "")
    return None


def _trademark(finding: LicenceFinding, registry: Registry, std: Standard) -> str:
    lics = brand_index(registry, std.base).licences(finding.brand.key)
    return lics[0].trademarks[0] if lics and lics[0].trademarks else (finding.brand.key or "")


def _claim_detail(c: Claim) -> dict:
    d = {"kind": c.kind, "value": c.value, "where": c.where, "span": list(c.span), "text": c.text}
    box = getattr(c, "box", None)
    if box is not None:  # an image claim: where in the picture, for the review page's highlight
        d.update(box=list(box), source=c.source, image_size=list(c.image_size))  # type: ignore[attr-defined]
    return d


def _exposure(risk: int, listing) -> int:
    """A flagged listing that many people buy, or that ships from abroad, comes first in the queue."""
    sold = listing.sold or 0
    bump = 4 if sold >= 1000 else 2 if sold >= 100 else 0
    loc = fold(listing.location or "")
    if loc and any(w in loc for w in _OVERSEAS):
        bump += 3
    return min(100, risk + bump)


def _set(v: Verdict, verdict: str, risk: int, reasons: list[str]) -> Verdict:
    v.verdict, v.risk, v.reasons = verdict, risk, reasons or ["no_controlled_product"]
    return v



def prepare(registry: Registry) -> None:
    """Build the lookup structures for every standard now rather than on first use (a long crawl or
    a benchmark wants the cost paid once, up front)."""
    from matching.product import product_index

    product_index(registry.catalogue)
    for base in list(registry.brands):
        idx = brand_index(registry, base)
        idx.sound  # noqa: B018 (built on first use)
        for key in idx.keys:
            idx.models(key)
