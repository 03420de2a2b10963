from datetime import date

import pytest

from registry.licences import LicenceFileError
from registry.store import RegistryStore

HEAD = "licence_no,tis_no,trademark,models,status,status_date,issued\n"


def write(p, rows):
    p.write_text(HEAD + "".join(rows), "utf-8")
    return p


def test_import_twice_changes_nothing_then_update_records_history(tmp_path):
    rs = RegistryStore(tmp_path / "r.sqlite")
    f = write(tmp_path / "a.csv", ["ท1-1/1,2879-2560,Eloop,E1;E2,ใช้งาน,,2020-01-01\n", "ท2-1/1,2879-2560,Volto,V1,ใช้งาน,,2020-01-01\n"])
    r1 = rs.import_file(f)
    assert (r1.added, r1.updated) == (2, 0)
    v1 = rs.version()
    r2 = rs.import_file(f)
    assert (r2.added, r2.updated, r2.unchanged) == (0, 0, 2) and rs.version() == v1
    g = write(tmp_path / "b.csv", ["ท1-1/1,2879-2560,Eloop,E1;E2;E3,ใช้งาน,,2020-01-01\n",
                                   "ท2-1/1,2879-2560,Volto,V1,เพิกถอน,2024-06-01,2020-01-01\n"])
    r3 = rs.import_file(g, today=date(2024, 7, 1))
    assert r3.updated == 2 and rs.version() != v1
    assert {(c[0], c[1]) for c in r3.changes} == {("ท1-1/1", "models"), ("ท2-1/1", "status"), ("ท2-1/1", "status_date")}
    assert rs.status_on("ท2-1/1", date(2024, 5, 31)) == "active"
    assert rs.status_on("ท2-1/1", date(2024, 6, 1)) == "revoked"
    assert rs.status_on("ท2-1/1", date(2019, 1, 1)) is None
    assert [c["field"] for c in rs.changes("ท2-1/1")] == ["status", "status_date"]


def test_not_a_licence_file_changes_nothing(tmp_path):
    rs = RegistryStore(tmp_path / "r.sqlite")
    rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,2879-2560,Eloop,E1,ใช้งาน,,\n"]))
    bad = tmp_path / "b.csv"
    bad.write_text("name,price\nx,1\n", "utf-8")
    with pytest.raises(LicenceFileError):
        rs.import_file(bad)
    assert rs.count() == 1 and rs.get("ท1-1/1").trademarks == ("Eloop",)


def test_search_thai_and_latin(tmp_path):
    rs = RegistryStore(tmp_path / "r.sqlite")
    rs.import_file(write(tmp_path / "a.csv", ['ท1-1/1,2879-2560,"Sharp / ชาร์ป",PB-2001,ใช้งาน,,\n', "ท2-1/1,166-2549,Haco,H1,ใช้งาน,,\n"]))
    assert [x.licence_no for x in rs.search("ชาร์ป")] == ["ท1-1/1"]
    assert [x.licence_no for x in rs.search("sharp")] == ["ท1-1/1"]
    assert [x.licence_no for x in rs.search("pb-2001")] == ["ท1-1/1"]
    assert [x.licence_no for x in rs.search("H1")] == ["ท2-1/1"]
