"""Reading pictures: QR codes, the text score, perceptual hashes, skew, box mapping, OCR claims.
Pictures come from the sandbox's generator (sandbox/images.py), so they are the ones a crawl meets."""

import io

import pytest
from image_helpers import needs_tesseract
from PIL import Image, ImageDraw

from images.reader import (
    ReadOptions,
    _Transform,
    estimate_skew,
    hamming,
    perceptual_hash,
    prepare,
    read_image,
    read_qr_codes,
    text_score,
)
from matching.image_claims import claims_from_findings, licence_qr_url
from sandbox.images import ImageSpec, render


def _spec(kind="label", seed=3, **kw):
    base = {"brand": "Voltex", "model": "PB-2001", "font": "Loma.ttf"}
    return ImageSpec("t", kind, seed=seed, **{**base, **kw})


def _img(spec):
    return Image.open(io.BytesIO(render(spec))).convert("RGB")


@pytest.mark.parametrize("angle, scale", [(0, 1.0), (7, 1.0), (-12, 2.0), (90, 1.0), (-90, 0.5), (180, 1.5), (33, 3.0)])
def test_boxes_map_back_to_the_original(angle, scale):
    src = Image.new("RGB", (400, 300), (255, 255, 255))
    ImageDraw.Draw(src).rectangle((300, 50, 309, 59), fill=(0, 0, 0))
    rot = src.rotate(angle, expand=True, fillcolor=(255, 255, 255))
    prep = rot.resize((round(rot.width * scale), round(rot.height * scale)))
    dark = [(x, y) for x in range(prep.width) for y in range(prep.height) if prep.getpixel((x, y))[0] < 100]
    box = (min(p[0] for p in dark), min(p[1] for p in dark), max(p[0] for p in dark) + 1, max(p[1] for p in dark) + 1)
    back = _Transform(angle, scale, src.size, rot.size).box(box)
    # the box holds the square and is centred on it (a tilted box's corners widen it a little)
    assert back[0] <= 301 and back[1] <= 51 and back[2] >= 309 and back[3] >= 59
    assert abs((back[0] + back[2]) / 2 - 305) <= 2 and abs((back[1] + back[3]) / 2 - 55) <= 2
    assert back[2] - back[0] <= 10 + 12 and back[3] - back[1] <= 10 + 12


def test_prepare_scales_only_small_pictures():
    opts = ReadOptions()
    _, tf = prepare(Image.new("RGB", (400, 300), "white"), 0.0, opts)
    assert tf.scale == 3.0
    _, tf = prepare(Image.new("RGB", (900, 900), "white"), 0.0, opts)
    assert tf.scale == 1.0
    _, tf = prepare(Image.new("RGB", (4800, 1000), "white"), 0.0, opts)
    assert tf.scale == 0.5
    _, tf = prepare(Image.new("RGB", (400, 300), "white"), 0.0, ReadOptions(preprocess=False))
    assert tf.scale == 1.0


@pytest.mark.parametrize("angle, quality, noise", [(0, 90, 0), (90, 90, 0), (-14, 90, 0), (0, 18, 0), (0, 90, 24), (180, 60, 0)])
def test_licence_qr_read_in_every_variant(angle, quality, noise):
    url = licence_qr_url("ท5137-2/10")
    img = _img(_spec(qr=url, tis="2879-2560", angle=angle, quality=quality, noise=noise))
    codes = read_qr_codes(img)
    assert [c.payload for c in codes] == [url]
    x0, y0, x1, y1 = codes[0].box
    assert 0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height and (x1 - x0) > 50


def test_text_score_separates_labels_from_photos():
    for seed in range(6):
        photo = text_score(_img(_spec("photo", seed=seed)))
        label = text_score(_img(_spec("label", seed=seed, tis="166-2549", licence_text="ท1-2/3")))
        assert photo < 0.2 <= label, (seed, photo, label)


def test_perceptual_hash_survives_reencoding_not_another_photo():
    a = _img(_spec("photo", seed=5))
    buf = io.BytesIO()
    a.resize((500, 500)).save(buf, "JPEG", quality=40)
    b = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    assert hamming(perceptual_hash(a), perceptual_hash(b)) <= 4
    others = [perceptual_hash(_img(_spec("photo", seed=s))) for s in range(6, 12)]
    assert min(hamming(perceptual_hash(a), o) for o in others) > 4
    assert len(perceptual_hash(a)) == 16


@pytest.mark.parametrize("angle", [0, 5, -9, 13])
def test_skew_estimate(angle):
    img = _img(_spec(tis="2432-2555", licence_text="ท1234-5/67", angle=angle))
    assert abs(estimate_skew(img) + angle) <= 1.5


def _claims(spec, **opts):
    r = read_image(render(spec), 2, ReadOptions(**opts))
    return r, {(c.kind, c.value): c for c in claims_from_findings([r.findings], min_conf=60)}


@needs_tesseract
def test_ocr_reads_the_mark_and_the_licence_with_boxes():
    spec = _spec(tis="2879-2560", licence_text="ท5137-2/10")
    r, cs = _claims(spec)
    assert set(cs) == {("tis", "2879-2560"), ("licence", "ท5137-2/10")}
    for c in cs.values():
        assert c.where == "image:2" and c.source == "ocr" and c.image_size == (r.width, r.height)
        x0, y0, x1, y1 = c.box
        assert 0 <= x0 < x1 <= r.width and 0 <= y0 < y1 <= r.height and (y1 - y0) < r.height / 5
    assert cs[("tis", "2879-2560")].box[1] < cs[("licence", "ท5137-2/10")].box[1]  # printed above it


@needs_tesseract
@pytest.mark.parametrize("angle", [-9, 90])
def test_ocr_turns_the_picture_upright(angle):
    spec = _spec(tis="2432-2555", tis_form="มอก.{}", angle=angle)
    _, raw = _claims(spec, preprocess=False)
    r, cs = _claims(spec)
    assert ("tis", "2432-2555") in cs
    if abs(angle) == 90:
        assert ("tis", "2432-2555") not in raw  # what the pre-processing is for (a small tilt Tesseract takes)
    assert abs(r.angle + angle) <= 2 or abs(r.angle + angle - 360) <= 2 or abs(r.angle + angle + 360) <= 2


@needs_tesseract
def test_photo_gives_no_claim():
    _, cs = _claims(_spec("photo", seed=8))
    assert cs == {}


@needs_tesseract
@pytest.mark.parametrize("variant, spoil", [("scaled", {"scale": 0.45}), ("jpeg", {"quality": 18}), ("noisy", {"noise": 22.0}),
                                            ("rotated", {"angle": -11.0}), ("rotated", {"angle": -90.0})])
def test_claims_read_in_every_variant_of_the_sandbox_pictures(variant, spoil):
    # the variants the sandbox marketplaces serve (bench_images.py measures recall and precision over many)
    spec = _spec(tis="2217-2548", tis_form="TIS {}", licence_text="ท3051-1/28", variant=variant, seed=11, **spoil)
    _, cs = _claims(spec)
    assert set(cs) == {("tis", "2217-2548"), ("licence", "ท3051-1/28")}
