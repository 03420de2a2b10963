"""Claims from image findings: QR payloads and OCR words, and how they join the verdict."""

import pytest

from listings.model import Listing
from matching.engine import check
from matching.image_claims import (
    ImageClaim,
    ImageFindings,
    OcrWord,
    QrCode,
    claim_reasons,
    claims_from_findings,
    claims_from_words,
    licence_file_name,
    licence_qr_url,
    read_qr,
)
from matching.reasons import sentence

PDF = "https://appdb.tisi.go.th/tis_dev/p4_license_report/file/"


@pytest.mark.parametrize("payload, kind, licence, tis, host", [
    # TISI's licence PDF, the file name written by its e-licence system, percent-encoded or not
    (PDF + "%E0%B8%977036_30_2915.pdf", "tisi_licence", "ท7036-30/2915", None, "appdb.tisi.go.th"),
    (PDF + "ท5137_2_10.pdf", "tisi_licence", "ท5137-2/10", None, "appdb.tisi.go.th"),
    (PDF + "นค12_3_456.pdf", "tisi_licence", "นค12-3/456", None, "appdb.tisi.go.th"),
    ("http://APPDB.TISI.GO.TH/tis_dev/p4_license_report/file/น88_1_9.pdf", "tisi_licence", "น88-1/9", None, "appdb.tisi.go.th"),
    # a licence as written, in a query parameter on any TISI sub-domain
    ("https://i.tisi.go.th/check?license_no=%E0%B8%975137-2%2F10", "tisi_licence", "ท5137-2/10", None, "i.tisi.go.th"),
    ("https://tisi.go.th/l/ส 44-1/7", "tisi_licence", "ส44-1/7", None, "tisi.go.th"),
    # a standard lookup with a year; TISI's internal page id (n=9179) is not a TIS number
    ("https://appdb.tisi.go.th/tis_dev/p4_license_report/p4license_report.php?data=tis&txt_tis=1040-2541",
     "tisi_standard", None, "1040-2541", "appdb.tisi.go.th"),
    ("https://a.tisi.go.th/t/?n=9179", "tisi", None, None, "a.tisi.go.th"),
    ("https://www.tisi.go.th/", "tisi", None, None, "www.tisi.go.th"),
    # look-alikes: the host is not TISI's, whatever the path says
    ("https://tisi-check.com/file/ท5137_2_10.pdf", "lookalike", "ท5137-2/10", None, "tisi-check.com"),
    ("https://appdb.tisi.go.th.verify-licence.io/file/ท1_2_3.pdf", "lookalike", "ท1-2/3", None, "appdb.tisi.go.th.verify-licence.io"),
    ("https://tisi.go.th@evil.example/file/ท1_2_3.pdf", "elsewhere", None, None, "evil.example"),
    ("https://faketisi.go.th/", "lookalike", None, None, "faketisi.go.th"),
    # elsewhere, and text
    ("https://line.me/R/ti/p/@shop123", "elsewhere", None, None, "line.me"),
    ("https://shopee.co.th/product/1/2?x=ท5137-2/10", "elsewhere", None, None, "shopee.co.th"),
    ("www.example.com/ท1_2_3", "elsewhere", None, None, "www.example.com"),
    ("มอก. 2432-2555 ใบอนุญาต ท1-2/3", "text", None, None, ""),
    ("", "text", None, None, ""),
    ("http://[::1", "text", None, None, ""),
])
def test_read_qr(payload, kind, licence, tis, host):
    r = read_qr(payload)
    assert (r.kind, r.licence_no, r.tis_no, r.host) == (kind, licence, tis, host)


@pytest.mark.parametrize("licence, name", [("ท7036-30/2915", "ท7036_30_2915"), ("นค 12-3/456", "นค12_3_456"),
                                           ("ท1(2)-3/4", "ท12__3_4")])
def test_licence_file_name_follows_tisi(licence, name):
    assert licence_file_name(licence) == name


def test_licence_qr_url_round_trips():
    for no in ("ท5137-2/10", "น88-1/9", "นค12-3/456", "ส1-22/333"):
        r = read_qr(licence_qr_url(no))
        assert (r.kind, r.licence_no) == ("tisi_licence", no)


def _line(text_boxes, line=(1, 1, 1), conf=90.0):
    return [OcrWord(t, b, conf, line) for t, b in text_boxes]


def test_ocr_words_of_thai_are_joined_and_boxed():
    # Tesseract cuts Thai into letters: ม อ ก . then the number after a real gap
    words = _line([("ม", (10, 10, 20, 30)), ("อ", (20, 10, 30, 30)), ("ก", (30, 10, 40, 30)), (".", (40, 10, 44, 30)),
                   ("2879-2560", (56, 10, 150, 30))])
    words += _line([("โทร", (10, 50, 40, 70)), ("081-2345678", (50, 50, 150, 70))], (1, 1, 2))
    cs = claims_from_words(2, words, image_size=(200, 100))
    assert [(c.kind, c.value, c.where, c.box, c.source) for c in cs] == [
        ("tis", "2879-2560", "image:2", (10, 10, 150, 30), "ocr")]
    assert cs[0].image == 2 and cs[0].image_size == (200, 100)


@pytest.mark.parametrize("words, value", [
    # what Tesseract 5 (tha+eng) read from a sandbox label printed plainly: มอก. as Latin look-alikes
    ([("Nan.", (158, 370, 232, 404)), ("60335", (244, 370, 340, 404)), ("เล่ม", (352, 370, 410, 404)),
      ("2(32)-2564", (422, 370, 591, 404))], "60335 เล่ม 2(32)-2564"),
    # ... and after pre-processing: มอก. in letters, and the part number's ")" lost
    ([("ม", (158, 370, 180, 404)), ("อ", (180, 370, 200, 404)), ("ก", (200, 370, 222, 404)), (".", (222, 370, 232, 404)),
      ("60335", (244, 370, 340, 404)), ("เล", (352, 370, 390, 404)), ("่", (380, 370, 390, 404)), ("ม", (390, 370, 410, 404)),
      ("2(32-2564", (422, 370, 591, 404))], "60335 เล่ม 2(32)-2564"),
    ([("Wan.", (0, 0, 40, 20)), ("2879-2560", (50, 0, 140, 20))], "2879-2560"),
    ([("มอก.", (0, 0, 40, 20)), ("60335", (50, 0, 100, 20)), ("แล่ม", (110, 0, 140, 20)), ("2(32)-2564", (150, 0, 240, 20))],
     "60335 เล่ม 2(32)-2564"),
])
def test_ocr_confusions_around_a_tis_mark_are_repaired(words, value):
    cs = [c for c in claims_from_words(1, _line(words)) if c.kind == "tis"]
    assert [c.value for c in cs] == [value]
    assert cs[0].box[0] == words[0][1][0]  # the claim's box starts at the mark


def test_ocr_claim_with_a_doubtful_word_is_dropped():
    words = _line([("มอก.", (0, 0, 40, 20)), ("2879-2560", (50, 0, 140, 20))])
    words = [words[0], OcrWord("2879-2560", (50, 0, 140, 20), 31.0, (1, 1, 1))]
    assert claims_from_words(1, words, min_conf=60) == []
    assert [c.value for c in claims_from_words(1, words, min_conf=30)] == ["2879-2560"]


def test_ocr_claim_is_not_read_across_blocks():
    # "มอก." in one block (a logo), "2560" alone in another: no TIS claim
    words = [OcrWord("มอก.", (0, 0, 40, 20), 90, (1, 1, 1)), OcrWord("2560", (300, 300, 340, 320), 90, (2, 1, 1))]
    assert [c for c in claims_from_words(1, words) if c.kind == "tis"] == []


def test_licence_read_from_ocr():
    words = _line([("ใบอนุญาตเลขที่", (0, 0, 120, 20)), ("ท5137-2/10", (130, 0, 220, 20))])
    cs = claims_from_words(3, words)
    assert [(c.kind, c.value, c.box) for c in cs] == [("licence", "ท5137-2/10", (130, 0, 220, 20))]


def test_findings_qr_first_and_each_value_once():
    f1 = ImageFindings(1, 100, 100, words=_line([("มอก.", (0, 0, 40, 20)), ("2432-2555", (50, 0, 140, 20))]))
    f2 = ImageFindings(2, 400, 300, qr=[QrCode(licence_qr_url("ท5137-2/10"), (5, 5, 80, 80)),
                                          QrCode("https://line.me/R/ti/p/@x", (100, 5, 180, 80))],
                       words=_line([("มอก.", (0, 0, 40, 20)), ("2432-2555", (50, 0, 140, 20))]))
    cs = claims_from_findings([f2, f1])
    assert [(c.kind, c.value, c.where, c.source) for c in cs] == [
        ("tis", "2432-2555", "image:1", "ocr"),
        ("licence", "ท5137-2/10", "image:2", "qr"),
        ("qr_elsewhere", "line.me", "image:2", "qr"),
    ]
    assert claim_reasons(cs) == ["claims_tis_image:2432-2555:1", "qr_licence:ท5137-2/10:2", "qr_elsewhere:line.me:2"]


def test_reason_sentences_say_which_image():
    assert sentence("claims_licence_image:ท1-2/3:3", "en") == "the listing claims licence ท1-2/3, read from image 3"
    assert "ภาพที่ 3" in sentence("claims_licence_image:ท1-2/3:3", "th")
    assert sentence("qr_lookalike:tisi-check.com:2", "en").startswith("a QR code in image 2 points to tisi-check.com")


# ---- the verdict with image claims -------------------------------------------------------------
def _listing(world, scenario):
    w = next(x for x in world.listings if x.scenario == scenario)
    return w, Listing.model_validate(w.listing)


def _qr(no, n=2):
    return claims_from_findings([ImageFindings(n, 400, 400, qr=[QrCode(licence_qr_url(no), (10, 10, 90, 90))])])


def test_check_without_image_claims_is_unchanged(world, world_registry):
    for w in world.listings[:80]:
        lst = Listing.model_validate(w.listing)
        a, b, c = check(lst, world_registry), check(lst, world_registry, image_claims=[]), check(lst, world_registry, None)
        assert a.record() == b.record() == c.record()


def test_fake_licence_only_in_a_qr_is_mislabeled(world, world_registry):
    _w, lst = _listing(world, "unlicensed_unknown_brand")
    assert check(lst, world_registry).verdict == "unlicensed"
    v = check(lst, world_registry, image_claims=_qr("ท99999-9/99"))
    assert v.verdict == "mislabeled"
    assert "licence_not_found:ท99999-9/99" in v.reasons and "qr_licence:ท99999-9/99:2" in v.reasons
    img = [c for c in v.claims if c["where"] == "image:2"]
    assert img and img[0]["box"] == [10, 10, 90, 90] and img[0]["source"] == "qr"


def test_valid_licence_qr_of_the_brand_keeps_licensed(world, world_registry):
    w = next(x for x in world.listings if x.scenario == "licensed" and x.expected["licence_no"])
    lst = Listing.model_validate(w.listing)
    v = check(lst, world_registry, image_claims=_qr(w.expected["licence_no"]))
    assert v.verdict == "licensed" and v.licence_no == w.expected["licence_no"]


def test_other_brands_licence_in_a_qr_is_mislabeled(world, world_registry):
    # a seller who names its brand and shows another brand's real licence in a picture
    w = next(x for x in world.listings if x.scenario == "unlicensed_unknown_brand" and x.listing["brand"])
    lst = Listing.model_validate(w.listing)
    other = next(x for x in world.licences if x.tis_no == w.expected["tis_no"] and x.active)
    v = check(lst, world_registry, image_claims=_qr(other.licence_no))
    assert v.verdict == "mislabeled"
    assert any(r.startswith("licence_other_brand:" + other.licence_no) for r in v.reasons)


def test_tis_number_printed_in_an_image_reveals_the_claim(world, world_registry):
    w, lst = _listing(world, "unlicensed_unknown_brand")
    words = _line([("มอก.", (0, 0, 40, 20)), (w.expected["tis_no"], (50, 0, 140, 20))])
    cs = claims_from_findings([ImageFindings(3, 200, 100, words=words)])
    v = check(lst, world_registry, image_claims=cs)
    assert v.verdict == "mislabeled"
    assert f"claims_tis_image:{w.expected['tis_no']}:3" in v.reasons


def test_a_qr_elsewhere_is_a_note_not_a_claim(world, world_registry):
    _w, lst = _listing(world, "unlicensed_unknown_brand")
    cs = claims_from_findings([ImageFindings(1, 10, 10, qr=[QrCode("https://line.me/R/ti/p/@x", (0, 0, 5, 5))])])
    v = check(lst, world_registry, image_claims=cs)
    assert v.verdict == "unlicensed" and "qr_elsewhere:line.me:1" in v.reasons


def test_image_claim_repeating_text_adds_no_reason(world, world_registry):
    w = next(x for x in world.listings if x.scenario == "mislabeled_fake_tis")
    lst = Listing.model_validate(w.listing)
    text = check(lst, world_registry)
    tis = next(r.split(":", 1)[1] for r in text.reasons if r.startswith("claims_tis:"))
    words = _line([("มอก.", (0, 0, 40, 20)), (tis, (50, 0, 140, 20))])
    v = check(lst, world_registry, image_claims=claims_from_findings([ImageFindings(1, 200, 100, words=words)]))
    assert v.reasons == text.reasons and v.verdict == text.verdict
    assert any(c["where"] == "image:1" for c in v.claims)


def test_image_claim_is_a_claim():
    c = ImageClaim("tis", "166-2549", "image:4", box=(1, 2, 3, 4), source="ocr")
    assert c.number == "166" and c.image == 4


# ---- what OCR may have misread ------------------------------------------------------------------
def _ocr(kind, value, n=2):
    return ImageClaim(kind, value, f"image:{n}", box=(1, 1, 9, 9), source="ocr")


def test_ocr_tis_that_is_no_standard_is_noted_not_claimed(world, world_registry):
    _w, lst = _listing(world, "unlicensed_unknown_brand")
    v = check(lst, world_registry, image_claims=[_ocr("tis", "12271-2558")])
    assert v.verdict == "unlicensed" and "tis_doubtful_image:12271-2558:2" in v.reasons
    # the same number in the title is the seller's own claim: mislabeled
    text = lst.model_copy(update={"title": lst.title + " มอก. 12271-2558"})
    assert check(text, world_registry).verdict == "mislabeled"


def test_ocr_licence_one_character_from_a_real_one_needs_review(world, world_registry):
    w, lst = _listing(world, "unlicensed_unknown_brand")
    real = next(x for x in world_registry.licences_for(world.catalogue.find(w.expected["tis_no"]).base))
    misread = real.licence_no[:-1] + ("7" if real.licence_no[-1] != "7" else "1")
    v = check(lst, world_registry, image_claims=[_ocr("licence", misread)])
    assert v.verdict == "needs_review" and f"licence_misread:{misread}:{real.licence_no}:2" in v.reasons
    assert "one character" in sentence(v.reasons[-1], "en")
    # from a QR code (error-corrected) the number is what the seller printed: mislabeled
    qr = ImageClaim("licence", misread, "image:2", box=(1, 1, 9, 9), source="qr")
    assert check(lst, world_registry, image_claims=[qr]).verdict == "mislabeled"
    # far from any real licence, OCR or not: mislabeled
    assert check(lst, world_registry, image_claims=[_ocr("licence", "ท99999-9/99")]).verdict == "mislabeled"
