"""The licence check for platforms: is a seller's claim (standard, licence, brand, model) backed by the
registry? Pure: it reads the in-memory Registry and nothing else (no I/O, no clock: the day to check
is passed in, or the registry's current state is used).

A claim is backed when a licence exists, is active (on the day asked about), was issued under the
claimed standard (any edition of it), carries the brand and, when the licence lists models and a model
is given, lists that model. With no licence number, the brand's licences under the standard are
searched for one that backs the claim. Brands compare by key (case, spaces, punctuation ignored) against
every trademark on the licence, Thai and Latin spellings alike, and through matching's brand rules
(aliases such as Sharp = ชาร์ป, the same sound in the other script, whole words of a brand field such as
'Eloop Official Store'). A brand that only resembles a licensed one ('Voltamxi' for 'Voltamix') is not
backed: counterfeits live on near-misses, so the near-miss is named in the reasons for the platform to
see. Model codes compare by key (PB-2001 = pb 2001 ≠ PB-2002), also inside a model line of the licence.

Reason codes are those of matching/reasons.py where the meaning is the same; the few that only the
licence check needs have their sentences here.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from matching.licence import find_brand, licence_model_keys
from matching.normalise import brand_key, clean, model_key
from matching.reasons import sentence as _verdict_sentence
from registry.catalogue import Standard
from registry.index import Registry
from registry.licences import LICENCE_TYPES, LICENCE_TYPES_TH, STATUS_TH, Licence
from registry.tisno import parse_licence_no, parse_tis

SENTENCES: dict[str, tuple[str, str]] = {
    "licence_backs": ("ใบอนุญาต {0} รองรับสินค้านี้", "licence {0} backs this product"),
    "tis_invalid": ("“{0}” ไม่ใช่เลข มอก.", "“{0}” is not a TIS number"),
    "licence_invalid": ("“{0}” ไม่ใช่เลขที่ใบอนุญาต (เช่น ท5137-2/10)", "“{0}” is not a licence number (like ท5137-2/10)"),
    "tis_older_edition": ("มอก. {0} เป็นฉบับเก่าของ มอก. {1}", "TIS {0} is an older edition of TIS {1}"),
    "tis_newer_edition": ("มอก. {0} ใหม่กว่าฉบับในทะเบียน (มอก. {1})", "TIS {0} is newer than the catalogue's edition (TIS {1})"),
    "licence_not_issued": ("ใบอนุญาต {0} ยังไม่ได้ออก ณ วันที่ {1}", "licence {0} had not been issued on {1}"),
    "model_not_on_licence": ("รุ่น {0} ไม่อยู่ในใบอนุญาต {1}", "model {0} is not listed on licence {1}"),
    "licence_lists_no_models": ("ใบอนุญาต {0} ไม่ได้ระบุรุ่น จึงตรวจรุ่นไม่ได้", "licence {0} lists no models, so the model cannot be checked"),
    "brand_similar": ("ยี่ห้อ “{0}” คล้ายกับ “{1}” ที่มีใบอนุญาต แต่ไม่ตรงกัน", "brand “{0}” resembles the licensed “{1}” but is not it"),
    "brand_licensed_other_standard": ("ยี่ห้อ {0} มีใบอนุญาตตาม มอก. {1} แทน", "brand {0} holds licences under TIS {1} instead"),
    "no_claim_to_check": ("ไม่ได้ระบุเลข มอก. หรือเลขที่ใบอนุญาต", "neither a TIS number nor a licence number was given"),
}


def message(code: str, lang: str = "en") -> str:
    """The sentence for a reason code of the licence check, in 'th' or 'en'."""
    name, *args = code.split(":")
    tpl = SENTENCES.get(name)
    if tpl is None:
        return _verdict_sentence(code, lang)
    return tpl[0 if lang == "th" else 1].format(*(args + [""] * 3))


# ---- the answer (also the API's response model, hence the descriptions) ---------------------------
class StandardInfo(BaseModel):
    tis_no: str = Field(description="the standard's current edition", examples=["2879-2560"])
    name_th: str = Field(description="its Thai name", examples=["แบตเตอรี่สำรองไฟฟ้าสำหรับการใช้งานแบบพกพา - คุณลักษณะที่ต้องการด้านความปลอดภัย"])
    name_en: str = Field(description="its English name", examples=["Portable power bank - safety requirements"])
    claimed: str | None = Field(None, description="the TIS number as the claim wrote it, canonical", examples=["2879-2560"])
    edition: Literal["current", "older", "newer", "any", "unknown"] = Field(
        "any", description="how the claimed number names the standard: its current edition, an older edition "
                           "(still accepted), a newer one, or no year ('any')")
    editions: list[str] = Field(default_factory=list, description="older editions the catalogue knows")


class LicenceInfo(BaseModel):
    licence_no: str = Field(examples=["ท5137-2/10"])
    licence_type: str = Field(description="ท manufacture, น import, ส mark display, นค one-time import", examples=["ท"])
    licence_type_en: str = Field(examples=["manufacture"])
    licence_type_th: str = Field(examples=["ทำ"])
    tis_no: str = Field(description="the standard (edition) it was issued under", examples=["2879-2560"])
    licensee: str = Field(examples=["บริษัท ตัวอย่าง จำกัด"])
    trademarks: list[str] = Field(examples=[["Eloop", "อีลูป"]])
    models: list[str] = Field(examples=[["E-29", "E-30"]])
    status: Literal["active", "suspended", "cancelled", "revoked"] = Field(
        description="its status on the day checked (today's when no day was given)")
    status_th: str = Field(examples=["ใช้งาน"])
    issued: date | None = Field(None, examples=["2022-03-15"])
    status_date: date | None = Field(None, description="when it left the active status, if it did")


_EXAMPLE = {
    "backed": False, "reasons": ["licence_inactive:น300-1/1:revoked"],
    "messages_th": ["ใบอนุญาต น300-1/1 อยู่ในสถานะ เพิกถอน"], "messages_en": ["licence น300-1/1 is revoked"],
    "standard": {"tis_no": "2879-2560", "name_th": "แบตเตอรี่สำรองไฟฟ้าสำหรับการใช้งานแบบพกพา - คุณลักษณะที่ต้องการด้านความปลอดภัย",
                 "name_en": "Portable power bank - safety requirements", "claimed": "2879-2560", "edition": "current",
                 "editions": []},
    "licence": {"licence_no": "น300-1/1", "licence_type": "น", "licence_type_en": "import", "licence_type_th": "นำเข้า",
                "tis_no": "2879-2560", "licensee": "บริษัท ตัวอย่าง จำกัด", "trademarks": ["Volto", "โวลโต้"],
                "models": ["V-1", "V-2"], "status": "revoked", "status_th": "เพิกถอน", "issued": "2020-01-01",
                "status_date": "2024-06-01"},
    "brand_covered": True, "model_covered": True, "other_licences": [], "on": None, "registry_version": "r12",
}


class LicenceCheck(BaseModel):
    """Whether a seller's claim is backed by the TISI licence registry, and why (not)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    backed: bool = Field(description="true when an active licence under the standard carries the brand (and "
                                     "lists the model, when the licence lists models and a model was given)")
    reasons: list[str] = Field(description="reason codes, `name:argument`", examples=[["licence_backs:ท5137-2/10"]])
    messages_th: list[str] = Field(description="the reasons as Thai sentences")
    messages_en: list[str] = Field(description="the reasons as English sentences")
    standard: StandardInfo | None = Field(None, description="the standard claimed or the licence's standard")
    licence: LicenceInfo | None = Field(None, description="the licence named, or the one found to back the claim")
    brand_covered: bool | None = Field(None, description="the licence carries the brand; null when no brand was given "
                                                         "or there is no licence")
    model_covered: bool | None = Field(None, description="the licence lists the model; null when no model was given "
                                                         "or the licence lists none")
    other_licences: list[str] = Field(default_factory=list, description="other licences of the brand under the "
                                                                        "standard (any status), up to 20")
    on: date | None = Field(None, description="the day the check is about; null: the registry as it stands")
    registry_version: str = Field(description="changes whenever the registry changes", examples=["r12"])


class CheckQuery(BaseModel):
    tis_no: str | None = None
    licence_no: str | None = None
    brand: str | None = None
    model: str | None = None
    on: date | None = None


class NothingToCheck(ValueError):
    """Neither a TIS number nor a licence number: there is no claim."""


# ---- the check ------------------------------------------------------------------------------------
def _standard_info(std: Standard, claimed: str | None, edition: str) -> StandardInfo:
    return StandardInfo(tis_no=std.tis_no, name_th=std.name_th, name_en=std.name_en, claimed=claimed,
                        edition=edition, editions=[str(e) for e in std.editions])  # type: ignore[arg-type]


def _licence_info(lic: Licence) -> LicenceInfo:
    return LicenceInfo(licence_no=lic.licence_no, licence_type=lic.licence_type,
                       licence_type_en=LICENCE_TYPES.get(lic.licence_type, ""),
                       licence_type_th=LICENCE_TYPES_TH.get(lic.licence_type, ""), tis_no=lic.tis_no,
                       licensee=lic.licensee, trademarks=list(lic.trademarks), models=list(lic.models),
                       status=lic.status, status_th=STATUS_TH.get(lic.status, lic.status), issued=lic.issued,
                       status_date=lic.status_date)  # type: ignore[arg-type]


def _as_of(registry: Registry, licence_no: str, on: date | None) -> Licence | None:
    """The licence as of `on` (None: as it stands); None when it was not issued by then."""
    return registry.licence(licence_no) if on is None else registry.licence_on(licence_no, on)


def _brand_on(lic: Licence, key: str) -> bool:
    return key in {brand_key(t) for t in lic.trademarks}


def _model_on(lic: Licence, key: str) -> bool | None:
    """The licence lists the model (a model line, or a code inside one: 'HT-S16M7 (16 นิ้ว)'); None when
    it lists no models."""
    if not lic.models:
        return None
    return key in licence_model_keys(lic)


def check_licence(registry: Registry, tis_no: str | None = None, licence_no: str | None = None,
                  brand: str | None = None, model: str | None = None, on: date | None = None) -> LicenceCheck:
    """Answer whether the claim is backed. Raises NothingToCheck when neither `tis_no` nor `licence_no`
    is given (a blank value counts as not given)."""
    tis_no, licence_no, brand, model = (clean(x) or None for x in (tis_no, licence_no, brand, model))
    if not tis_no and not licence_no:
        raise NothingToCheck("give tis_no, licence_no or both")
    cat = registry.catalogue
    reasons: list[str] = []
    out = LicenceCheck(backed=False, reasons=[], messages_th=[], messages_en=[], on=on,
                       registry_version=registry.version)

    # the standard claimed
    std: Standard | None = None
    if tis_no:
        t = parse_tis(tis_no)
        if t is None:
            reasons.append(f"tis_invalid:{tis_no}")
        else:
            std = cat.find(t)
            if std is None:
                reasons.append(f"tis_unknown:{t}")
            else:
                ed = cat.edition(t)
                out.standard = _standard_info(std, str(t), ed)
                if ed == "older":
                    reasons.append(f"tis_older_edition:{t}:{std.tis_no}")
                elif ed == "newer":
                    reasons.append(f"tis_newer_edition:{t}:{std.tis_no}")
    bkey = brand_key(brand) if brand else ""

    # a licence named: look it up
    if licence_no:
        no = parse_licence_no(licence_no)
        if no is None:
            reasons.append(f"licence_invalid:{licence_no}")
            return _finish(out, reasons)
        now = registry.licence(no)
        if now is None:
            reasons.append(f"licence_not_found:{no}")
            return _finish(out, reasons)
        lic = _as_of(registry, no, on)
        if lic is None:
            out.licence = _licence_info(now)
            reasons.append(f"licence_not_issued:{no}:{on}")
            return _finish(out, reasons)
        out.licence = _licence_info(lic)
        lic_std = cat.find(lic.tis)
        if out.standard is None and lic_std is not None and not tis_no:
            out.standard = _standard_info(lic_std, None, "any")
        ok = lic.active
        if not lic.active:
            reasons.append(f"licence_inactive:{no}:{lic.status}")
        if std is not None and registry.base_of.get(no) != std.base:
            reasons.append(f"licence_other_standard:{no}:{lic.tis_no}")
            ok = False
        if tis_no and std is None:
            ok = False
        if bkey:
            out.brand_covered = _brand_on(lic, bkey) or _brand_in_field(registry, lic, brand)
            if not out.brand_covered:
                reasons.append(f"licence_other_brand:{no}:{' / '.join(lic.trademarks) or '—'}")
                ok = False
        else:
            reasons.append("no_brand")
            ok = False
        if model:
            out.model_covered = _model_on(lic, model_key(model))
            if out.model_covered is False:
                reasons.append(f"model_not_on_licence:{model}:{no}")
                ok = False
            elif out.model_covered is None:
                reasons.append(f"licence_lists_no_models:{no}")
        if bkey:
            base = registry.base_of.get(no, "")
            out.other_licences = [x.licence_no for x in registry.brands.get(base, {}).get(bkey, [])
                                  if x.licence_no != no][:20]
        if ok:
            reasons.insert(0, f"licence_backs:{no}")
        out.backed = ok
        return _finish(out, reasons)

    # no licence named: search the brand's licences under the standard
    if std is None:
        return _finish(out, reasons)
    if not bkey:
        reasons.append("no_brand")
        return _finish(out, reasons)
    found = find_brand(brand, "", std.base, registry)
    same = found.known and found.source in _SAME_BRAND
    lics = registry.brands.get(std.base, {}).get(found.key or "", []) if same else []
    out.other_licences = [x.licence_no for x in lics][:20]
    mkey = model_key(model) if model else ""
    best: tuple[Licence, bool | None] | None = None
    inactive: list[Licence] = []
    model_missed = False
    for x in lics:
        lic = _as_of(registry, x.licence_no, on)
        if lic is None:
            continue
        if not lic.active:
            inactive.append(lic)
            continue
        covered = _model_on(lic, mkey) if mkey else None
        if covered is False:
            model_missed = True
            continue
        # prefer a licence that lists the model, then the most recently issued
        rank = (covered is True, lic.issued or date.min)
        if best is None or rank > (best[1] is True, best[0].issued or date.min):
            best = (lic, covered)
    if best is not None:
        lic, covered = best
        out.licence, out.brand_covered, out.model_covered, out.backed = _licence_info(lic), True, covered, True
        out.other_licences = [n for n in out.other_licences if n != lic.licence_no]
        reasons.insert(0, f"licence_backs:{lic.licence_no}")
        if mkey and covered is None:
            reasons.append(f"licence_lists_no_models:{lic.licence_no}")
        return _finish(out, reasons)
    if lics:
        out.brand_covered = True
        if model_missed:
            reasons.append(f"model_not_licensed:{model}")
            out.model_covered = False
        elif inactive:
            reasons.append(f"brand_licence_inactive:{brand}:{inactive[0].status}")
            out.licence = _licence_info(inactive[0])
        else:
            reasons.append(f"no_active_licence_for_brand:{brand}")
        return _finish(out, reasons)
    out.brand_covered = False
    if found.known and found.source == "fuzzy" and found.key:
        shown = next((t for lic in registry.brands[std.base][found.key] for t in lic.trademarks
                      if brand_key(t) == found.key), found.key)
        reasons.append(f"brand_similar:{brand}:{shown}")
    reasons.append(f"no_active_licence_for_brand:{brand}")
    elsewhere = sorted(b for b in registry.all_brands.get(bkey, ()) if b != std.base)
    if elsewhere:
        other = cat.by_base(elsewhere[0])
        reasons.append(f"brand_licensed_other_standard:{brand}:{other.tis_no if other else elsewhere[0]}")
    return _finish(out, reasons)


class _OneLicence:
    """The part of a Registry that matching's find_brand reads, holding one licence's trademarks only."""

    def __init__(self, base: str, lic: Licence):
        self.brands = {base: {k: [lic] for k in (brand_key(t) for t in lic.trademarks) if k}}

    def __len__(self) -> int:
        return 1


# how find_brand may recognise a brand for the check to accept it: the same key, an alias from
# config/matching.toml (Sharp = ชาร์ป), or the same sound in the other script (ฮาตาริ = Hatari)
_SAME_BRAND = ("brand", "alias", "sound")


def _brand_in_field(registry: Registry, lic: Licence, brand: str | None) -> bool:
    """The brand names one of the licence's trademarks: by key, alias or sound, or as whole words of a
    brand field like 'Eloop Official Store' (matching's rules, applied to this licence alone)."""
    base = registry.base_of.get(lic.licence_no, lic.base)
    found = find_brand(brand, "", base, _OneLicence(base, lic))  # type: ignore[arg-type]
    return found.known and found.source in _SAME_BRAND


def _finish(out: LicenceCheck, reasons: list[str]) -> LicenceCheck:
    out.reasons = reasons
    out.messages_th = [message(r, "th") for r in reasons]
    out.messages_en = [message(r, "en") for r in reasons]
    return out


__all__ = ["CheckQuery", "LicenceCheck", "LicenceInfo", "NothingToCheck", "StandardInfo",
           "check_licence", "message"]
