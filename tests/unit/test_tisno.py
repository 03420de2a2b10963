import pytest

from registry.tisno import be_year, parse_licence_no, parse_tis


@pytest.mark.parametrize("text, base, year", [
    ("166-2549", "166", 2549), ("มอก. 2432-2555", "2432", 2555), ("685 เล่ม 1-2562", "685 เล่ม 1", 2562),
    ("60335 เล่ม 2(23)-2564", "60335 เล่ม 2(23)", 2564), ("TIS 2432-2012", "2432", 2555), ("๑๖๖-๒๕๔๙", "166", 2549),
    ("2879", "2879", None), ("2879-60", "2879", 2560),
])
def test_parse_tis(text, base, year):
    t = parse_tis(text)
    assert t is not None and t.base == base and t.year == year


@pytest.mark.parametrize("text", ["", "abc", "166-1800", "ท5137-2/10"])
def test_not_tis(text):
    assert parse_tis(text) is None


@pytest.mark.parametrize("text, want", [
    ("ท5137-2/10", "ท5137-2/10"), ("ท 5137 - 2 / 10", "ท5137-2/10"), ("น๑๒๓-๔/๕๖", "น123-4/56"), ("นค 77-1/2565", "นค77-1/2565"),
    ("ท5", None), ("x5137-2/10", None),
])
def test_parse_licence_no(text, want):
    assert parse_licence_no(text) == want


def test_be_year():
    assert be_year(2012) == 2555 and be_year(2555) == 2555 and be_year(55) == 2555
