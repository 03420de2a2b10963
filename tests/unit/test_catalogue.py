"""The compulsory-standards catalogue: complete against TISI's list, validated on load with errors that
name the file, line, standard and field, editions resolved, and the warnings officers see."""

from pathlib import Path

import pytest

from registry.catalogue import (
    CatalogueError,
    compare_with_tisi_list,
    load_catalogue,
    read_tisi_list,
)

SHARED = Path(__file__).resolve().parents[3] / "shared"  # ../shared next to the repository
TISI_LIST = SHARED / "data" / "registry" / "tisi_standards_compulsory_2025_11.csv"
GENERAL_SAMPLE = SHARED / "data" / "registry" / "tisi_standards_general_sample_2025_11.csv"


def test_catalogue_covers_every_compulsory_standard_of_tisi_list(catalogue):
    listed = read_tisi_list(TISI_LIST)
    assert len(listed) == 149 and sum(sum(x.licences) for x in listed) == 29183
    rep = compare_with_tisi_list(catalogue, listed)
    assert rep.listed == 149 and rep.missing == [] and rep.complete
    assert rep.other_edition == [] and rep.name_differs == [] and rep.counts_differ == []
    assert rep.not_listed == []
    for s in catalogue.standards:
        assert s.name_th and s.name_en, s.tis_no


def test_general_standards_are_not_in_the_catalogue(catalogue):
    general = read_tisi_list(GENERAL_SAMPLE)
    assert general and not any(x.compulsory for x in general)
    assert all(catalogue.find(x.tis) is None for x in general)


def test_at_least_40_consumer_standards_with_product_words(catalogue):
    consumer = [s for s in catalogue.standards if s.consumer and s.words]
    assert len(consumer) >= 40
    groups = {s.group for s in consumer}
    assert {"appliance", "lighting", "battery", "toys", "food-contact", "vehicle", "construction"} <= groups
    words = {w for s in consumer for w in s.words}
    assert {"พาวเวอร์แบงค์", "power bank", "ปลั๊กพ่วง", "หมวกกันน็อค"} & words


def test_the_shipped_catalogue_has_no_errors_and_no_unreachable_standard(catalogue):
    assert not [w for w in catalogue.warnings() if "no listing can reach it" in w or "not linked" in w]


@pytest.mark.parametrize("tis, want, edition", [
    ("2879-2560", "2879-2560", "current"), ("มอก. 2879-2560", "2879-2560", "current"),
    ("2879", "2879-2560", "any"), ("685-2540", "685 เล่ม 1-2562", "older"), ("369-2539", "369-2557", "older"),
    ("369-2545", "369-2557", "older"), ("369-2570", "369-2557", "newer"), ("1985-2549", "60335 เล่ม 2(23)-2564", "older"),
    ("15 เล่ม 1-2555", "15-2562", "older"), ("TIS 2432-2012", "2432-2555", "current"), ("๑๖๖-๒๕๔๙", "166-2549", "current"),
    ("9999-2560", None, "unknown"), ("213-2560", None, "unknown"),
])
def test_find_and_edition(catalogue, tis, want, edition):
    s = catalogue.find(tis)
    assert (s.tis_no if s else None) == want
    assert catalogue.edition(tis) == edition


def test_bases_for_number_includes_older_editions_of_another_number(catalogue):
    assert [s.tis_no for s in catalogue.bases_for_number("1985")] == ["60335 เล่ม 2(23)-2564"]
    assert "685 เล่ม 1-2562" in [s.tis_no for s in catalogue.bases_for_number("685")]


GOOD = '''
[catalogue]
version = "t"

[[standard]]
tis = "2879-2560"
name_th = "พาวเวอร์แบงค์"
name_en = "Power bank"
licences = [1, 2, 0]
consumer = true
words = ["พาวเวอร์แบงค์"]

[[standard]]
tis = "166-2549"
name_th = "เต้าเสียบ"
name_en = "Plugs"
{extra}
'''


def write_catalogue(tmp_path, extra):
    p = tmp_path / "standards.toml"
    p.write_text(GOOD.replace("{extra}", extra), "utf-8")
    return p


@pytest.mark.parametrize("extra, message", [
    ('editions = ["166-2560"]', "standard 166-2549: edition 166-2560 is newer than the current edition"),
    ('editions = ["166-2549"]', "edition 166-2549 is the current edition itself"),
    ('editions = ["166"]', "edition '166' needs its year"),
    ('editions = ["2879-2550"]', "edition 2879-2550 has the base number of 2879-2560"),
    ('editions = ["abc"]', "standard 166-2549 → editions: 'abc' is not a TIS number"),
    ('with = ["999-2550"]', "'with' names 999-2550, which is not in the catalogue"),
    ('licences = [1, -2, 0]', "standard 166-2549 → licences: licence counts cannot be negative"),
    ('licences = [1, 2]', "standard 166-2549 → licences"),
    ('words = ["  "]', "standard 166-2549 → words: word #1 is empty"),
    ('colour = "red"', "standard 166-2549 → colour: Extra inputs are not permitted"),
    ('consumer = "maybe"', "standard 166-2549 → consumer"),
    ('\n[[standard]]\ntis = "2879-2562"\nname_th = "x"', "standard 2879-2562 is listed twice"),
])
def test_load_errors_name_file_line_standard_and_field(tmp_path, extra, message):
    p = write_catalogue(tmp_path, extra)
    with pytest.raises(CatalogueError) as e:
        load_catalogue(p)
    assert message in str(e.value)
    assert str(e.value).startswith(str(p))
    if "listed twice" not in message and "has the base number" not in message and "not in the catalogue" not in message:
        assert str(e.value).startswith(f"{p}:13: standard 166-2549")  # the line of its [[standard]]


def test_bad_tis_and_broken_toml(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[[standard]]\ntis = "nonsense"\nname_th = "x"\n', "utf-8")
    with pytest.raises(CatalogueError, match=r"s\.toml:1: standard nonsense → tis: 'nonsense' is not a TIS number"):
        load_catalogue(p)
    p.write_text('[[standard]\ntis = "1"', "utf-8")
    with pytest.raises(CatalogueError, match="not valid TOML"):
        load_catalogue(p)
    with pytest.raises(CatalogueError, match="catalogue file not found"):
        load_catalogue(tmp_path / "missing.toml")


def test_warnings_point_at_slips(tmp_path):
    p = write_catalogue(tmp_path, 'consumer = true\nrequires = ["ไฟฟ้า"]')
    text = p.read_text("utf-8").replace('words = ["พาวเวอร์แบงค์"]',
                                        'words = ["พาวเวอร์แบงค์", "แบตสำรอง", "แบตสำรอง"]\nexclude = ["แบตสำรอง"]')
    text += 'words = ["พาวเวอร์แบงค์"]\n'
    p.write_text(text, "utf-8")
    ws = load_catalogue(p).warnings()
    assert "standard 2879-2560: product word(s) listed twice: แบตสำรอง" in ws
    assert "standard 2879-2560: แบตสำรอง: both a product word and an exclusion" in ws
    assert any(w.startswith("word 'พาวเวอร์แบงค์' belongs to 2 standards") for w in ws)
    p.write_text(GOOD.replace("{extra}", 'consumer = true\nrequires = ["ไฟฟ้า"]'), "utf-8")
    ws = load_catalogue(p).warnings()
    assert any("166-2549: consumer = true but no product words" in w for w in ws)
    assert any("166-2549: requires/not_form without product words" in w for w in ws)


def test_read_tisi_list_errors(tmp_path):
    p = tmp_path / "list.csv"
    p.write_text("a,b\n1,2\n", "utf-8")
    with pytest.raises(CatalogueError, match="not a TISI list of standards"):
        read_tisi_list(p)
    p.write_text("เลขที่ มอก.,ชื่อ มอก. ภาษาไทย\n166-2549,x\nabc,y\n", "utf-8")
    with pytest.raises(CatalogueError, match=r"list\.csv:3: 'abc' is not a TIS number"):
        read_tisi_list(p)


def test_completeness_reports_what_is_missing_or_differs(tmp_path, catalogue):
    p = tmp_path / "list.csv"
    p.write_text("เลขที่ มอก.,ชื่อ มอก. ภาษาไทย,ชื่อ มอก. ภาษาอังกฤษ,ประเภทมาตรฐาน,จำนวนใบอนุญาตทำ,จำนวนใบอนุญาตนำเข้า,จำนวนใบอนุญาตแสดง\n"
                 "9998-2567,มาตรฐานใหม่,New standard,บังคับ,1,2,0\n"
                 "2879-2567,แบตเตอรี่สำรองไฟฟ้า,Power bank,บังคับ,0,0,0\n"
                 "213-2560,คอนกรีตผสมเสร็จ,Ready-mixed concrete,ทั่วไป,0,0,1432\n", "utf-8")
    rep = compare_with_tisi_list(catalogue, read_tisi_list(p))
    assert rep.listed == 2 and [str(m.tis) for m in rep.missing] == ["9998-2567"] and not rep.complete
    assert [(str(a.tis), b.tis_no) for a, b in rep.other_edition] == [("2879-2567", "2879-2560")]
    assert [b.tis_no for _, b in rep.name_differs] == ["2879-2560"]
    assert len(rep.not_listed) == len(catalogue.standards) - 1
