"""The verdict engine: check(listing, registry) -> Verdict, pure (no network, no disk, no clock).

Claims read from the listing's images (matching/image_claims.py) join the text claims through
`check(listing, registry, image_claims=...)`; without them the verdict is the text-only one."""

from __future__ import annotations

from collections.abc import Sequence

from matching.claims import Claim, read_claims
from matching.licence import find_licence
from matching.product import decide_product
from matching.verdict import Verdict
from registry.index import Registry
from registry.tisno import parse_tis


def _claim_fields(listing) -> dict[str, str | None]:
    fields: dict[str, str | None] = {"title": listing.title, "description": listing.description}
    for k, v in (listing.attributes or {}).items():
        fields[f"attr:{k}"] = f"{k} {v}"
    if listing.url:
        fields["url"] = listing.url.replace("-", " - ") if "มอก" in listing.url else None
    return fields


def check(listing, registry: Registry, image_claims: Sequence[Claim] | None = None) -> Verdict:
    cat = registry.catalogue
    claims = read_claims(_claim_fields(listing), cat.vague_claims)
    if image_claims:
        from matching.image_claims import merge_claims

        claims = merge_claims(claims, image_claims)
    tis_claims = [c for c in claims if c.kind == "tis"]
    lic_claims = [c for c in claims if c.kind == "licence"]
    vague = any(c.kind == "vague" for c in claims)
    v = Verdict(listing.marketplace, listing.item_id, "not_controlled", 0,
                claims=[_claim_detail(c) for c in claims], registry_version=registry.version)
    if image_claims:
        from matching.image_claims import claim_reasons as _image_claim_reasons

        claim_reasons = _image_claim_reasons(claims)
    else:
        claim_reasons = [f"claims_tis:{c.value}" for c in tis_claims] + [f"claims_licence:{c.value}" for c in lic_claims]

    product = decide_product(listing.title, listing.category, listing.attributes, cat)
    # a claimed TIS number can reveal the product when the words do not (a listing that says only "มอก. 2879")
    if product.status == "not_controlled" and product.reasons == ["no_controlled_product"] and (tis_claims or lic_claims):
        claimed = _claimed_standard(tis_claims, lic_claims, registry)
        if claimed is not None and claimed.consumer:
            product.status, product.standards, product.reasons = "controlled", [claimed], [f"product:{claimed.tis_no}:มอก. {claimed.tis_no}"]

    if product.status == "not_controlled":
        v.reasons = product.reasons + claim_reasons
        v.risk = 5 if claim_reasons else 0
        return v
    std = product.primary
    assert std is not None
    v.tis_no = std.tis_no
    v.standards = [s.tis_no for s in product.standards]
    if product.status == "unclear" and _claims_standard(tis_claims, lic_claims, product.primary, registry):
        # a claim of this very standard (or a licence under it) says the listed form is the covered one
        product.status = "controlled"
        product.reasons = [r for r in product.reasons if not r.startswith("form_unclear")]
    if product.status == "unclear":
        v.verdict, v.risk = "needs_review", 45
        v.reasons = product.reasons + claim_reasons
        return v

    reasons = list(product.reasons) + claim_reasons
    finding = find_licence(listing.brand, listing.title, std.base, registry)
    v.candidates = finding.candidates[:10]
    brand_name = finding.brand.name or ""

    # 1. a claimed licence number is looked up directly
    if lic_claims:
        lic = registry.licence(lic_claims[0].value)
        no = lic_claims[0].value
        if lic is None:
            return _set(v, "mislabeled", 95, reasons + [f"licence_not_found:{no}"])
        v.licence_no = lic.licence_no
        if lic.base not in {s.base for s in product.standards}:
            return _set(v, "mislabeled", 92, reasons + [f"licence_other_standard:{no}:{lic.tis_no}"])
        if finding.brand.key and lic.licence_no not in {x.licence_no for x in finding.brand_licences}:
            return _set(v, "mislabeled", 93, reasons + [f"licence_other_brand:{no}:{' / '.join(lic.trademarks)}"])
        if not lic.active:
            return _set(v, "mislabeled", 90, reasons + [f"licence_inactive:{no}:{lic.status}"])
        if finding.match is None and finding.model_named and finding.brand_licences:
            return _set(v, "mislabeled", 82, reasons + [f"model_not_licensed:{finding.models[0]}"])
        if not finding.brand.key:
            # the licence exists and is active but the listing names no brand to check it against
            return _set(v, "needs_review", 55, reasons + [f"licence_match:{no}", "no_brand"])
        return _covered(v, reasons + [f"licence_match:{no}"], finding, product, registry, lic.licence_no)

    # 2. no licence claimed: look for an active licence of the brand (and model)
    wrong_tis = _wrong_tis_claim(tis_claims, product, registry)
    if finding.match is not None:
        v.licence_no = finding.match.licence_no
        if wrong_tis:
            return _set(v, "mislabeled", 80, reasons + [wrong_tis])
        return _covered(v, reasons + [f"licence_match:{finding.match.licence_no}"], finding, product, registry,
                        finding.match.licence_no)

    if finding.brand_licences:
        inactive = [x for x in finding.brand_licences if not x.active]
        if finding.model_named and any(x.active for x in finding.brand_licences):
            why = f"model_not_licensed:{finding.models[0]}"
        elif inactive:
            why = f"brand_licence_inactive:{brand_name}:{inactive[0].status}"
            v.licence_no = inactive[0].licence_no
        else:
            why = f"no_active_licence_for_brand:{brand_name}"
    elif finding.brand.key:
        why = f"no_active_licence_for_brand:{brand_name}"
    else:
        why = "no_brand"
    if tis_claims:
        return _set(v, "mislabeled", 85, reasons + ([wrong_tis] if wrong_tis else []) + [why])
    reasons += ["vague_claim"] if vague else ["no_claim"]
    return _set(v, "unlicensed", 75 if finding.brand.key else 70, reasons + [why])


def _claim_detail(c: Claim) -> dict:
    d = {"kind": c.kind, "value": c.value, "where": c.where, "span": list(c.span), "text": c.text}
    box = getattr(c, "box", None)
    if box is not None:  # an image claim: where in the picture, for the review page's highlight
        d.update(box=list(box), source=c.source, image_size=list(c.image_size))  # type: ignore[attr-defined]
    return d


def _claims_standard(tis_claims: list[Claim], lic_claims: list[Claim], std, registry: Registry) -> bool:
    for c in lic_claims:
        lic = registry.licence(c.value)
        if lic is not None and lic.base == std.base:
            return True
    for c in tis_claims:
        t = parse_tis(c.value)
        if t is not None and (t.base == std.base or (t.part is None and t.number == std.tis.number)):
            return True
    return False


def _claimed_standard(tis_claims: list[Claim], lic_claims: list[Claim], registry: Registry):
    for c in lic_claims:
        lic = registry.licence(c.value)
        if lic:
            return registry.catalogue.find(lic.tis_no)
    for c in tis_claims:
        s = registry.catalogue.find(c.value)
        if s:
            return s
    return None


def _wrong_tis_claim(tis_claims: list[Claim], product, registry: Registry) -> str | None:
    """A claimed TIS number that does not exist, or exists but is not this product's standard."""
    bases = {s.base for s in product.standards}
    numbers = {s.tis.number for s in product.standards}
    for c in tis_claims:
        t = parse_tis(c.value)
        if t is None:
            continue
        if t.base in bases or (t.part is None and t.number in numbers):
            continue
        if registry.catalogue.find(t) is None and not registry.catalogue.bases_for_number(t.number):
            return f"tis_unknown:{c.value}"
        return f"tis_not_for_product:{c.value}:{product.primary.tis_no}"
    return None


def _covered(v: Verdict, reasons: list[str], finding, product, registry: Registry, licence_no: str) -> Verdict:
    """Licensed only when every standard that applies is covered by an active licence of the brand."""
    for other in product.standards[1:]:
        lics = registry.brands.get(other.base, {}).get(finding.brand.key or "", [])
        if not any(x.active for x in lics):
            return _set(v, "unlicensed", 65, [*reasons, f"standard_not_covered:{other.tis_no}"])
    if finding.brand.key:
        reasons.append(f"brand_licensed:{finding.brand.name}")
    return _set(v, "licensed", 5, reasons)


def _set(v: Verdict, verdict: str, risk: int, reasons: list[str]) -> Verdict:
    v.verdict, v.risk, v.reasons = verdict, risk, reasons
    return v
