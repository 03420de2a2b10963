"""The registry store: idempotent imports, history of changes with their dates, "was licence X active on
day D?", refused files that change nothing, the change feed for re-checks, search, and migration of a
registry.sqlite written by the first version."""

import json
import sqlite3
from datetime import date

import pytest

from registry.index import Registry
from registry.licences import Licence, LicenceFile, LicenceFileError
from registry.store import ImportRefused, RegistryStore, bulk

HEAD = "licence_no,tis_no,trademark,models,status,status_date,issued\n"


def write(p, rows):
    p.write_text(HEAD + "".join(rows), "utf-8")
    return p


def snapshot(rs: RegistryStore) -> tuple:
    q = rs.db.execute
    return (rs.version(), [tuple(r) for r in q("SELECT * FROM licences ORDER BY licence_no")],
            [tuple(r) for r in q("SELECT * FROM licence_changes ORDER BY id")],
            [tuple(r) for r in q("SELECT * FROM status_history ORDER BY rowid")])


@pytest.fixture
def rs(tmp_path):
    s = RegistryStore(tmp_path / "r.sqlite")
    yield s
    s.close()


def test_import_twice_changes_nothing_then_update_records_history(tmp_path, rs):
    f = write(tmp_path / "a.csv", ["ท1-1/1,2879-2560,Eloop,E1;E2,ใช้งาน,,2020-01-01\n", "ท2-1/1,2879-2560,Volto,V1,ใช้งาน,,2020-01-01\n"])
    r1 = rs.import_file(f, today=date(2024, 1, 10))
    assert (r1.added, r1.updated) == (2, 0)
    before = snapshot(rs)
    r2 = rs.import_file(f, today=date(2024, 2, 10))
    assert (r2.added, r2.updated, r2.unchanged) == (0, 0, 2) and snapshot(rs) == before
    g = write(tmp_path / "b.csv", ["ท1-1/1,2879-2560,Eloop / อีลูป,E1;E2;E3,ใช้งาน,,2020-01-01\n",
                                   "ท2-1/1,2879-2560,Volto,V1,เพิกถอน,2024-06-01,2020-01-01\n"])
    r3 = rs.import_file(g, today=date(2024, 7, 1))
    assert r3.updated == 2 and rs.version() != before[0]
    assert {(c[0], c[1]) for c in r3.changes} == {("ท1-1/1", "models"), ("ท1-1/1", "trademarks"),
                                                  ("ท2-1/1", "status"), ("ท2-1/1", "status_date")}
    assert rs.status_on("ท2-1/1", date(2024, 5, 31)) == "active"
    assert rs.status_on("ท2-1/1", date(2024, 6, 1)) == "revoked"
    assert rs.status_on("ท2-1/1", date(2019, 1, 1)) is None
    assert [(c["field"], c["effective"]) for c in rs.changes("ท2-1/1")] == [("status", "2024-06-01"), ("status_date", "2024-06-01")]
    assert {c["effective"] for c in rs.changes("ท1-1/1")} == {"2024-07-01"}  # no status date: the day of the file
    # the licence as it stood before the change: old trademarks and models; after it: the new ones
    then = rs.licence_on("ท1-1/1", date(2024, 6, 30))
    assert then.trademarks == ("Eloop",) and then.models == ("E1", "E2")
    assert rs.licence_on("ท1-1/1", date(2024, 7, 1)).models == ("E1", "E2", "E3")
    revoked_then = rs.licence_on("ท2-1/1", date(2024, 5, 1))
    assert revoked_then.status == "active" and revoked_then.status_date is None
    assert rs.licence_on("ท2-1/1", date(2019, 12, 31)) is None


def test_reinstated_licence_and_the_same_status_history_in_the_index(tmp_path, rs):
    rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,166-2549,Haco,H1,ใช้งาน,,2020-01-01\n"]), as_of=date(2024, 1, 1))
    rs.import_file(write(tmp_path / "b.csv", ["ท1-1/1,166-2549,Haco,H1,พักใช้,2024-03-01,2020-01-01\n"]), as_of=date(2024, 3, 15))
    rs.import_file(write(tmp_path / "c.csv", ["ท1-1/1,166-2549,Haco,H1,ใช้งาน,,2020-01-01\n"]), as_of=date(2024, 9, 1))
    days = [date(2019, 12, 31), date(2020, 1, 1), date(2024, 2, 29), date(2024, 3, 1), date(2024, 8, 31), date(2024, 9, 1)]
    want = [None, "active", "active", "suspended", "suspended", "active"]
    assert [rs.status_on("ท1-1/1", d) for d in days] == want
    reg = Registry.from_store(rs)
    assert [reg.status_on("ท1-1/1", d) for d in days] == want
    assert reg.licence_on("ท1-1/1", date(2024, 5, 1)).status == "suspended"


def test_a_licence_first_seen_inactive_was_active_from_its_issue_date(tmp_path, rs):
    rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,166-2549,Haco,H1,ยกเลิก,2023-05-05,2021-01-01\n",
                                              "ท2-1/1,166-2549,Haco,H2,ใช้งาน,,\n"]), as_of=date(2024, 1, 1))
    assert [rs.status_on("ท1-1/1", d) for d in (date(2020, 12, 31), date(2022, 1, 1), date(2023, 5, 5))] == [
        None, "active", "cancelled"]
    # no issue date in the file: known from the day of the file on
    assert rs.status_on("ท2-1/1", date(2023, 12, 31)) is None and rs.status_on("ท2-1/1", date(2024, 1, 1)) == "active"


def test_an_older_file_is_refused_unless_forced(tmp_path, rs):
    rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,166-2549,Haco,H1,เพิกถอน,2024-06-01,2020-01-01\n"]), as_of=date(2024, 7, 1))
    older = write(tmp_path / "old.csv", ["ท1-1/1,166-2549,Haco,H1,ใช้งาน,,2020-01-01\n"])
    before = snapshot(rs)
    with pytest.raises(ImportRefused, match="older than the registry's newest import"):
        rs.import_file(older, as_of=date(2024, 1, 1))
    assert snapshot(rs) == before
    assert rs.import_file(older, as_of=date(2024, 1, 1), force=True).updated == 1


def test_not_a_licence_file_changes_nothing(tmp_path, rs):
    rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,2879-2560,Eloop,E1,ใช้งาน,,\n"]))
    before, imports = snapshot(rs), rs.imports()
    for content in ("name,price\nx,1\n", "licence_no,tis_no\nbad,bad\n", ""):
        bad = tmp_path / "b.csv"
        bad.write_text(content, "utf-8")
        with pytest.raises(LicenceFileError):
            rs.import_file(bad)
    assert snapshot(rs) == before and rs.imports() == imports


def test_a_failure_midway_rolls_the_whole_import_back(tmp_path, rs):
    rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,2879-2560,Eloop,E1,ใช้งาน,,\n"]))
    before = snapshot(rs)
    broken = LicenceFile(path="x", rows=2, licences=[Licence("ท2-1/1", "2879-2560", trademarks=("A",)),
                                                     Licence("ท3-1/1", "not a tis")])
    with pytest.raises(AssertionError):
        rs.import_licences(broken)
    assert snapshot(rs) == before and rs.get("ท2-1/1") is None


def test_bad_rows_are_reported_and_good_rows_kept(tmp_path, rs):
    rep = rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,2879-2560,Eloop,E1,ใช้งาน,,\n", "ท2-1/1,oops,X,,ใช้งาน,,\n",
                                                    "ท3-1/1,2879-2560,Y,,whatever,,\n"]))
    assert (rep.added, rep.rejected) == (1, 2) and [e.line for e in rep.errors] == [3, 4]
    assert rs.imports()[0]["rejected"] == 2


def test_change_feed_for_rechecks(tmp_path, rs):
    rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,2879-2560,Eloop,E1,ใช้งาน,,\n", "ท2-1/1,166-2549,Haco,H1,ใช้งาน,,\n"]),
                   as_of=date(2024, 1, 1))
    cursor = rs.last_import_id()
    assert rs.changes_since(cursor) == [] and rs.changed_since(cursor) == []
    rep = rs.import_file(write(tmp_path / "b.csv", ["ท1-1/1,2879-2560,Eloop,E1,พักใช้,2024-02-01,\n",
                                                    "ท2-1/1,166-2549,Haco,H1,ใช้งาน,,\n", "ท3-1/1,166-2549,Haco,H2,ใช้งาน,,\n"]),
                         as_of=date(2024, 2, 15))
    assert rep.missing == 0
    got = [(c.licence_no, c.tis_no, c.field, c.old, c.new, c.effective) for c in rs.changes_since(cursor)]
    assert got == [("ท3-1/1", "166-2549", "added", None, "active", "2024-02-15"),
                   ("ท1-1/1", "2879-2560", "status", "active", "suspended", "2024-02-01"),
                   ("ท1-1/1", "2879-2560", "status_date", None, "2024-02-01", "2024-02-01")]
    assert sorted(rs.changed_since(cursor)) == ["ท1-1/1", "ท3-1/1"]
    assert rs.changes_since(rs.last_import_id()) == []
    # a later file without ท2: it is counted as missing and kept as it is
    rep = rs.import_file(write(tmp_path / "c.csv", ["ท1-1/1,2879-2560,Eloop,E1,พักใช้,2024-02-01,\n"]), as_of=date(2024, 3, 1))
    assert rep.missing == 2 and rs.get("ท2-1/1").status == "active"


def test_search_thai_latin_model_keys_exact_numbers_and_filters(tmp_path, rs):
    rs.import_file(write(tmp_path / "a.csv", [
        'ท1-1/1,2879-2560,"Sharp / ชาร์ป",PB-2001,ใช้งาน,,\n', "ท2-1/1,166-2549,Haco,H1,ใช้งาน,,\n",
        "ท3-1/1,166-2549,Sharpener,S-1,เพิกถอน,2024-01-01,\n", "ท11-1/1,166-2549,Haco,H2,ใช้งาน,,\n"]))
    assert [x.licence_no for x in rs.search("ชาร์ป")] == ["ท1-1/1"]
    assert [x.licence_no for x in rs.search("sharp")] == ["ท1-1/1", "ท3-1/1"]  # the whole brand first
    assert [x.licence_no for x in rs.search("pb2001")] == ["ท1-1/1"]
    assert [x.licence_no for x in rs.search("PB 2001")] == ["ท1-1/1"]
    assert [x.licence_no for x in rs.search("H1")] == ["ท2-1/1"]
    assert [x.licence_no for x in rs.search("ท ๑-๑/๑")] == ["ท1-1/1"]  # an exact licence number, Thai digits
    assert [x.licence_no for x in rs.search("sharp", status="revoked")] == ["ท3-1/1"]
    assert [x.licence_no for x in rs.search("sharp", tis_base="2879")] == ["ท1-1/1"]
    assert rs.search("   ") == [] and rs.search("zzzz") == []
    assert len(rs.search("haco", limit=1)) == 1


def test_a_registry_written_by_the_first_version_is_migrated(tmp_path):
    p = tmp_path / "old.sqlite"
    db = sqlite3.connect(p)
    db.executescript("""
    CREATE TABLE licences (licence_no TEXT PRIMARY KEY, licence_type TEXT, tis_no TEXT NOT NULL, tis_base TEXT NOT NULL,
      licensee TEXT, tax_id TEXT, trademarks TEXT, product TEXT, models TEXT, factory TEXT, origin TEXT,
      issued TEXT, status TEXT NOT NULL, status_date TEXT, first_import INTEGER, last_import INTEGER);
    CREATE TABLE imports (id INTEGER PRIMARY KEY, path TEXT, sha256 TEXT, at TEXT, rows INTEGER, added INTEGER,
      updated INTEGER, unchanged INTEGER, rejected INTEGER);
    CREATE VIRTUAL TABLE licence_search USING fts5(licence_no UNINDEXED, words, tokenize='trigram');
    """)
    db.execute("INSERT INTO licences VALUES ('ท1-1/1','ท','2879-2560','2879','', '', ?, '', ?, '', '', '2020-01-01',"
               "'active', NULL, 1, 1)", (json.dumps(["Sharp"]), json.dumps(["PB-2001"])))
    db.execute("INSERT INTO imports VALUES (1, 'a.csv', '', '2024-01-01', 1, 1, 0, 0, 0)")
    db.execute("INSERT INTO licence_search VALUES ('ท1-1/1', 'ท1-1/1 Sharp PB-2001 old tokens')")
    db.commit()
    db.close()
    rs = RegistryStore(p)
    assert rs.get("ท1-1/1").trademarks == ("Sharp",) and rs.version() == "r1"
    assert [x.licence_no for x in rs.search("pb2001")] == ["ท1-1/1"]  # the index was rebuilt with model keys
    rep = rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,2879-2560,Sharp,PB-2001,เพิกถอน,2024-06-01,2020-01-01\n"]))
    assert rep.updated == 1 and rs.get("ท1-1/1").status == "revoked"
    rs.close()
    assert RegistryStore(p).db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_generated_registry_imports_whole_and_again_unchanged(tmp_path, catalogue, rs):
    from registry.licences import write_licence_csv
    from sandbox.world import generate_licences

    lics, _ = generate_licences(1500, seed=5, catalogue=catalogue)
    p = tmp_path / "g.csv"
    write_licence_csv(lics, p, thai_headers=True)
    rep = rs.import_file(p)
    assert (rep.added, rep.rejected) == (1500, 0) and rs.count() == 1500
    assert {lic.licence_no: lic.row() for lic in rs.licences()} == {lic.licence_no: lic.row() for lic in lics}
    assert rs.import_file(p).unchanged == 1500
    # the same licences made in code, imported directly, are the same registry
    other = RegistryStore(tmp_path / "other.sqlite")
    other.import_licences(bulk(lics))
    assert [lic.row() for lic in other.licences()] == [lic.row() for lic in rs.licences()]


def test_dates_after_the_day_of_the_file_are_taken_as_that_day(tmp_path, rs):
    rs.import_file(write(tmp_path / "a.csv", ["ท1-1/1,166-2549,Haco,H1,เพิกถอน,2024-09-01,2024-08-01\n"]),
                   as_of=date(2024, 7, 1))
    # the file of 2024-07-01 says revoked: so it was revoked (and issued) by then, whatever its dates say
    assert rs.status_on("ท1-1/1", date(2024, 7, 1)) == "revoked"
    assert rs.status_on("ท1-1/1", date(2024, 6, 30)) is None
