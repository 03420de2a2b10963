"""`tiswatch registry generate`: a realistic registry that follows the real November-2025 counts."""

import re
from collections import Counter

import pytest

from sandbox.world import SNAPSHOT_DAY, generate_licences


@pytest.fixture(scope="module")
def full(catalogue):
    return generate_licences(29183, seed=7, catalogue=catalogue)[0]


def test_counts_per_standard_and_type_follow_the_real_registry(full, catalogue):
    assert len(full) == 29183
    per = Counter(lic.base for lic in full)
    for s in catalogue.standards:
        assert per[s.base] == s.total_licences, s.tis_no
    types = Counter(lic.licence_type for lic in full)
    assert set(types) == {"ท", "น", "ส", "นค"}
    real = [sum(s.licences[i] for s in catalogue.standards) for i in range(3)]  # ท, น, ส
    assert abs(types["ท"] / len(full) - real[0] / 29183) < 0.02
    assert abs((types["น"] + types["นค"]) / len(full) - real[1] / 29183) < 0.02
    assert 0 < types["ส"] <= 3 * real[2] and 0.01 < types["นค"] / (types["น"] + types["นค"]) < 0.06
    # mark-display licences only under standards that have them in the real registry
    with_marks = {s.base for s in catalogue.standards if s.licences[2]}
    assert {lic.base for lic in full if lic.licence_type == "ส"} <= with_marks


def test_statuses_dates_numbers_trademarks_models(full):
    st = Counter(lic.status for lic in full)
    assert 0.82 < st["active"] / len(full) < 0.90
    assert all(st[k] / len(full) > 0.02 for k in ("suspended", "cancelled", "revoked"))
    assert len({lic.licence_no for lic in full}) == len(full)
    assert all(re.fullmatch(r"(นค|ท|น|ส)\d+-\d+/\d+", lic.licence_no) and lic.licence_no.startswith(lic.licence_type)
               for lic in full)
    for lic in full:
        assert lic.issued and lic.issued <= SNAPSHOT_DAY
        assert (lic.status_date is None) == lic.active
        assert lic.status_date is None or lic.issued <= lic.status_date <= SNAPSHOT_DAY
        assert 1 <= len(lic.models) <= 5 and lic.trademarks and len(lic.tax_id) == 13 and lic.licensee
    thai = sum(any(re.search("[\u0e00-\u0e7f]", t) for t in lic.trademarks) for lic in full)
    latin = sum(any(t.isascii() for t in lic.trademarks) for lic in full)
    assert latin == len(full) and 0.75 < thai / len(full) < 0.95
    licensees = Counter(lic.licensee for lic in full)
    assert len(licensees) > 5000 and all(re.search("บริษัท|ห้างหุ้นส่วน", n) for n in licensees)


def test_deterministic_by_seed_and_any_size(catalogue):
    a, _ = generate_licences(800, seed=3, catalogue=catalogue)
    b, _ = generate_licences(800, seed=3, catalogue=catalogue)
    c, _ = generate_licences(800, seed=4, catalogue=catalogue)
    assert [x.row() for x in a] == [x.row() for x in b] and [x.row() for x in a] != [x.row() for x in c]
    assert len(a) == 800
    assert len(generate_licences(37, seed=1, catalogue=catalogue)[0]) == 37
