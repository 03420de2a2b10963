"""The verdict of DOMAIN.md §3, case by case, against a small registry written out here."""

from datetime import date

import pytest

from listings.model import Listing
from matching.claims import Claim
from matching.engine import check
from matching.reasons import SENTENCES, code, sentence
from registry.index import Registry
from registry.licences import Licence


def lic(no, tis, tm, models=(), status="active", issued=date(2022, 1, 1)):
    return Licence(licence_no=no, tis_no=tis, licence_type=no[0], trademarks=tuple(tm), models=tuple(models),
                   status=status, issued=issued, licensee="บริษัท ตัวอย่าง จำกัด")


@pytest.fixture(scope="module")
def reg(catalogue):
    return Registry([
        lic("ท1001-1/60", "2879-2560", ["Voltami", "โวลต้ามิ"], ["PB-2001", "PB-2002"]),
        lic("ท1002-1/61", "2879-2560", ["Hatari"], ["HT-100"]),                     # Latin only
        lic("น1003-2/61", "2879-2560", ["Zenko"], ["ZK-1"], status="revoked"),
        lic("ท1004-1/60", "934-2558", ["Hatari", "ฮาตาริ"], ["HT-S16M7 (16 นิ้ว)"]),
        lic("ท1005-1/60", "2780-2562", ["Lumi"], ["LB-9"]),
        lic("ท1006-1/60", "1955-2551", ["Lumi"], ["LB-9"]),
        lic("ท1007-1/60", "2780-2562", ["Brighto"], ["BR-1"]),                     # not under 1955
        lic("ท1008-1/60", "2432-2555", ["Sharp"], ["SP-4"]),
        lic("ท1009-1/60", "2879-2560", ["Moov"], ["PB02C", "PB02L"]),
        lic("ท1010-1/60", "2879-2560", ["Moov"], ["PB05"], status="suspended"),
        lic("น1011-1/60", "685 เล่ม 1-2562", ["Kidz"], ["KZ-7"]),
    ], catalogue, "test")


def verdict(reg, title, brand=None, **kw):
    return check(Listing(marketplace="t", item_id="1", title=title, brand=brand, **kw), reg)


@pytest.mark.parametrize("title, brand, want, tis, licence, reason", [
    # licensed: brand (and model when named) on an active licence under the standard
    ("พาวเวอร์แบงค์ Voltami PB-2001 10000mAh", None, "licensed", "2879-2560", "ท1001-1/60", "licence_match:ท1001-1/60"),
    ("พาวเวอร์แบงค์ 10000mAh รุ่น pb 2002", "VOLTAMI", "licensed", "2879-2560", "ท1001-1/60", "model_licensed:pb 2002"),
    ("แบตสำรอง โวลต้ามิ 20000mAh", None, "licensed", "2879-2560", "ท1001-1/60", "brand_licensed:โวลต้ามิ"),
    ("แบตสำรอง ฮาตาริ HT-100", None, "licensed", "2879-2560", "ท1002-1/61", "brand_read_as:ฮาตาริ:Hatari"),
    ("พัดลมตั้งพื้น 16 นิ้ว HT-S16M7", "Hatari", "licensed", "934-2558", "ท1004-1/60", "model_licensed:HT-S16M7"),
    ("หลอดไฟ LED Lumi 9W", None, "licensed", "2780-2562", "ท1005-1/60", "also_standard:1955-2551"),
    ("ปลั๊กพ่วง ชาร์ป 4 ช่อง", None, "licensed", "2432-2555", "ท1008-1/60", "brand_read_as:ชาร์ป:Sharp"),
    ("Moov PB02L 5000mAh Mini Powerbank", None, "licensed", "2879-2560", "ท1009-1/60", "model_licensed:PB02L"),
    ("Power bank Voltami ใบอนุญาต ท1001-1/60", None, "licensed", "2879-2560", "ท1001-1/60", "claims_licence:ท1001-1/60"),
    # unlicensed: controlled, no active licence matches, no specific claim
    ("พาวเวอร์แบงค์ Zenmo 10000mAh", None, "unlicensed", "2879-2560", None, "no_licensed_brand:2879-2560"),
    ("พาวเวอร์แบงค์ 10000mAh", "Zenmo", "unlicensed", "2879-2560", None, "no_active_licence_for_brand:Zenmo:2879-2560"),
    ("พาวเวอร์แบงค์ Voltami PB-2009", None, "unlicensed", "2879-2560", None, "model_not_licensed:PB-2009"),
    ("พาวเวอร์แบงค์ Zenko ZK-1", None, "unlicensed", "2879-2560", "น1003-2/61", "model_licence_inactive:ZK-1:น1003-2/61:revoked"),
    ("พาวเวอร์แบงค์ มีมอก. ปลอดภัย", None, "unlicensed", "2879-2560", None, "vague_claim"),
    ("พาวเวอร์แบงค์ ไม่มีมอก ราคาถูก", None, "unlicensed", "2879-2560", None, "states_no_tis"),
    ("หลอดไฟ LED Brighto BR-1", None, "unlicensed", "2780-2562", "ท1007-1/60", "standard_not_covered:1955-2551"),
    ("ปลั๊กพ่วง Hatari 3 ช่อง", None, "unlicensed", "2432-2555", None, "no_licensed_brand:2432-2555"),
    ("ปลั๊กพ่วง 3 ช่อง", "Hatari", "unlicensed", "2432-2555", None, "brand_licensed_elsewhere:Hatari:2879-2560"),
    ("พาวเวอร์แบงค์ PB-2001", "Voltamu", "unlicensed", "2879-2560", None, "brand_similar:Voltamu:Voltami"),  # a typo licenses nothing
    # mislabeled: a specific claim the registry does not back
    ("พาวเวอร์แบงค์ Zenmo มอก. 2879-2560", None, "mislabeled", "2879-2560", None, "claims_tis:2879-2560"),
    ("พาวเวอร์แบงค์ Voltami PB-2001 มอก. 2432-2555", None, "mislabeled", "2879-2560", "ท1001-1/60", "tis_not_for_product:2432-2555:2879-2560"),
    ("พาวเวอร์แบงค์ Zenmo มอก. 9999-2560", None, "mislabeled", "2879-2560", None, "tis_unknown:9999-2560"),
    ("พาวเวอร์แบงค์ Zenmo ใบอนุญาต ท9999-9/99", None, "mislabeled", "2879-2560", None, "licence_not_found:ท9999-9/99"),
    ("พาวเวอร์แบงค์ 10000mAh ใบอนุญาต ท1001-1/60", "Zenmo", "mislabeled", "2879-2560", "ท1001-1/60", "licence_other_brand:ท1001-1/60:Voltami / โวลต้ามิ"),
    ("พาวเวอร์แบงค์ Hatari ใบอนุญาต ท1004-1/60", None, "mislabeled", "2879-2560", "ท1004-1/60", "licence_other_standard:ท1004-1/60:934-2558"),
    ("พาวเวอร์แบงค์ Zenko ใบอนุญาต น1003-2/61", None, "mislabeled", "2879-2560", "น1003-2/61", "licence_inactive:น1003-2/61:revoked"),
    ("Moov PB05 Powerbank มอก.2879-2560", None, "mislabeled", "2879-2560", "ท1010-1/60", "model_licence_inactive:PB05:ท1010-1/60:suspended"),
    # needs_review: the evidence does not decide
    ("เตาปิ้งย่าง Zenmo รุ่นใหม่", None, "needs_review", "1641-2552", None, "form_unclear:1641-2552"),
    ("พาวเวอร์แบงค์ 10000mAh ใบอนุญาต ท1001-1/60", None, "needs_review", "2879-2560", "ท1001-1/60", "licence_brand_not_named"),
    # not controlled
    ("เคสพาวเวอร์แบงค์ Voltami", None, "not_controlled", None, None, "accessory:เคส"),
    ("เก้าอี้สนามพับได้", None, "not_controlled", None, None, "no_controlled_product"),
    ("Hatari ของแท้ มอก. 2879-2560", None, "licensed", "2879-2560", "ท1002-1/61", "product_from_claim:2879-2560"),
])
def test_verdict(reg, title, brand, want, tis, licence, reason):
    v = verdict(reg, title, brand)
    assert (v.verdict, v.tis_no, v.licence_no) == (want, tis, licence), v.reasons
    assert reason in v.reasons, v.reasons


def test_every_reason_has_sentences_in_both_languages(reg):
    titles = ["พาวเวอร์แบงค์ Zenmo ใบอนุญาต ท9999-9/99", "หลอดไฟ LED Brighto BR-1", "เตาปิ้งย่าง", "ปลั๊กพ่วง 3 ช่อง",
              "Moov PB05 Powerbank มอก.2879-2560", "แบตสำรอง ฮาตาริ HT-100", "พาวเวอร์แบงค์ ไม่มีมอก"]
    for t in titles:
        for r in verdict(reg, t, "Hatari" if "ปลั๊ก" in t else None).reasons:
            name = r.split(":")[0]
            assert name in SENTENCES, r
            th, en = sentence(r, "th"), sentence(r, "en")
            assert th != r and en != r and "{" not in th + en


def test_risk_orders_the_queue(reg):
    fake = verdict(reg, "พาวเวอร์แบงค์ Zenmo ใบอนุญาต ท9999-9/99").risk
    claim = verdict(reg, "พาวเวอร์แบงค์ Zenmo มอก. 2879-2560").risk
    plain = verdict(reg, "พาวเวอร์แบงค์ Zenmo").risk
    review = verdict(reg, "เตาปิ้งย่าง").risk
    licensed = verdict(reg, "พาวเวอร์แบงค์ Voltami PB-2001").risk
    assert fake > claim > plain > review > licensed
    # exposure: a best seller shipped from abroad comes first among equals
    popular = verdict(reg, "พาวเวอร์แบงค์ Zenmo", sold=5000, location="ต่างประเทศ").risk
    assert plain < popular <= 100


def test_reason_codes_escape_colons():
    assert code("category_not_controlled", "Food: Snacks") == "category_not_controlled:Food： Snacks"
    assert sentence(code("no_active_licence_for_brand", "A:B", "166-2549")).startswith("brand A：B")


def test_image_claims_count_like_text_claims(reg):
    img = [Claim("licence", "ท9999-9/99", "image:2")]
    v = check(Listing(marketplace="t", item_id="1", title="พาวเวอร์แบงค์ Zenmo"), reg, image_claims=img)
    assert v.verdict == "mislabeled" and "licence_not_found:ท9999-9/99" in v.reasons
    assert any(c["where"] == "image:2" for c in v.claims)


def test_url_slug_claims_only_when_the_text_claims_nothing(reg):
    url = "https://www.lazada.co.th/products/powerbank-zenmo-2879-2560-i4200690269.html"
    v = check(Listing(marketplace="lazada", item_id="1", title="พาวเวอร์แบงค์ Zenmo", url=url), reg)
    assert v.verdict == "mislabeled" and "claims_tis:2879-2560" in v.reasons
    url = "https://www.lazada.co.th/products/tis-11-3-2553-i1.html"  # "11 เล่ม 3-2553" without its Thai
    v = check(Listing(marketplace="lazada", item_id="1", title="พาวเวอร์แบงค์ Zenmo", url=url), reg)
    assert v.verdict == "unlicensed"


@pytest.fixture(scope="module")
def dryers(catalogue):
    """Hair dryers: the current standard 60335 เล่ม 2(23)-2564 replaced 1985-2549 (another base number,
    linked as an older edition in config/standards.toml); one licence is still filed under the old one."""
    return Registry([
        lic("ท2001-1/64", "60335 เล่ม 2(23)-2564", ["Dyzo"], ["DZ-1"]),
        lic("น2002-1/52", "1985-2549", ["Oldco"], ["OC-7"]),
        lic("ท2003-1/60", "2879-2560", ["Dyzo"], ["DZ-PB"]),
    ], catalogue, "test")


@pytest.mark.parametrize("title, want, licence, has, has_not", [
    # a claim of the older edition is a claim of the product's standard, in every spelling
    ("ไดร์เป่าผม Dyzo DZ-1 มอก. 1985-2549", "licensed", "ท2001-1/64", "tis_older_edition:1985-2549:60335 เล่ม 2(23)-2564", "tis_not_for_product"),
    ("ไดร์เป่าผม Dyzo DZ-1 ม.อ.ก. ๑๙๘๕-๒๕๔๙", "licensed", "ท2001-1/64", "claims_tis:1985-2549", "tis_not_for_product"),
    ("Hair dryer Dyzo TIS 1985-2006", "licensed", "ท2001-1/64", "licence_match:ท2001-1/64", "tis_not_for_product"),
    ("ไดร์เป่าผม Dyzo มอก.1985", "licensed", "ท2001-1/64", "licence_match:ท2001-1/64", "tis_not_for_product"),
    ("ไดร์เป่าผม Dyzo มอก. 60335 เล่ม 2(23)-2564", "licensed", "ท2001-1/64", "licence_match:ท2001-1/64", "tis_older_edition"),
    # an unlicensed brand claiming the older edition is mislabeled for the claim, not for a wrong number
    ("ไดร์เป่าผม Zenmo มอก. 1985-2549", "mislabeled", None, "tis_older_edition:1985-2549:60335 เล่ม 2(23)-2564", "tis_not_for_product"),
    # a licence issued under the older edition backs the product under the current one
    ("ไดร์เป่าผม Oldco OC-7 ใบอนุญาต น2002-1/52", "licensed", "น2002-1/52", "model_licensed:OC-7", "licence_other_standard"),
    ("ไดร์เป่าผม Oldco OC-7 มอก. 1985-2549", "licensed", "น2002-1/52", "licence_match:น2002-1/52", "tis_not_for_product"),
    # another standard's number is still wrong, old edition or not
    ("ไดร์เป่าผม Dyzo DZ-1 มอก. 2879-2560", "mislabeled", "ท2001-1/64", "tis_not_for_product:2879-2560:60335 เล่ม 2(23)-2564", ""),
    ("พาวเวอร์แบงค์ Dyzo DZ-PB มอก. 1985-2549", "mislabeled", "ท2003-1/60", "tis_not_for_product:1985-2549:2879-2560", "tis_older_edition"),
    ("พาวเวอร์แบงค์ Dyzo ใบอนุญาต น2002-1/52", "mislabeled", "น2002-1/52", "licence_other_standard:น2002-1/52:1985-2549", ""),
])
def test_older_edition_with_another_number(dryers, title, want, licence, has, has_not):
    v = verdict(dryers, title)
    assert (v.verdict, v.licence_no) == (want, licence), v.reasons
    assert has in v.reasons, v.reasons
    assert not has_not or not any(r.startswith(has_not) for r in v.reasons), v.reasons
    assert all(sentence(r, "en") != r and sentence(r, "th") != r for r in v.reasons), v.reasons
