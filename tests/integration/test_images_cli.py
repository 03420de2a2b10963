"""`tiswatch images ...` as an officer or investigator uses it: read a picture, refuse what is not one,
find the listings that use the same photo."""

import json
from datetime import UTC, datetime

import pytest
from image_helpers import needs_tesseract
from typer.testing import CliRunner

import cli
from matching.image_claims import licence_qr_url
from sandbox.images import ImageSpec, render

runner = CliRunner()


@pytest.fixture
def tw(tmp_path, monkeypatch):
    for k in list(__import__("os").environ):
        if k.startswith("TISWATCH_"):
            monkeypatch.delenv(k)
    home = tmp_path / "home"

    def run(*args: str):
        cli.state._settings = None
        r = runner.invoke(cli.app, ["--home", str(run.home), *args], catch_exceptions=False)
        r.text = " ".join(r.output.split())
        return r

    run.home = home
    return run


@needs_tesseract
def test_read_prints_claims_with_boxes(tw, tmp_path):
    p = tmp_path / "label.jpg"
    p.write_bytes(render(ImageSpec("x", "label", seed=3, brand="Voltex", tis="2879-2560", qr=licence_qr_url("ท5137-2/10"),
                                   font="Loma.ttf")))
    r = tw("images", "read", "--json", str(p))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.splitlines()[0])
    got = {(c["kind"], c["value"], c["source"]) for c in out["claims"]}
    assert got == {("licence", "ท5137-2/10", "qr"), ("tis", "2879-2560", "ocr")}
    assert all(len(c["box"]) == 4 for c in out["claims"]) and len(out["phash"]) == 16
    r = tw("images", "read", str(p))
    assert r.exit_code == 0 and "the TISI QR code in image 1 names licence ท5137-2/10" in r.text


def test_read_refuses_what_is_not_a_picture(tw, tmp_path):
    bad = tmp_path / "page.jpg"
    bad.write_text("<!DOCTYPE html><html>captcha</html>")
    r = tw("images", "read", "--no-ocr", str(bad))
    flat = "".join(r.output.split())  # the terminal may wrap the long path anywhere
    assert r.exit_code == 1 and f"{bad}:" in flat and "HTMLcontent" in flat
    r = tw("images", "read", str(tmp_path / "missing.jpg"))
    assert r.exit_code == 1 and "missing.jpg" in "".join(r.output.split())


def test_same_and_find(tw, tmp_path):
    from images.decode import decode
    from images.reader import perceptual_hash
    from listings.model import Listing
    from listings.store import open_store
    from settings import load_settings

    photo = render(ImageSpec("p", "photo", seed=9, brand="Voltex"))
    ph = perceptual_hash(decode(photo).image)
    s = load_settings(home=tw.home, environ={})
    st = open_store(s)
    at = datetime(2026, 11, 22, 3, tzinfo=UTC)
    for item, seller in (("1", "ร้านเอ"), ("2", "ร้านบี")):
        lst = Listing(marketplace="shopee", item_id=item, title="พาวเวอร์แบงค์", seller=seller, seller_id=seller)
        st.ingest(lst, None, at)
        st.add_images(lst.key, [{"index": 1, "url": "u", "sha256": "0" * 64, "phash": ph}], at)
    st.close()
    r = tw("images", "same", "shopee:1")
    assert r.exit_code == 0 and "shopee:2" in r.text and "ร้านบี" in r.text and "1 sellers" in r.text
    r = tw("images", "same", "--json", "shopee:1")
    assert [json.loads(x)["key"] for x in r.stdout.splitlines()] == ["shopee:2"]
    f = tmp_path / "photo.jpg"
    f.write_bytes(photo)
    r = tw("images", "find", "--json", str(f))
    assert sorted(json.loads(x)["key"] for x in r.stdout.splitlines()) == ["shopee:1", "shopee:2"]
    r = tw("images", "find", ph)
    assert r.exit_code == 0 and "2 pictures" in r.text
    assert tw("images", "same", "shopee:404").exit_code == 1
    # the pictures travel with `store export` / `store import` (and `store reindex`)
    dump = tmp_path / "dump.jsonl"
    assert tw("store", "export", "--out", str(dump)).exit_code == 0
    assert sum(json.loads(x)["type"] == "listing_images" for x in dump.read_text("utf-8").splitlines()) == 2
    tw.home = tmp_path / "other"
    r = tw("store", "import", str(dump))
    assert r.exit_code == 0 and "bad line" not in r.text
    r = tw("images", "same", "--json", "shopee:1")
    assert [json.loads(x)["key"] for x in r.stdout.splitlines()] == ["shopee:2"]
