import pytest

from matching.claims import read_claims

VAGUE = ("มีมอก", "ได้มาตรฐาน")


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
])
def test_reads_claim(title, kind, value):
    claims = read_claims({"title": title}, VAGUE)
    assert [(c.kind, c.value) for c in claims][:1] == [(kind, value)]


@pytest.mark.parametrize("title", ["โทร 081-2345678", "ราคา 1500-2560 บาท", "รุ่น 2020 ขนาด 30x40", "ลูกชิ้นปลา 500g"])
def test_no_claim(title):
    assert [c for c in read_claims({"title": title}, VAGUE) if c.kind != "vague"] == []


def test_claim_spans_point_at_text():
    c = read_claims({"title": "ปลั๊ก มอก. 166-2549 ดี"}, ())[0]
    assert "ปลั๊ก มอก. 166-2549 ดี"[c.span[0]:c.span[1]] == "มอก. 166-2549"
