"""`tiswatch check` and `tiswatch eval` in a subprocess, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DATA = Path(__file__).resolve().parents[1] / "data"


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "--home", str(tmp_path / "h"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)})


def test_check_file_keeps_order_and_reports_bad_lines(tmp_path):
    lines = (DATA / "hard_cases.jsonl").read_text("utf-8").splitlines()[:6]
    lines.insert(2, '{"marketplace": "shopee", "title": "no item id"}')
    lines.insert(4, "not json at all")
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n\n", "utf-8")
    out = tmp_path / "out.jsonl"
    p = run(tmp_path, "check", str(src), "--out", str(out), "--registry", str(DATA / "dev_registry.csv"))
    assert p.returncode == 0, p.stderr
    got = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    want = [json.loads(x) for x in lines if x.startswith("{") and "item_id" in x]
    assert [g["item_id"] for g in got] == [w["item_id"] for w in want]
    assert all(g["reasons"] and set(g) == {"marketplace", "item_id", "verdict", "risk", "tis_no", "licence_no", "reasons"}
               for g in got)
    assert f"{src}:3: item_id" in p.stderr and f"{src}:5:" in p.stderr and "2 invalid lines skipped" in p.stderr


def test_check_one_title_explains_in_thai_and_english(tmp_path):
    p = run(tmp_path, "check", "--registry", str(DATA / "dev_registry.csv"),
            "--title", "แบตสำรอง 20000mAh ใบอนุญาต น 3770 - 25 / 39 <b>x</b>", "--brand", "Zunomi")
    assert p.returncode == 0, p.stderr
    assert "mislabeled" in p.stdout and "น3770-25/39" in p.stdout
    assert "เป็นของเครื่องหมายการค้าอื่น" in p.stdout and "belongs to another brand" in p.stdout
    assert "licence_other_brand:น3770-25/39" in p.stdout


def test_eval_json_and_errors(tmp_path):
    p = run(tmp_path, "eval", str(DATA / "hard_cases.jsonl"), "--registry", str(DATA / "dev_registry.csv"), "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)[str(DATA / "hard_cases.jsonl")]
    assert r["listings"] == len((DATA / "hard_cases.jsonl").read_text("utf-8").splitlines())
    assert {"flag", "per_verdict", "macro_f1", "standard_accuracy", "licence_accuracy", "confusion", "worst"} <= set(r)
    assert r["no_reason"] == 0
    p = run(tmp_path, "eval", str(tmp_path / "missing.jsonl"), "--registry", str(DATA / "dev_registry.csv"))
    assert p.returncode == 2 and "no such file" in p.stderr
