import pytest

from matching.claims import read_claims

VAGUE = ("มีมอก", "ได้มาตรฐาน")
NO_TIS = ("ไม่มีมอก",)


@pytest.mark.parametrize("title, kind, value", [
    ("ปลั๊กพ่วง มอก. 2432-2555", "tis", "2432-2555"),
    ("ปลั๊กพ่วง มอก.2432-2555", "tis", "2432-2555"),
    ("ปลั๊กพ่วง มอก 2432", "tis", "2432"),
    ("ปลั๊กพ่วง ม.อ.ก. 2432-2555", "tis", "2432-2555"),
    ("Power strip TIS 2432-2012", "tis", "2432-2555"),
    ("แบตสำรอง มอก. ๒๘๗๙-๒๕๖๐", "tis", "2879-2560"),
    ("ของเล่น มอก. 685 เล่ม 1-2562", "tis", "685 เล่ม 1-2562"),
    ("ไดร์ มอก.60335 เล่ม 2(23)-2564", "tis", "60335 เล่ม 2(23)-2564"),
    ("พัดลม [ มอก 934-2558 ]", "tis", "934-2558"),
    ("16-3-floor-stand-fan-5-14-934-2558-4", "tis", "934-2558"),
    ("มอก.\u200b2879-2560", "tis", "2879-2560"),
    ("ใบอนุญาตเลขที่ ท5137-2/10", "licence", "ท5137-2/10"),
    ("licence no. น 12-3/456", "licence", "น12-3/456"),
    ("พาวเวอร์แบงค์ มีมอก.", "vague", "มีมอก"),
    ("ปลั๊กพ่วง มอก-2432-2555", "tis", "2432-2555"),
    ("เลขที่ มอก. 2432-2555", "tis", "2432-2555"),
    ("มอก.เลขที่ 166-2549", "tis", "166-2549"),
    ("T.I.S. 2432", "tis", "2432"),
    ("TIS: 2879-2017", "tis", "2879-2560"),                 # CE year
    ("มอก 166-49", "tis", "166-2549"),                     # two-digit year
    ("ของเล่น มอก 685 ส่วนที่ 1-2562", "tis", "685 เล่ม 1-2562"),
    ("toy TIS 685 part 1-2019", "tis", "685 เล่ม 1-2562"),
    ("มอก.６８５－２５６２", "tis", "685-2562"),            # full-width digits and dash
    ("ม​อ​ก ๒๔๓๒", "tis", "2432"),               # zero-width characters, Thai digits
    ("ใบอนุญาต ท 5137-2/10", "licence", "ท5137-2/10"),
    ("ท.5137-2/10", "licence", "ท5137-2/10"),
    ("เลขที่ใบอนุญาต ท๕๑๓๗-๒/๑๐", "licence", "ท5137-2/10"),
    ("นค12-3/456", "licence", "นค12-3/456"),
    ("สินค้าไม่มีมอก ราคาถูก", "no_tis", "ไม่มีมอก"),
])
def test_reads_claim(title, kind, value):
    claims = read_claims({"title": title}, VAGUE, NO_TIS)
    assert [(c.kind, c.value) for c in claims][:1] == [(kind, value)]


@pytest.mark.parametrize("title", [
    "โทร 081-2345678", "ราคา 1500-2560 บาท", "รุ่น 2020 ขนาด 30x40", "ลูกชิ้นปลา 500g",
    "ปลั๊กไฟ มอก 3 ตา 5 เมตร",          # three pins, not TIS 3
    "ปลั๊กพ่วง มอก. 10A",                 # ten ampere
    "ปฏิทิน ปี 2566-2567",               # years
    "ราคาส่ง 1000-2560 บาท",
])
def test_no_claim(title):
    assert [c for c in read_claims({"title": title}, VAGUE) if c.kind != "vague"] == []


def test_claim_spans_point_at_text():
    c = read_claims({"title": "ปลั๊ก มอก. 166-2549 ดี"}, ())[0]
    assert "ปลั๊ก มอก. 166-2549 ดี"[c.span[0]:c.span[1]] == "มอก. 166-2549"


def test_several_claims_each_once_in_order():
    claims = read_claims({"title": "หลอดไฟ มอก. 2780-2562 และ มอก.1955-2551", "description": "มอก. 2780-2562 ใบอนุญาต ท1-2/3"}, VAGUE)
    assert [(c.kind, c.value, c.where) for c in claims] == [
        ("tis", "2780-2562", "title"), ("tis", "1955-2551", "title"), ("licence", "ท1-2/3", "description")]


def test_a_denial_is_not_a_vague_claim():
    claims = read_claims({"title": "ปลั๊กพ่วง ไม่มีมอก. ราคาถูก"}, ("มีมอก",), NO_TIS)
    assert [c.kind for c in claims] == ["no_tis"]
    # a specific number in the same field makes a vague word no claim of its own
    claims = read_claims({"title": "ได้มาตรฐาน มอก. 2432-2555"}, VAGUE)
    assert [c.kind for c in claims] == ["tis"]
