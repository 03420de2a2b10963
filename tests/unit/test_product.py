"""Deciding the product from the title (and category): accessories, look-alikes, forms, gifts."""

import pytest

from matching.product import Text, decide_product

C, N, U = "controlled", "not_controlled", "unclear"


@pytest.mark.parametrize("title, status, tis", [
    # the product, written every way sellers write it
    ("พาวเวอร์แบงค์ 20000mAh", C, "2879-2560"),
    ("พาวเวอร์ แบงค์ 10000 mAh", C, "2879-2560"),            # spaces inside the word
    ("Power Bank 10000mAh", C, "2879-2560"),
    ("powerbank mini", C, "2879-2560"),
    ("เพาเวอร์แบงก์ ชาร์จเร็ว", C, "2879-2560"),
    ("เเบตสำรอง 10000", C, "2879-2560"),                       # เเ typed for แ
    ("หลอดไฟLED 9W", C, "2780-2562"),
    ("Vองเล่น ตัวต่อ", C, "685 เล่ม 1-2562"),                   # V for ข
    ("ลูกข่าง เบย์เบลด", C, "685 เล่ม 1-2562"),                 # a toy without the word ของเล่น
    ("บอลเด้ง สีสดใส", C, "685 เล่ม 1-2562"),
    ("ตู้คอนซูมเมอร์ 6 ช่อง", C, "1436 เล่ม 3-2564"),
    ("เบรกเกอร์กันดูด RCBO 32A", C, "909-2548"),
    ("เครื่องซักผ้า 10 กก.", C, "1463-2556"),
    # accessories and look-alikes
    ("เคสพาวเวอร์แบงค์ ซิลิโคน", N, None),
    ("ซองใส่ พาวเวอร์แบงค์", N, None),
    ("ผ้าคลุมพัดลม", N, None),
    ("หมวกแก๊ป", N, None),
    ("ปลั๊กอุดหู กันเสียง", N, None),
    ("ลูกบอลซักผ้า สำหรับเครื่องซักผ้า", N, None),
    ("ของเล่นแมว ไม้ตกแมว", N, None),
    ("capacitor 450v", N, None),                                # 'cap' is not a word of it
    ("สายชาร์จ usb-c", N, None),
    # an accessory after the product is part of the offer; a gift is not the item sold
    ("พาวเวอร์แบงค์ 20000mAh แถมเคส", C, "2879-2560"),
    ("【แถมฟรีซอง】 พาวเวอร์แบงค์ 10000", C, "2879-2560"),
    ("[ส่งฟรี] พาวเวอร์แบงค์", C, "2879-2560"),                 # free shipping is no gift
    ("แท็บเล็ต 10 นิ้ว รับฟรี! Adapter 25W", N, None),
    ("ไฟแช็ก ไม่ใช่ของเล่น", C, "879-2553"),                     # the toy is denied
    # forms: electric grills only
    ("เตาปิ้งย่างไฟฟ้า", C, "1641-2552"),
    ("เตาปิ้งย่าง ถ่าน", N, None),
    ("เตาปิ้งย่าง", U, "1641-2552"),
    ("เตาปิ้งย่างไฟฟ้า ไร้ควัน ไม่ใช้ถ่าน", C, "1641-2552"),    # a denied form does not rule it out
    # food that mentions an appliance
    ("ข้าวกล่อง เข้าไมโครเวฟได้", N, None),
    ("ไมโครเวฟ 20 ลิตร", C, "1773-2548"),
])
def test_title(catalogue, title, status, tis):
    p = decide_product(title, [], {}, catalogue)
    assert p.status == status, p.reasons
    assert (p.primary.tis_no if p.primary else None) == tis
    assert p.reasons


def test_standards_that_apply_together(catalogue):
    p = decide_product("หลอดไฟ LED 9W E27", [], {}, catalogue)
    assert [s.tis_no for s in p.standards] == ["2780-2562", "1955-2551"]
    assert "also_standard:1955-2551" in p.reasons


@pytest.mark.parametrize("title, category, status, tis, reason", [
    ("Voltami รุ่น PB-2001", ["อุปกรณ์อิเล็กทรอนิกส์", "พาวเวอร์แบงค์"], C, "2879-2560", "category:2879-2560:พาวเวอร์แบงค์"),
    ("ไก่ทอด หม้อทอด", ["อาหาร", "อาหารแช่แข็ง"], N, None, "category_not_controlled:อาหาร"),
    ("ตุ๊กตายางกัด", ["Pet Supplies", "Dog Toys"], N, None, "category_not_controlled:Pet Supplies"),
    # the title named a product and ruled it out: the category does not overrule it
    ("เคสพาวเวอร์แบงค์", ["พาวเวอร์แบงค์"], N, None, "accessory:เคส"),
])
def test_category(catalogue, title, category, status, tis, reason):
    p = decide_product(title, category, {}, catalogue)
    assert (p.status, p.primary.tis_no if p.primary else None) == (status, tis)
    assert reason in p.reasons


def test_form_stated_in_the_description(catalogue):
    p = decide_product("เตาปิ้งย่าง รุ่น GR-1", [], {}, catalogue, description="ใช้ไฟฟ้า 1500 วัตต์")
    assert p.status == C


def test_attributes(catalogue):
    p = decide_product("Voltami PB-2001", [], {"ประเภทสินค้า": "แบตสำรอง"}, catalogue)
    assert (p.status, p.source) == (C, "attributes")


def test_text_squeezes_spaces_and_keeps_word_edges():
    t = Text("Power  Bank cap")
    assert t.squeezed == "powerbankcap"
    assert t.contains("powerbank") and t.contains("cap")
    assert not Text("capacitor").contains("cap")
    assert Text("Vองเล่น").squeezed == "ของเล่น"
    assert Text("TV องเล่น").squeezed.startswith("tv")  # a Latin word is left alone


def _text_reference(raw: str) -> tuple[str, str, list[int]]:
    """Text's squeeze as first written (a character at a time): the faster one must give exactly it."""
    from matching.normalise import fold
    from matching.product import _THAI_SHAPES, _is_latin, _is_thai

    f = fold(raw) if raw else ""
    chars, pos, n = [], [], len(f)
    for i, ch in enumerate(f):
        if ch == " ":
            continue
        if ch in _THAI_SHAPES and (i + 1 < n and _is_thai(f[i + 1])) and (i == 0 or not _is_latin(f[i - 1])) \
                and (i + 2 >= n or not _is_latin(f[i + 2])):
            ch = _THAI_SHAPES[ch]
        chars.append(ch)
        pos.append(i)
    return f, "".join(chars), pos


def test_text_squeeze_is_the_character_by_character_one():
    """Text squeezes with str.replace and reads the Latin letters that stand for Thai ones only where
    there are any: the same squeezed text and positions as a character at a time, on real listing
    text and on mixes of Thai, v/u/w, Latin and spaces."""
    import random

    from tests.unit.test_normalise import _real_texts

    rnd = random.Random(9)
    texts = _real_texts() + ["Vองเล่น", "uล็อคตัวต่อ", "w", "vu w", "abc vองเล่น", "ของเล่นv", ""]
    texts += ["".join(rnd.choice("vuwVUW ab1ของเล่นบล็อค  ") for _ in range(rnd.randint(0, 25))) for _ in range(5000)]
    shapes = 0
    for raw in texts:
        f, sq, pos = _text_reference(raw)
        t = Text(raw)
        assert (t.folded, t.squeezed, t.pos) == (f, sq, pos), repr(raw)
        shapes += sq != f.replace(" ", "")
    assert shapes > 100  # the fuzz did read Latin letters as Thai
