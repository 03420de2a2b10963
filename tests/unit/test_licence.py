"""Finding the brand and the model behind a listing."""

from datetime import date

import pytest

from matching.licence import find_brand, find_licence, licence_model_keys, model_codes
from registry.index import Registry
from registry.licences import Licence


@pytest.mark.parametrize("text, codes", [
    ("พาวเวอร์แบงค์ Voltami PB-2001 10000mAh", ["PB-2001"]),
    ("รุ่น pb 2001 ชาร์จเร็ว PD 20W", ["pb 2001"]),
    ("พัดลม HT-S16M7 16 นิ้ว", ["HT-S16M7"]),
    ("Anker 735 Charger A2667 65W", ["A2667"]),
    ("หลอดไฟ E27 9W 220V IP65 Type-C USB3", []),          # units and spec words are no models
    ("Orsen E61L 5000mAh", ["E61L"]),
])
def test_model_codes(text, codes):
    assert model_codes(text) == codes


def test_licence_model_lines_give_each_code():
    lic = Licence("ท1-1/1", "934-2558", models=("HT-S16M7 (16 นิ้ว)", "HT-S18M7; ตั้งพื้น"))
    assert {"hts16m7", "hts18m7"} <= licence_model_keys(lic)


@pytest.fixture(scope="module")
def reg(catalogue):
    def lic(no, tm, models=()):
        return Licence(no, "2879-2560", trademarks=tuple(tm), models=tuple(models), issued=date(2022, 1, 1))

    return Registry([lic("ท1-1/1", ["Pono", "โพโน"], ["PN-1"]), lic("ท2-1/1", ["Smart Home"], ["SM-1"]),
                     lic("ท3-1/1", ["Voltamix"], ["VX-1"])], catalogue)


@pytest.mark.parametrize("brand, title, key, source", [
    (None, "แบตสำรอง โพโนทอร์ 10000mAh", None, ""),                 # โพโน is not โพโนทอร์
    (None, "แบตสำรองโพโนรุ่นใหม่", "โพโน", "title"),                  # but sits between Thai words
    (None, "Power bank Pono 10000", "pono", "title"),
    (None, "Power bank Ponotor 10000", None, ""),
    (None, "Smart Home พาวเวอร์แบงค์", "smarthome", "title"),       # two words make the brand
    ("Pono Official Store", "แบตสำรอง", "pono", "brand"),
    ("Voltamxi", "แบตสำรอง", "voltamix", "fuzzy"),                  # a typo in the brand field
    (None, "แบตสำรอง Voltamxi", None, ""),                          # in a title a near miss may be another brand
    ("No Brand", "แบตสำรอง", None, ""),
    ("Zenmo", "แบตสำรอง", "zenmo", "brand"),                        # unknown: kept, known=False
])
def test_find_brand(reg, brand, title, key, source):
    b = find_brand(brand, title, "2879", reg)
    assert (b.key, b.source) == (key, source)
    assert b.known == (key is not None and key != "zenmo")


def test_model_named_with_another_number_is_another_model(reg):
    f = find_licence("Pono", "แบตสำรอง PN-2", "2879", reg)
    assert f.model_named == "PN-2" and f.match is None
    f = find_licence("Pono", "แบตสำรอง pn 1", "2879", reg)
    assert f.match is not None and f.match.licence_no == "ท1-1/1"


def test_endings_answer_as_str_endswith():
    """_title_brands asks whether a Thai run ends, at each position, with a title word through
    _Endings (the words grouped by their last two letters): the same answer as str.endswith with the
    whole tuple, with the real title words and with lists holding one-letter and empty words."""
    import random

    from matching.licence import _endings
    from matching.product import product_index
    from registry.catalogue import load_catalogue
    from settings import load_settings

    real = product_index(load_catalogue(load_settings(environ={}).catalogue_path)).title_words
    rnd = random.Random(3)
    letters = "".join(sorted({ch for w in real for ch in w}))[:30] + "ab"
    for words in (real, ("ก", "ขค", "abc"), ("", "พัดลม"), ()):
        ends = _endings(words)
        assert _endings(words) is ends
        texts = ["".join(rnd.choice(letters) for _ in range(rnd.randint(0, 30))) for _ in range(400)]
        texts += [rnd.choice(real) + rnd.choice(real) for _ in range(200)]
        hits = 0
        for s in texts:
            for i in range(len(s) + 1):
                assert ends.at(s, i) == s[:i].endswith(words), (words[:3], s, i)
                hits += ends.at(s, i)
        assert hits > 0 or not words
