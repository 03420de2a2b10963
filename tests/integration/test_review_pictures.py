"""The listing page's pictures panel: the kept picture with the claim's box drawn over it (SVG, no
script, no inline style), the picture served as the image it is, other listings using the same photo."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from images.reader import ReadOptions, read_image
from listings.model import Listing
from listings.store import open_store
from matching import check
from matching.image_claims import ImageClaim, claims_from_findings, licence_qr_url
from review.app import create_app
from review.db import open_appdb
from sandbox.images import ImageSpec, render

AT = datetime(2026, 11, 22, 3, tzinfo=UTC)
PW = "officer-pass-1"


@pytest.fixture(scope="module")
def app(tmp_path_factory, world, world_registry):
    from settings import load_settings

    s = load_settings(home=tmp_path_factory.mktemp("pics") / "home", environ={})
    s.ensure_home()
    st = open_store(s)
    w = next(x for x in world.listings if x.scenario == "unlicensed_unknown_brand")
    lst = Listing(**w.listing)
    pic = render(ImageSpec("p", "label", seed=4, brand="Voltex", qr=licence_qr_url("ท99999-9/99"), font="Loma.ttf"))
    r = read_image(pic, 1, ReadOptions(ocr=False))
    claims = claims_from_findings([r.findings])
    hostile = ImageClaim("qr_elsewhere", '<script>alert(1)</script>', "image:1", box=(5, 5, 50, 50), source="qr",
                         image_size=(r.width, r.height))
    v = check(lst, world_registry, image_claims=[*claims, hostile])
    assert v.verdict == "mislabeled"
    st.ingest(lst, v, AT)
    folder = s.evidence_dir / lst.marketplace / lst.item_id / "20261122T030000Z"
    folder.mkdir(parents=True)
    (folder / "image-01.jpg").write_bytes(pic)
    st.add_evidence(lst.key, "image:1", str((folder / "image-01.jpg").relative_to(s.home)), hashlib.sha256(pic).hexdigest(),
                    len(pic), AT)
    (folder / "image-02.jpg").write_bytes(b"<html><script>alert(1)</script></html>")
    st.add_evidence(lst.key, "image:2", str((folder / "image-02.jpg").relative_to(s.home)), "0" * 64, 38, AT)
    st.add_images(lst.key, [{"index": 1, "url": "https://cdn.example/p.jpg", "sha256": r.sha256, "phash": r.phash,
                             "width": r.width, "height": r.height}], AT)
    other = Listing(**{**world.listings[3].listing, "item_id": "copy-1", "seller": "ร้านอื่น", "seller_id": "other"})
    st.ingest(other, check(other, world_registry), AT)
    st.add_images(other.key, [{"index": 2, "url": "https://cdn.example/q.jpg", "sha256": "1" * 64, "phash": r.phash}], AT)
    st.close()
    db = open_appdb(s)
    db.add_user("off", PW, "officer")
    db.close()
    app = create_app(s)
    app.state.test_keys = (lst.key, other.key, r, claims)
    return app


def _login(app) -> TestClient:
    c = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": "off", "password": PW, "csrf": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    return c


def test_picture_with_the_claim_drawn_over_it(app):
    key, other, r, claims = app.state.test_keys
    c = _login(app)
    page = c.get(f"/listing/{key}")
    assert page.status_code == 200
    html = page.text
    panel = html[html.index('id="pictures"'):]
    assert f'viewBox="0 0 {r.width} {r.height}"' in panel
    eid = re.search(r'<image href="/listing/[^"]+/evidence/(\d+)"', panel).group(1)
    qr = next(x for x in claims if x.kind == "licence")
    x0, y0, x1, y1 = qr.box
    rect = re.search(r'<rect class="claim-box" x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"', panel)
    rx, ry, rw, rh = (int(v) for v in rect.groups())
    assert rx <= x0 and ry <= y0 and rx + rw >= x1 and ry + rh >= y1 and rw < r.width  # around the QR code, padded
    assert "ท99999-9/99" in panel
    # listing text is hostile: escaped in the SVG title and the caption, never a tag
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in panel
    assert " style=" not in panel and "<script" not in panel
    # the same photo in another shop's listing
    from urllib.parse import quote

    assert f'href="/listing/{quote(other, safe="")}#picture-2"' in panel and "ร้านอื่น" in panel
    # the picture itself, served as the JPEG it is
    img = c.get(f"/listing/{key}/evidence/{eid}")
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg" and img.content[:3] == b"\xff\xd8\xff"
    assert img.headers["x-content-type-options"] == "nosniff"


def test_the_api_gives_the_pictures_boxes_and_same_photos(app):
    key, other, r, _ = app.state.test_keys
    c = _login(app)
    pics = c.get(f"/api/v1/listings/{key}").json()["pictures"]
    one = next(p for p in pics if p["index"] == 1)
    assert (one["width"], one["height"], one["url"]) == (r.width, r.height, "https://cdn.example/p.jpg")
    assert any("ท99999-9/99" in b["label"] for b in one["boxes"])
    assert [(s["key"], s["index"], s["seller"]) for s in one["same"]] == [(other, 2, "ร้านอื่น")]


def test_a_kept_file_that_is_not_a_picture_is_not_served(app):
    key, *_ = app.state.test_keys
    c = _login(app)
    ev = next(i for i, e in enumerate(app.state.store.evidence(key)) if e["kind"] == "image:2")
    assert c.get(f"/listing/{key}/evidence/{ev}").status_code == 404


def test_a_listing_without_pictures_has_no_panel(app, world):
    _, other, *_ = app.state.test_keys
    c = _login(app)
    html = c.get(f"/listing/{other}").text
    # the copy has a stored picture but none kept: named, not shown
    assert 'id="pictures"' in html and "<image " not in html[html.index('id="pictures"'):]
