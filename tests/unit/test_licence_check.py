"""The licence check for platforms (pure): is a claim backed, and why not. A table of claims against a
small registry whose licences and histories are written out here."""

import json
from datetime import date

import pytest

from registry.check import SENTENCES, NothingToCheck, check_licence, message
from registry.index import Registry
from registry.licences import Licence


def lic(no, tis, tms, models=(), status="active", issued=date(2020, 1, 1), status_date=None):
    return Licence(no, tis, licence_type=no[:2] if no.startswith("นค") else no[0], licensee="บริษัท ตัวอย่าง จำกัด",
                   trademarks=tuple(tms), models=tuple(models), status=status, issued=issued, status_date=status_date)


@pytest.fixture(scope="module")
def reg(catalogue):
    licences = [
        lic("ท5137-2/10", "2879-2560", ["Eloop", "อีลูป"], ["E-29", "E-30"]),
        lic("น200-1/1", "2879-2560", ["Eloop"], ["E-41"], issued=date(2023, 5, 1)),
        lic("น300-1/1", "2879-2560", ["Volto"], ["V-1"], status="revoked", status_date=date(2024, 6, 1)),
        lic("น400-1/1", "2879-2560", ["Nomod"], []),
        lic("ท500-1/1", "685-2540", ["Kiddo"], ["K-1"]),  # issued under the toys standard's older edition
        lic("ท600-1/1", "166-2549", ["Haco"], ["H-1"]),
        lic("น700-1/1", "2879-2560", ["Sharpx", "ชาร์ปเอ็กซ์"], ["S-1"], status="suspended", status_date=date(2024, 3, 1)),
        lic("น800-1/1", "2879-2560", ["Newbrand"], ["N-1"], issued=date(2025, 1, 1)),
        lic("น900-1/1", "2879-2560", ["Lumo"], ["LM-7 (10000mAh, 2 พอร์ต)"]),  # a code inside a model line
    ]
    status_history = {
        "น700-1/1": [("2020-01-01", "active"), ("2024-03-01", "suspended")],
        "น300-1/1": [("2020-01-01", "active"), ("2024-06-01", "revoked")],
    }
    # ท5137-2/10 was the brand Voltix's until 2024-07-01, when it passed to Eloop and gained model E-30
    field_history = {"ท5137-2/10": [("2024-07-01", "trademarks", json.dumps(["Voltix"])),
                                    ("2024-07-01", "models", json.dumps(["E-29"]))]}
    return Registry(licences, catalogue, version="r9", status_history=status_history, field_history=field_history)


CASES = [
    # (claim, backed, reasons, licence found, brand covered, model covered)
    (dict(licence_no="ท5137-2/10", brand="Eloop", model="E-29"), True, ["licence_backs:ท5137-2/10"], "ท5137-2/10", True, True),
    (dict(licence_no="ท ๕๑๓๗-๒/๑๐", brand="อีลูป", model="e 30"), True, ["licence_backs:ท5137-2/10"], "ท5137-2/10", True, True),
    (dict(licence_no="ท5137-2/10", brand="Eloop Official Store"), True, ["licence_backs:ท5137-2/10"], "ท5137-2/10", True, None),
    (dict(licence_no="ท5137-2/10", tis_no="มอก. 2879-2560", brand="ELOOP"), True, ["licence_backs:ท5137-2/10"], "ท5137-2/10", True, None),
    (dict(licence_no="ท600-1/1", brand="ฮาโก้", model="H-1"), True, ["licence_backs:ท600-1/1"], "ท600-1/1", True, True),
    (dict(licence_no="น900-1/1", brand="Lumo", model="LM-7"), True, ["licence_backs:น900-1/1"], "น900-1/1", True, True),
    (dict(licence_no="ท5137-2/10", brand="Eloop", model="E-31"), False, ["model_not_on_licence:E-31:ท5137-2/10"], "ท5137-2/10", True, False),
    (dict(licence_no="ท5137-2/10", brand="Acme"), False, ["licence_other_brand:ท5137-2/10:Eloop / อีลูป"], "ท5137-2/10", False, None),
    (dict(licence_no="ท5137-2/10"), False, ["no_brand"], "ท5137-2/10", None, None),
    (dict(licence_no="ท5137-2/10", tis_no="166-2549", brand="Eloop"), False,
     ["licence_other_standard:ท5137-2/10:2879-2560"], "ท5137-2/10", True, None),
    (dict(licence_no="น300-1/1", brand="Volto", model="V-1"), False, ["licence_inactive:น300-1/1:revoked"], "น300-1/1", True, True),
    (dict(licence_no="ท9-9/9", brand="Eloop"), False, ["licence_not_found:ท9-9/9"], None, None, None),
    (dict(licence_no="12345", brand="Eloop"), False, ["licence_invalid:12345"], None, None, None),
    (dict(licence_no="น400-1/1", brand="Nomod", model="X-1"), True,
     ["licence_backs:น400-1/1", "licence_lists_no_models:น400-1/1"], "น400-1/1", True, None),
    # an older edition is the same standard; a licence under an older edition backs the current one
    (dict(tis_no="685-2540", licence_no="ท500-1/1", brand="Kiddo"), True,
     ["licence_backs:ท500-1/1", "tis_older_edition:685-2540:685 เล่ม 1-2562"], "ท500-1/1", True, None),
    (dict(tis_no="685 เล่ม 1-2562", brand="kiddo", model="K1"), True, ["licence_backs:ท500-1/1"], "ท500-1/1", True, True),
    # no licence named: the brand's licences under the standard
    (dict(tis_no="2879-2560", brand="Eloop", model="E-41"), True, ["licence_backs:น200-1/1"], "น200-1/1", True, True),
    (dict(tis_no="2879-2560", brand="Eloop"), True, ["licence_backs:น200-1/1"], "น200-1/1", True, None),  # newest issued
    (dict(tis_no="2879-2560", brand="Eloop", model="E-99"), False, ["model_not_licensed:E-99"], None, True, False),
    (dict(tis_no="2879-2560", brand="Volto"), False, ["brand_licence_inactive:Volto:revoked"], "น300-1/1", True, None),
    (dict(tis_no="2879-2560", brand="Acme"), False, ["no_active_licence_for_brand:Acme"], None, False, None),
    (dict(tis_no="2879-2560", brand="Elooop"), False,
     ["brand_similar:Elooop:Eloop", "no_active_licence_for_brand:Elooop"], None, False, None),
    (dict(tis_no="2879-2560", brand="Haco"), False,
     ["no_active_licence_for_brand:Haco", "brand_licensed_other_standard:Haco:166-2549"], None, False, None),
    (dict(tis_no="2879-2560"), False, ["no_brand"], None, None, None),
    (dict(tis_no="9999-2560", brand="Eloop"), False, ["tis_unknown:9999-2560"], None, None, None),
    (dict(tis_no="not a number", brand="Eloop"), False, ["tis_invalid:not a number"], None, None, None),
    (dict(tis_no="2879-2570", brand="Eloop", model="E-29"), True,
     ["licence_backs:ท5137-2/10", "tis_newer_edition:2879-2570:2879-2560"], "ท5137-2/10", True, True),
]


@pytest.mark.parametrize("claim, backed, reasons, licence, brand, model", CASES, ids=[str(c[0]) for c in CASES])
def test_claims(reg, claim, backed, reasons, licence, brand, model):
    r = check_licence(reg, **claim)
    assert (r.backed, r.reasons) == (backed, reasons)
    assert (r.licence.licence_no if r.licence else None) == licence
    assert (r.brand_covered, r.model_covered) == (brand, model)
    assert r.registry_version == "r9" and len(r.messages_th) == len(r.messages_en) == len(reasons)
    for code, th, en in zip(r.reasons, r.messages_th, r.messages_en, strict=True):
        assert th != code and en != code, f"no sentence for {code}"


def test_answer_carries_the_standard_and_licence_details(reg):
    r = check_licence(reg, licence_no="น300-1/1", brand="Volto")
    assert r.standard.tis_no == "2879-2560" and r.standard.name_en == "Portable power bank - safety requirements"
    li = r.licence
    assert (li.status, li.status_th, li.status_date, li.issued) == ("revoked", "เพิกถอน", date(2024, 6, 1), date(2020, 1, 1))
    assert (li.licence_type, li.licence_type_en, li.licence_type_th) == ("น", "import", "นำเข้า")
    r = check_licence(reg, tis_no="2879-2560", brand="Eloop", model="E-41")
    assert r.other_licences == ["ท5137-2/10"]


@pytest.mark.parametrize("claim, on, backed, reasons", [
    # suspended on 2024-03-01: backed the day before, not on the day
    (dict(licence_no="น700-1/1", brand="Sharpx", model="S-1"), date(2024, 2, 29), True, ["licence_backs:น700-1/1"]),
    (dict(licence_no="น700-1/1", brand="ชาร์ปเอ็กซ์", model="S-1"), date(2024, 3, 1), False, ["licence_inactive:น700-1/1:suspended"]),
    (dict(tis_no="2879-2560", brand="Volto"), date(2024, 5, 31), True, ["licence_backs:น300-1/1"]),
    (dict(licence_no="น800-1/1", brand="Newbrand"), date(2024, 12, 31), False, ["licence_not_issued:น800-1/1:2024-12-31"]),
    # the licence passed from Voltix to Eloop, and gained model E-30, on 2024-07-01
    (dict(licence_no="ท5137-2/10", brand="อีลูป"), date(2024, 6, 30), False, ["licence_other_brand:ท5137-2/10:Voltix"]),
    (dict(licence_no="ท5137-2/10", brand="Voltix", model="E-30"), date(2024, 6, 30), False,
     ["model_not_on_licence:E-30:ท5137-2/10"]),
    (dict(licence_no="ท5137-2/10", brand="Voltix", model="E-29"), date(2024, 6, 30), True, ["licence_backs:ท5137-2/10"]),
    (dict(licence_no="ท5137-2/10", brand="อีลูป", model="E-30"), date(2024, 7, 1), True, ["licence_backs:ท5137-2/10"]),
])
def test_on_a_day(reg, claim, on, backed, reasons):
    r = check_licence(reg, on=on, **claim)
    assert (r.backed, r.reasons, r.on) == (backed, reasons, on)


def test_nothing_to_check(reg):
    for claim in ({}, {"brand": "Eloop", "model": "E-29"}, {"tis_no": "  ", "licence_no": ""}):
        with pytest.raises(NothingToCheck):
            check_licence(reg, **claim)


def test_every_reason_the_check_gives_has_both_sentences():
    for code in SENTENCES:
        assert message(code + ":a:b", "th") != message(code + ":a:b", "en")
    assert message("licence_inactive:ท1-1/1:revoked") == "licence ท1-1/1 is revoked"


def test_hostile_text_is_returned_as_data(reg):
    r = check_licence(reg, tis_no="2879-2560", brand="<script>alert(1)</script>")
    assert not r.backed and r.reasons == ["no_active_licence_for_brand:<script>alert(1)</script>"]


def test_the_documented_example_is_a_valid_answer():
    from registry.check import _EXAMPLE, LicenceCheck

    ex = LicenceCheck.model_validate(_EXAMPLE)
    assert ex.reasons == ["licence_inactive:น300-1/1:revoked"]
    assert ex.messages_en == [message(r, "en") for r in ex.reasons] and ex.messages_th == [message(r, "th") for r in ex.reasons]
