"""The sandbox's pictures: deterministic, true to each listing's truth, and claims moved out of the text
only where the world asks for it."""

import pytest

from matching.claims import read_claims
from sandbox.images import IMAGES_PER_LISTING, ImageBook, plan_images, render, strip_claims
from sandbox.shapes import image_id
from sandbox.world import build_world


@pytest.mark.parametrize("text, out", [
    ("พาวเวอร์แบงค์ Volta มอก. 2879-2560 ส่งไว", "พาวเวอร์แบงค์ Volta ส่งไว"),
    ("ปลั๊กพ่วง (มอก.2432-2555) 3 ช่อง", "ปลั๊กพ่วง 3 ช่อง"),
    ("พัดลม [ มอก 934-2558 ] 16 นิ้ว", "พัดลม 16 นิ้ว"),
    ("หม้อหุงข้าว ใบอนุญาตเลขที่ ท5137-2/10 ของแท้", "หม้อหุงข้าว ของแท้"),
    ("Rice cooker Licence no. น12-3/456", "Rice cooker"),
    ("✅ ไดร์เป่าผม\n✔️ มอก. 60335 เล่ม 2(23)-2564\n📌 พร้อมส่ง", "✅ ไดร์เป่าผม\n📌 พร้อมส่ง"),
    ("เสื้อยืด ไซส์ M", "เสื้อยืด ไซส์ M"),
])
def test_strip_claims(text, out):
    got = strip_claims(text)
    assert got == out
    assert [c for c in read_claims({"t": got}) if c.kind in ("tis", "licence")] == []


def test_default_world_keeps_its_text_and_gets_pictures(world):
    assert not any("/" in w.scenario for w in world.listings)
    for w in world.listings:
        names = [image_id(w, i) for i in range(IMAGES_PER_LISTING[w.marketplace])]
        assert all(n in world.images for n in names)
    assert {s.kind for s in world.images.values()} >= {"photo", "label", "combo", "line_qr"}
    assert any(s.reused_from for s in world.images.values())


def test_image_only_world(catalogue):
    w = build_world(seed=5, n_listings=90, catalogue=catalogue, image_only_share=0.7)
    text_world = build_world(seed=5, n_listings=90, catalogue=catalogue)
    only = [x for x in w.listings if x.scenario.endswith("/image_only")]
    fake = [x for x in w.listings if x.scenario.endswith("/fake_qr")]
    assert len(only) >= 8 and fake
    for x in only:
        # no claim left in the text, and the pictures show the claim it had
        fields = {"title": x.listing["title"], "description": x.listing["description"]}
        assert [c for c in read_claims(fields) if c.kind in ("tis", "licence")] == []
        before = next(t for t in text_world.listings if t.item_id == x.item_id)
        had = {(c.kind, c.value) for c in read_claims({"t": before.listing["title"], "d": before.listing["description"]})
               if c.kind in ("tis", "licence")}
        shows = {s for i in range(IMAGES_PER_LISTING[x.marketplace]) for s in w.images[image_id(x, i)].shows}
        assert had <= shows and x.expected == before.expected
    for x in fake:
        assert x.expected["verdict"] == "mislabeled"
        assert any(k == "licence" for i in range(IMAGES_PER_LISTING[x.marketplace]) for k, _ in w.images[image_id(x, i)].shows)


def test_pictures_are_deterministic_and_jpeg(catalogue):
    a = build_world(seed=9, n_listings=20, catalogue=catalogue)
    b = build_world(seed=9, n_listings=20, catalogue=catalogue)
    assert {k: (s.kind, s.variant, s.shows, s.seed) for k, s in a.images.items()} == \
           {k: (s.kind, s.variant, s.shows, s.seed) for k, s in b.images.items()}
    name = next(k for k, s in a.images.items() if s.kind == "label")
    data = render(a.images[name])
    assert data == render(b.images[name]) and data[:3] == b"\xff\xd8\xff"
    book = ImageBook(a)
    assert book.get(name) == (data, "image/jpeg") and book.get("no-such-picture") is None


def test_plan_is_repeatable_on_the_same_world(catalogue):
    w = build_world(seed=3, n_listings=30, catalogue=catalogue)
    first = {k: s.shows for k, s in w.images.items()}
    plan_images(w)
    assert {k: s.shows for k, s in w.images.items()} == first
