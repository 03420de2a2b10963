"""The licence file of DOMAIN.md §4.1: encodings, headers, dates, statuses, bad rows, not a licence file."""

from datetime import date

import pytest

from registry.licences import LicenceFileError, parse_date, read_licence_file, write_licence_csv

EN = ("licence_no,licence_type,tis_no,licensee,tax_id,trademark,product,models,factory,origin,issued,status,status_date\n"
      'ท5137-2/10,ท,2879-2560,บริษัท ตัวอย่าง จำกัด,0105551234567,Eloop / อีลูป,พาวเวอร์แบงค์,"E-29; E-30",Bangkok,ไทย,15/03/2565,ใช้งาน,\n'
      "น100-1/20,น,2432-2555,ACME,,ACME,ปลั๊กพ่วง,P1,Shenzhen,China,2022-03-15,revoked,2024-01-01\n")
TH = ("เลขที่ใบอนุญาต,เลขที่ มอก.,ผู้รับใบอนุญาต,เครื่องหมายการค้า,แบบ รุ่น ขนาด,วันที่ออกใบอนุญาต,สถานะ\n"
      'ท๑๒-๓/๔๕,๒๘๗๙-๒๕๖๐,บริษัท ก จำกัด,"Sharp, ชาร์ป","A1\nA2",๐๑/๐๒/๒๕๖๖,พักใช้\n')


def test_english_headers_utf8(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text(EN, "utf-8")
    f = read_licence_file(p)
    assert not f.errors and f.header_language == "en"
    a, b = f.licences
    assert a.licence_no == "ท5137-2/10" and a.trademarks == ("Eloop", "อีลูป") and a.models == ("E-29", "E-30")
    assert a.issued == date(2022, 3, 15) and a.status == "active"
    assert b.status == "revoked" and b.status_date == date(2024, 1, 1)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp874"])
def test_thai_headers_bom_and_cp874(tmp_path, encoding):
    p = tmp_path / "l.csv"
    p.write_bytes(TH.encode(encoding))
    f = read_licence_file(p)
    assert f.header_language == "th" and not f.errors
    lic = f.licences[0]
    assert lic.licence_no == "ท12-3/45" and lic.tis_no == "2879-2560" and lic.status == "suspended"
    assert lic.trademarks == ("Sharp", "ชาร์ป") and lic.models == ("A1", "A2") and lic.issued == date(2023, 2, 1)


def test_xlsx(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["เลขที่ใบอนุญาต", "เลขที่ มอก.", "เครื่องหมายการค้า", "สถานะ", "วันที่ออกใบอนุญาต"])
    ws.append(["ท1-1/1", "166-2549", "Haco", "ใช้งาน", date(2020, 5, 1)])
    ws.append(["bad", "166-2549", "X", "ใช้งาน", None])
    p = tmp_path / "l.xlsx"
    wb.save(p)
    f = read_licence_file(p)
    assert [x.licence_no for x in f.licences] == ["ท1-1/1"] and f.licences[0].issued == date(2020, 5, 1)
    assert len(f.errors) == 1 and f.errors[0].line == 3 and f.errors[0].column == "เลขที่ใบอนุญาต"


def test_bad_rows_named_and_good_rows_kept(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text(EN + "ท9-9/9,ท,not-a-tis,X,,X,x,,,,,active,\nท8-8/8,ท,166-2549,X,,X,x,,,,31/02/2565,active,\n"
                 "ท7-7/7,ท,166-2549,X,,X,x,,,,,maybe,\n", "utf-8")
    f = read_licence_file(p)
    assert len(f.licences) == 2
    msgs = [(e.line, e.column) for e in f.errors]
    assert msgs == [(4, "tis_no"), (5, "issued"), (6, "status")]
    assert str(f.errors[0]).startswith(f"{p}:4: column tis_no:")


@pytest.mark.parametrize("content", ["name,price\nลูกชิ้น,59\n", "", "\x00\x01binary"])
def test_not_a_licence_file(tmp_path, content):
    p = tmp_path / "x.csv"
    p.write_text(content, "utf-8")
    with pytest.raises(LicenceFileError) as e:
        read_licence_file(p)
    assert str(p) in str(e.value)


def test_write_then_read_round_trip(tmp_path, world):
    p = tmp_path / "w.csv"
    write_licence_csv(world.licences[:50], p, thai_headers=True)
    back = read_licence_file(p)
    assert not back.errors
    assert [lic.row() for lic in back.licences] == [lic.row() for lic in world.licences[:50]]


@pytest.mark.parametrize("text, want", [("15/03/2565", date(2022, 3, 15)), ("2022-03-15", date(2022, 3, 15)),
                                        ("15/03/2022", date(2022, 3, 15)), ("๑๕/๐๓/๒๕๖๕", date(2022, 3, 15)), ("", None)])
def test_dates(text, want):
    assert parse_date(text) == want
