"""`tiswatch registry ...` as an officer uses it: generate, import (and refuse), show --on, search,
check with its exit codes, imports/changes, and the catalogue commands."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli

runner = CliRunner()


@pytest.fixture
def tw(tmp_path, monkeypatch):
    for k in list(__import__("os").environ):
        if k.startswith("TISWATCH_"):
            monkeypatch.delenv(k)
    home = tmp_path / "home"

    def run(*args: str):
        cli.state._settings = None  # the CLI caches its settings per process
        r = runner.invoke(cli.app, ["--home", str(home), *args], catch_exceptions=False)
        r.text = " ".join(r.output.split())  # rich wraps lines at the terminal width
        return r

    return run


HEAD = "licence_no,tis_no,trademark,models,status,status_date,issued\n"


def test_generate_import_reimport_and_query(tw, tmp_path):
    out = tmp_path / "g.xlsx"
    r = tw("registry", "generate", str(out), "--licences", "300", "--seed", "3", "--thai-headers")
    assert r.exit_code == 0 and "300 licences" in r.text
    r = tw("registry", "import", str(out))
    assert r.exit_code == 0, r.output
    assert "300 added" in r.text and "Thai headers" in r.text and "import #1" in r.text
    r = tw("registry", "import", str(out))
    assert "0 added" in r.text and "300 unchanged" in r.text
    stats = json.loads(tw("registry", "stats", "--json").output)
    assert stats["licences"] == 300 and sum(n for _, n in stats["by_status"]) == 300
    assert {t for t, *_ in stats["by_type"]} <= {"ท", "น", "ส", "นค"}
    imports = tw("registry", "imports").text
    assert "300" in imports


def test_bad_rows_reported_and_rejected_rows_file(tw, tmp_path):
    f = tmp_path / "a.csv"
    f.write_text(HEAD + "ท1-1/1,2879-2560,Eloop,E-29,ใช้งาน,,2020-01-01\nท2-1/1,oops,X,,ใช้งาน,,\n", "utf-8")
    rej = tmp_path / "rejected.csv"
    r = tw("registry", "import", str(f), "--rejected", str(rej))
    assert r.exit_code == 0 and "1 added" in r.text and "1 rejected" in r.text
    assert f"{f}:3: column B (tis_no): 'oops' is not a TIS number" in r.text
    assert rej.read_text("utf-8-sig").splitlines()[1].startswith(f"{f},3,tis_no,B,")


def test_a_file_that_is_not_a_licence_file_is_refused_with_nothing_changed(tw, tmp_path):
    good = tmp_path / "a.csv"
    good.write_text(HEAD + "ท1-1/1,2879-2560,Eloop,E-29,ใช้งาน,,2020-01-01\n", "utf-8")
    tw("registry", "import", str(good))
    bad = tmp_path / "listings.csv"
    bad.write_text("title,price\nพาวเวอร์แบงค์,299\n", "utf-8")
    r = tw("registry", "import", str(bad))
    assert r.exit_code == 2 and "refused" in r.text and "nothing in the registry changed" in r.text
    assert json.loads(tw("registry", "stats", "--json").output)["licences"] == 1


def test_history_and_show_on_a_day(tw, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(HEAD + "ท1-1/1,2879-2560,Eloop,E-29,ใช้งาน,,15/03/2565\n", "utf-8")
    b.write_text(HEAD + "ท1-1/1,2879-2560,Eloop,E-29;E-30,พักใช้,01/06/2567,15/03/2565\n", "utf-8")
    assert tw("registry", "import", str(a), "--as-of", "2024-01-01").exit_code == 0
    assert tw("registry", "import", str(b), "--as-of", "15/06/2567").exit_code == 0
    before = json.loads(tw("registry", "show", "ท 1-1/1", "--on", "2024-05-31", "--json").output)
    assert before["active_on_day"] is True and before["on_day"]["models"] == ["E-29"]
    assert before["licence"]["status"] == "suspended"
    after = tw("registry", "show", "ท1-1/1", "--on", "01/06/2567")
    assert "on 2024-06-01, ท1-1/1 was suspended (พักใช้)" in after.text
    assert "2024-06-01 status: active → suspended" in after.text
    r = tw("registry", "import", str(a), "--as-of", "2024-01-01")
    assert r.exit_code == 2 and "--force" in r.text
    assert tw("registry", "show", "ท9-9/9").exit_code == 1
    assert tw("registry", "show", "ท1-1/1", "--on", "someday").exit_code == 2
    changes = [json.loads(x) for x in tw("registry", "changes", "--since", "1", "--json").output.splitlines()]
    assert [(c["field"], c["new"]) for c in changes] == [("models", '["E-29", "E-30"]'), ("status", "suspended"),
                                                         ("status_date", "2024-06-01")]


def test_search_and_check_exit_codes(tw, tmp_path):
    f = tmp_path / "a.csv"
    f.write_text(HEAD + 'ท1-1/1,2879-2560,"Eloop / อีลูป",E-29,ใช้งาน,,2020-01-01\nน2-1/1,166-2549,Haco,H-1,เพิกถอน,2024-01-01,2020-01-01\n', "utf-8")
    tw("registry", "import", str(f))
    found = json.loads(tw("registry", "search", "อีลูป", "--json").output)
    assert [x["licence_no"] for x in found] == ["ท1-1/1"]
    assert json.loads(tw("registry", "search", "haco", "--status", "active", "--json").output) == []
    assert tw("registry", "search", "haco", "--status", "bogus").exit_code == 2
    r = tw("registry", "check", "--tis", "2879-2560", "--brand", "eloop", "--model", "e29")
    assert r.exit_code == 0 and "backed" in r.text and "licence ท1-1/1 backs this product" in r.text
    r = tw("registry", "check", "--licence", "น2-1/1", "--brand", "Haco", "--json")
    assert r.exit_code == 1 and json.loads(r.output)["reasons"] == ["licence_inactive:น2-1/1:revoked"]
    assert tw("registry", "check", "--brand", "Haco").exit_code == 2
    # straight from a licence file, without the stored registry
    r = tw("registry", "check", "--licence", "น2-1/1", "--brand", "Haco", "--on", "2023-12-31", "--registry", str(f))
    assert r.exit_code == 0, r.output


def test_catalogue_commands(tw, tmp_path):
    shared = Path(__file__).resolve().parents[3] / "shared"
    r = tw("registry", "catalogue", "check", "--against", str(shared / "data/registry/tisi_standards_compulsory_2025_11.csv"))
    assert "valid" in r.text and "149 compulsory standards; all in the catalogue" in r.text
    assert r.exit_code == 0
    listed = json.loads(tw("registry", "catalogue", "list", "--consumer", "--json").output)
    assert len(listed) >= 40 and all(s["consumer"] for s in listed)
    assert "685-2540" in tw("registry", "catalogue", "show", "685-2540").text
    assert tw("registry", "catalogue", "show", "9999-2500").exit_code == 1
    broken = tmp_path / "s.toml"
    broken.write_text('[[standard]]\ntis = "166-2549"\nname_th = "x"\neditions = ["166-2560"]\n', "utf-8")
    r = tw("registry", "catalogue", "check", "--file", str(broken))
    assert r.exit_code == 2 and "nothing was loaded" in r.text
    assert f"{broken}:1: standard 166-2549: edition 166-2560 is newer" in r.text
    partial = tmp_path / "list.csv"
    partial.write_text("เลขที่ มอก.,ชื่อ มอก. ภาษาไทย\n9998-2567,ใหม่\n", "utf-8")
    r = tw("registry", "catalogue", "check", "--against", str(partial))
    assert r.exit_code == 1 and "1 missing" in r.text and "9998-2567" in r.text
