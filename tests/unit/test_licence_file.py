"""The licence file of DOMAIN.md §4.1: every input variant a TISI export or a hand-made file brings
(encodings, headers, delimiters, dates, digits, statuses, trademarks, models, repeats), bad rows named
by file, line and column, and files that are not licence files refused."""

from datetime import date, datetime

import pytest

from registry.licences import (
    LicenceFileError,
    column_letter,
    parse_date,
    parse_licence_type,
    parse_status,
    read_licence_file,
    split_models,
    split_trademarks,
    write_licence_csv,
    write_licence_xlsx,
)

EN = ("licence_no,licence_type,tis_no,licensee,tax_id,trademark,product,models,factory,origin,issued,status,status_date\n"
      'ท5137-2/10,ท,2879-2560,บริษัท ตัวอย่าง จำกัด,0105551234567,Eloop / อีลูป,พาวเวอร์แบงค์,"E-29; E-30",Bangkok,ไทย,15/03/2565,ใช้งาน,\n'
      "น100-1/20,น,2432-2555,ACME,,ACME,ปลั๊กพ่วง,P1,Shenzhen,China,2022-03-15,revoked,2024-01-01\n")
TH = ("เลขที่ใบอนุญาต,เลขที่ มอก.,ผู้รับใบอนุญาต,เครื่องหมายการค้า,แบบ รุ่น ขนาด,วันที่ออกใบอนุญาต,สถานะ\n"
      'ท๑๒-๓/๔๕,๒๘๗๙-๒๕๖๐,บริษัท ก จำกัด,"Sharp, ชาร์ป","A1\nA2",๐๑/๐๒/๒๕๖๖,พักใช้\n')


def read(tmp_path, content: str | bytes, name: str = "l.csv"):
    p = tmp_path / name
    if isinstance(content, str):
        p.write_text(content, "utf-8")
    else:
        p.write_bytes(content)
    return p, read_licence_file(p)


def test_english_headers_utf8(tmp_path):
    _, f = read(tmp_path, EN)
    assert not f.errors and f.header_language == "en" and f.encoding == "utf-8"
    a, b = f.licences
    assert a.licence_no == "ท5137-2/10" and a.trademarks == ("Eloop", "อีลูป") and a.models == ("E-29", "E-30")
    assert a.issued == date(2022, 3, 15) and a.status == "active" and a.tax_id == "0105551234567"
    assert b.status == "revoked" and b.status_date == date(2024, 1, 1) and b.licence_type == "น"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp874", "utf-16"])
def test_thai_headers_in_every_encoding(tmp_path, encoding):
    _, f = read(tmp_path, TH.encode(encoding))
    assert f.header_language == "th" and not f.errors, f.errors
    lic = f.licences[0]
    assert lic.licence_no == "ท12-3/45" and lic.tis_no == "2879-2560" and lic.status == "suspended"
    assert lic.trademarks == ("Sharp", "ชาร์ป") and lic.models == ("A1", "A2") and lic.issued == date(2023, 2, 1)
    assert lic.licence_type == "ท"  # from the number's prefix when the file has no type column


def test_cp874_is_told_from_utf8_and_undecodable_bytes_are_named(tmp_path):
    _, f = read(tmp_path, TH.encode("cp874"))
    assert f.encoding == "cp874"
    p = tmp_path / "broken.csv"
    p.write_bytes(b"\xef\xbb\xbflicence_no,tis_no\n\xe0\xb8\n")  # a BOM, then a cut UTF-8 sequence on line 2
    with pytest.raises(LicenceFileError, match=r"broken\.csv:2: cannot be read as utf-8-sig"):
        read_licence_file(p)


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_even_with_semicolons_inside_cells(tmp_path, delimiter):
    text = (f"licence_no{delimiter}tis_no{delimiter}trademark{delimiter}models\n"
            f'ท1-1/1{delimiter}166-2549{delimiter}Haco{delimiter}"H-1; H-2; H-3"\n')
    _, f = read(tmp_path, text)
    assert f.delimiter == delimiter and f.licences[0].models == ("H-1", "H-2", "H-3")


def test_comma_file_whose_models_hold_semicolons_is_not_mistaken_for_a_semicolon_file(tmp_path):
    text = "licence_no,tis_no,models\n" + "".join(f'ท{i}-1/1,166-2549,"A{i}; B{i}; C{i}; D{i}"\n' for i in range(1, 30))
    _, f = read(tmp_path, text)
    assert f.delimiter == "," and len(f.licences) == 29 and f.licences[0].models == ("A1", "B1", "C1", "D1")


def test_title_rows_above_the_header_and_unknown_columns(tmp_path):
    text = ("รายงานใบอนุญาต สมอ.,,\nณ วันที่ 30 พ.ย. 2568,,\n,,\n"
            "ลำดับ,เลขที่ใบอนุญาต,เลขที่ มอก.,ตราสินค้า,หมายเหตุ\n1,ท1-1/1,166-2549,Haco,x\n")
    _, f = read(tmp_path, text)
    assert f.header_line == 4 and f.licences[0].trademarks == ("Haco",)  # ตราสินค้า: an alias of trademark
    assert f.ignored_columns == ["ลำดับ", "หมายเหตุ"]


@pytest.mark.parametrize("header", [
    "License No,TIS No,Brand,Model,Issue Date,Licence Status",
    "เลขใบอนุญาต,เลข มอก.,ยี่ห้อ,รุ่น,วันที่ออก,สถานะใบอนุญาต",
    "LICENCE_NO,TIS_NO,TRADEMARK,MODELS,ISSUED,STATUS",
])
def test_header_spellings(tmp_path, header):
    _, f = read(tmp_path, header + "\nท1-1/1,166-2549,Haco,H1,2020-01-02,revoked\n")
    lic = f.licences[0]
    assert (lic.trademarks, lic.models, lic.issued, lic.status) == (("Haco",), ("H1",), date(2020, 1, 2), "revoked")


def test_line_numbers_count_physical_lines_of_multiline_cells(tmp_path):
    text = ('licence_no,tis_no,models\nท1-1/1,166-2549,"A1\nA2\nA3"\nท2-1/1,bad,X\n'
            'ท3-1/1,166-2549,"B1\r\nB2"\nท4-1/1,166-2549,Y\nnot-a-licence,166-2549,Z\n')
    p, f = read(tmp_path, text)
    assert [lic.licence_no for lic in f.licences] == ["ท1-1/1", "ท3-1/1", "ท4-1/1"]
    assert [(e.line, e.column, e.letter) for e in f.errors] == [(5, "tis_no", "B"), (9, "licence_no", "A")]
    assert str(f.errors[0]).startswith(f"{p}:5: column B (tis_no): 'bad' is not a TIS number")


def test_bad_rows_named_and_good_rows_kept(tmp_path):
    p, f = read(tmp_path, EN + "ท9-9/9,ท,not-a-tis,X,,X,x,,,,,active,\nท8-8/8,ท,166-2549,X,,X,x,,,,31/02/2565,active,\n"
                              "ท7-7/7,ท,166-2549,X,,X,x,,,,,maybe,\nท6-6/6,น,166-2549,X,,X,x,,,,,active,\n"
                              "ท5-5/5,ท,166-2549,X,12345,X,x,,,,,active,\n")
    assert len(f.licences) == 2 and f.rows == 7
    got = [(e.line, e.column, e.message.split(" (")[0]) for e in f.errors]
    assert got == [
        (4, "tis_no", "'not-a-tis' is not a TIS number with its year, like 2879-2560"),
        (5, "issued", "'31/02/2565' is not a real date"),
        (6, "status", "'maybe' is not a licence status"),
        (7, "licence_type", "type 'น' contradicts licence number ท6-6/6"),
        (8, "tax_id", "'12345' is not a 13-digit tax id"),
    ]
    assert str(f.errors[0]).startswith(f"{p}:4: column C (tis_no):")


@pytest.mark.parametrize("content, message", [
    ("name,price\nลูกชิ้น,59\n", "no header row with the columns licence_no / เลขที่ใบอนุญาต and tis_no"),
    ("", "empty file"),
    ("\n\n  \n", "empty file"),
    ("\x00\x01binary", "a binary file"),
    ("licence_no,tis_no\nxx,yy\nzz,ww\n", "not one of its 2 rows is a licence"),
])
def test_not_a_licence_file(tmp_path, content, message):
    p = tmp_path / "x.csv"
    p.write_text(content, "utf-8")
    with pytest.raises(LicenceFileError) as e:
        read_licence_file(p)
    assert str(e.value).startswith(str(p)) and message in str(e.value)


def test_other_files_refused_clearly(tmp_path):
    with pytest.raises(LicenceFileError, match="file not found"):
        read_licence_file(tmp_path / "nope.csv")
    with pytest.raises(LicenceFileError, match="a directory"):
        read_licence_file(tmp_path)
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(LicenceFileError, match=r"old Excel \.xls"):
        read_licence_file(tmp_path / "old.xls")
    (tmp_path / "fake.xlsx").write_bytes(b"PK\x03\x04not really a zip")
    with pytest.raises(LicenceFileError, match="not a readable XLSX"):
        read_licence_file(tmp_path / "fake.xlsx")


def test_repeated_licence_rows_are_merged_and_contradictions_rejected(tmp_path):
    text = ("licence_no,tis_no,trademark,models,status\nท1-1/1,166-2549,Haco,H1,ใช้งาน\n"
            "ท1-1/1,166-2549,ฮาโก้,H2,ใช้งาน\nท1-1/1,166-2549,Haco,H1,ใช้งาน\nท1-1/1,166-2549,Haco,H3,เพิกถอน\n")
    _, f = read(tmp_path, text)
    (lic,) = f.licences
    assert lic.trademarks == ("Haco", "ฮาโก้") and lic.models == ("H1", "H2") and f.merged == 2
    (e,) = f.errors
    assert e.line == 5 and e.column == "status" and "already on line 2" in e.message


def test_xlsx_thai_headers_title_row_excel_dates_and_numbers(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    notes = wb.active
    notes.title = "คำอธิบาย"
    notes.append(["ไฟล์นี้มาจาก สมอ."])
    ws = wb.create_sheet("ใบอนุญาต")
    ws.append(["รายงานใบอนุญาต"])
    ws.append(["เลขที่ใบอนุญาต", "ประเภทใบอนุญาต", "เลขที่ มอก.", "เครื่องหมายการค้า", "สถานะ", "วันที่ออกใบอนุญาต",
               "เลขประจำตัวผู้เสียภาษี", "แบบ รุ่น ขนาด"])
    ws.append(["ท1-1/1", "ทำ", "166-2549", "Haco/ฮาโก้", "ใช้งาน", date(2020, 5, 1), 105551234567, "H-1\nH-2"])
    ws.append(["น2-1/1", "นำเข้า", "166-2549", "Haco", "Active", datetime(2565, 3, 15), "0105551234567", None])
    ws.append(["bad", "ท", "166-2549", "X", "ใช้งาน", None, None, None])
    ws.append(["ท3-1/1", "ท", "166-2549", "X", "ใช้งาน", "15 มี.ค. 2565", 1.05551234567e11, None])
    p = tmp_path / "l.xlsx"
    wb.save(p)
    f = read_licence_file(p)
    assert f.encoding == "xlsx" and f.header_language == "th"
    a, b, c = f.licences
    assert (a.licence_no, a.licence_type, a.issued, a.tax_id, a.models, a.trademarks) == (
        "ท1-1/1", "ท", date(2020, 5, 1), "0105551234567", ("H-1", "H-2"), ("Haco", "ฮาโก้"))
    assert (b.licence_type, b.issued, b.status) == ("น", date(2022, 3, 15), "active")  # a BE date Excel took for CE
    assert c.issued == date(2022, 3, 15) and c.tax_id == "0105551234567"
    (e,) = f.errors
    assert (e.line, e.column, e.letter) == (5, "เลขที่ใบอนุญาต", "A") and "[ใบอนุญาต]" in e.file


def test_xlsx_without_licence_sheet_is_refused(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["name", "price"])
    p = tmp_path / "x.xlsx"
    wb.save(p)
    with pytest.raises(LicenceFileError, match="not a licence file"):
        read_licence_file(p)


def test_write_then_read_round_trip_csv_cp874_and_xlsx(tmp_path, world):
    lics = world.licences[:50]
    for name, write in (("w.csv", lambda p: write_licence_csv(lics, p, thai_headers=True)),
                        ("w874.csv", lambda p: write_licence_csv(lics, p, encoding="cp874")),
                        ("w.xlsx", lambda p: write_licence_xlsx(lics, p, thai_headers=True))):
        p = tmp_path / name
        assert write(p) == 50
        back = read_licence_file(p)
        assert not back.errors
        assert [lic.row() for lic in back.licences] == [lic.row() for lic in lics], name


@pytest.mark.parametrize("text, want", [
    ("15/03/2565", date(2022, 3, 15)), ("2022-03-15", date(2022, 3, 15)), ("15/03/2022", date(2022, 3, 15)),
    ("๑๕/๐๓/๒๕๖๕", date(2022, 3, 15)), ("2565-03-15", date(2022, 3, 15)), ("15-3-2565", date(2022, 3, 15)),
    ("15.03.65", date(2022, 3, 15)), ("15/03/22", date(2022, 3, 15)), ("15 มี.ค. 2565", date(2022, 3, 15)),
    ("15 มีนาคม 2565", date(2022, 3, 15)), ("๑๕ มี.ค. ๖๕", date(2022, 3, 15)), ("15 Mar 2022", date(2022, 3, 15)),
    ("2022-03-15T10:00:00", date(2022, 3, 15)), ("", None), ("-", None), (None, None),
    (datetime(2022, 3, 15, 9, 30), date(2022, 3, 15)), (date(2565, 3, 15), date(2022, 3, 15)),
])
def test_dates(text, want):
    assert parse_date(text) == want


@pytest.mark.parametrize("text, why", [("31/02/2565", "not a real date"), ("15/13/2565", "month 13"),
                                       ("yesterday", "not a date"), ("15 ธ.ค.", "not a date")])
def test_bad_dates_say_why(text, why):
    with pytest.raises(ValueError, match=why):
        parse_date(text)


@pytest.mark.parametrize("text, want", [
    ("ใช้งาน", "active"), ("Active", "active"), ("", "active"), ("พักใช้", "suspended"), ("SUSPENDED", "suspended"),
    ("ยกเลิก", "cancelled"), ("canceled", "cancelled"), ("เพิกถอน", "revoked"), ("ถูกเพิกถอน", "revoked"),
    ("พักใช้ใบอนุญาต", "suspended"),
])
def test_statuses(text, want):
    assert parse_status(text) == want


@pytest.mark.parametrize("text, want", [("ท", "ท"), ("ทำ", "ท"), ("นำเข้า", "น"), ("Import", "น"), ("ส", "ส"),
                                        ("นค", "นค"), ("นำเข้าเฉพาะครั้ง", "นค"), ("one-time import", "นค"), ("x", None)])
def test_licence_types(text, want):
    assert parse_licence_type(text) == want


@pytest.mark.parametrize("text, want", [
    ("Sharp / ชาร์ป", ("Sharp", "ชาร์ป")), ("Sharp, ชาร์ป,SHARP", ("Sharp", "ชาร์ป")), ("Eloop", ("Eloop",)), ("", ()),
])
def test_trademarks(text, want):
    assert split_trademarks(text) == want


@pytest.mark.parametrize("text, want", [
    ("E-29; E-30", ("E-29", "E-30")), ("E-29\nE-30\r\nE-31", ("E-29", "E-30", "E-31")), ("A;;B;\n\nA", ("A", "B")),
    ("PB 2001 (10000mAh), PB 2002", ("PB 2001 (10000mAh), PB 2002",)), ("", ()),
])
def test_models(text, want):
    assert split_models(text) == want


def test_licence_number_without_its_prefix_takes_the_type_column(tmp_path):
    _, f = read(tmp_path, "licence_no,licence_type,tis_no\n5137-2/10,ท,2879-2560\n๕๑๓๘-๒/๑๐,นำเข้า,2879-2560\n")
    assert [lic.licence_no for lic in f.licences] == ["ท5137-2/10", "น5138-2/10"]


def test_column_letters():
    assert [column_letter(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]
