"""Evidence folders: written with a manifest of SHA-256s and both times, and verified later."""

import hashlib
import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from cli import app
from listings.evidence import EvidenceWriter, dumps_indented, manifests_under, verify_manifest

AT = datetime(2026, 11, 24, 3, 15, 9, tzinfo=UTC)


def write(tmp_path, item="123"):
    w = EvidenceWriter(tmp_path / "evidence")
    folder, files = w.save("lazada", item, "https://www.lazada.co.th/products/x-i123.html",
                           {"raw": ("response.html", "<html>ปลั๊กพ่วง</html>".encode()),
                            "screenshot": ("screenshot.png", b"\x89PNG\r\n\x1a\n...")}, AT, {"source_urls": ["u"]})
    return folder, files


def test_manifest_names_every_file_and_both_times(tmp_path):
    folder, files = write(tmp_path)
    m = json.loads((folder / "manifest.json").read_text())
    assert folder.name == "20261124T031509Z"
    assert m["captured_utc"] == "2026-11-24T03:15:09+00:00" and m["captured_bangkok"] == "2026-11-24T10:15:09+07:00"
    assert [f["name"] for f in m["files"]] == ["response.html", "screenshot.png"] and m["source_urls"] == ["u"]
    assert [f.kind for f in files] == ["raw", "screenshot", "manifest"]
    assert verify_manifest(folder) == [] and not list(folder.glob("*.part"))


def test_tampering_is_found(tmp_path):
    folder, _ = write(tmp_path)
    (folder / "response.html").write_text("<html>changed</html>")
    (folder / "screenshot.png").unlink()
    (folder / "note.txt").write_text("added later")
    problems = verify_manifest(folder)
    assert [p.split(": ", 1)[1] for p in problems] == ["SHA-256 differs from the manifest", "missing", "not in the manifest"]
    (folder / "manifest.json").write_text("{not json")
    assert "not a readable manifest" in verify_manifest(folder)[0]
    (folder / "manifest.json").unlink()
    assert verify_manifest(folder)[0].endswith("manifest.json: missing")


def test_cli_verifies_a_tree(tmp_path):
    a, _ = write(tmp_path, "1")
    b, _ = write(tmp_path, "2")
    assert manifests_under(tmp_path / "evidence") == [a, b] and manifests_under(a / "manifest.json") == [a]
    r = CliRunner().invoke(app, ["--home", str(tmp_path), "evidence", "verify"])
    assert r.exit_code == 0 and "intact: 2 evidence folders" in r.output
    (b / "response.html").write_bytes(b"x")
    r = CliRunner().invoke(app, ["--home", str(tmp_path), "evidence", "verify", str(tmp_path / "evidence")])
    assert r.exit_code == 1 and "response.html: SHA-256 differs" in r.output and "1 problems in 2" in r.output


def _nested(depth):
    x = {"leaf": [1]}
    for i in range(depth):
        x = [x, {"level": i}] if i % 2 else {"in": x}
    return x


@pytest.mark.parametrize("obj", [
    {}, [], "", 0, -3, 1.5, 1e300, None, True, False, "ปลั๊ก \"quoted\"\n\t\u2028 \x00",
    {"verdict": "unlicensed", "risk": 80, "claims": [{"kind": "tis", "value": "2432-2555", "span": [3, 9]}],
     "empty": {}, "none": [], "nested": [[1, [2, {}]], {"a": {"b": [None, True, 0.1]}}], "ไทย": "ข้อความ"},
    (1, (2, 3)),
    # left to the json module: NaN and infinities, keys that are not strings, subclasses
    {"x": float("nan"), "y": float("inf"), "z": -float("inf")}, {1: "a", None: "b", 2.5: "c", False: "d"},
    {"e": __import__("enum").IntEnum("E", "A B").B}, _nested(40),
])
def test_dumps_indented_is_json_dumps_with_indent_1(obj):
    assert dumps_indented(obj) == json.dumps(obj, ensure_ascii=False, indent=1)


def test_dumps_indented_refuses_what_json_refuses():
    with pytest.raises(TypeError):
        dumps_indented({"when": AT})


def test_a_second_capture_in_the_same_folder_replaces_the_files_and_the_manifest(tmp_path):
    """Two captures of one listing within one second share a folder: the second goes through
    temporary names (the first's manifest is there), and the manifest matches the files after it."""
    folder, _ = write(tmp_path)
    w = EvidenceWriter(tmp_path / "evidence")
    folder2, files = w.save("lazada", "123", "https://www.lazada.co.th/products/x-i123.html",
                            {"raw": ("response.html", b"<html>second</html>")}, AT)
    assert folder2 == folder and [f.kind for f in files] == ["raw", "manifest"]
    assert (folder / "response.html").read_bytes() == b"<html>second</html>" and not list(folder.glob("*.part"))
    m = json.loads((folder / "manifest.json").read_text())
    assert [f["name"] for f in m["files"]] == ["response.html"]
    assert files[-1].sha256 == hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    # the screenshot of the first capture is not in the second's manifest: verify says so
    assert verify_manifest(folder) == [f"{folder / 'screenshot.png'}: not in the manifest"]


def test_files_are_written_whole_with_opens_mode(tmp_path):
    """_write (os.open/os.write) writes every byte, replaces what was there, and gives the file the
    mode open(path, "wb") gives."""
    import os

    from listings.evidence import _write

    data = bytes(range(256)) * 40_000  # 10 MB: more than one write() may take
    _write(str(tmp_path / "a.bin"), data)
    _write(str(tmp_path / "b.bin"), b"longer content first")
    _write(str(tmp_path / "b.bin"), b"short")
    with open(tmp_path / "c.bin", "wb") as f:
        f.write(b"x")
    assert (tmp_path / "a.bin").read_bytes() == data and (tmp_path / "b.bin").read_bytes() == b"short"
    assert os.stat(tmp_path / "a.bin").st_mode == os.stat(tmp_path / "c.bin").st_mode
    with pytest.raises(FileNotFoundError):
        _write(str(tmp_path / "no" / "such.bin"), b"x")


@pytest.mark.parametrize("home, path", [
    ("/data/tw", "/data/tw/evidence/lazada/1/20261124T031509Z/manifest.json"),
    ("data", "data/evidence/x/response.html"),
    ("/data/tw", "/data/tw2/evidence/x.json"),   # a sibling folder: not under the home
    ("/", "/evidence/x.json"),
    ("/data/tw/", "/data/tw/evidence/x.json"),
])
def test_relative_path_is_relative_to(home, path):
    from pathlib import Path

    from crawlers.pipelines import relative_path

    try:
        want = str(Path(path).relative_to(Path(home)))
    except ValueError:
        with pytest.raises(ValueError):
            relative_path(Path(path), Path(home))
        return
    assert relative_path(Path(path), Path(home)) == want
