"""Opening untrusted pictures: what is refused, and why."""

import io
import struct
import zlib

import pytest
from PIL import Image

from images.decode import ImageRefused, content_type_ok, decode, sniff
from images.fetch import refusal


def _png(w, h, mode="RGB", color=(200, 10, 10)):
    buf = io.BytesIO()
    Image.new(mode, (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def _bomb_png(w, h):
    """A valid PNG header declaring w x h pixels with a tiny compressed body: a decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = zlib.compress(b"\x00" * (1 + w) * 64, 9)  # a few rows only: nothing to inflate before the check
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, fmt", [
    (b"\xff\xd8\xff\xe0rest", "JPEG"), (b"\x89PNG\r\n\x1a\nrest", "PNG"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"),
    (b"GIF89a...", "GIF"), (b"GIF87a...", "GIF"), (b"<!DOCTYPE html>", None), (b"<svg xmlns=", None), (b"", None),
    (b"II*\x00", None),  # TIFF is not served by marketplaces
])
def test_sniff(data, fmt):
    assert sniff(data) == fmt


@pytest.mark.parametrize("data, why", [
    (b"", "empty body"),
    (b"<!DOCTYPE html><html><body>captcha</body></html>", "HTML content"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG content"),
    (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "broken PNG"),
    (_png(8, 8), "too small"),
])
def test_refused_with_a_reason(data, why):
    with pytest.raises(ImageRefused) as e:
        decode(data)
    assert why in e.value.why


def test_decompression_bomb_refused_before_decoding():
    data = _bomb_png(60_000, 60_000)
    assert len(data) < 10_000
    with pytest.raises(ImageRefused) as e:
        decode(data, max_pixels=25_000_000)
    assert "decompression" in e.value.why and ("60000x60000" in e.value.why or "3600000000" in e.value.why)


@pytest.mark.parametrize("w, h", [(6000, 5000), (60_000, 20)])
def test_over_the_limit_refused_whatever_guard_fires(w, h):
    # 30 Mpx: between Pillow's warning and error; 60000 px wide: under the pixel count, over the side limit
    with pytest.raises(ImageRefused) as e:
        decode(_bomb_png(w, h), max_pixels=25_000_000, max_side=20_000)
    assert "over the limit" in e.value.why or "decompression" in e.value.why


def test_limit_is_the_callers():
    data = _png(400, 300)
    assert decode(data, max_pixels=120_000).width == 400
    with pytest.raises(ImageRefused):
        decode(data, max_pixels=119_999)


def test_a_callers_low_limit_is_not_left_to_the_rest_of_the_process():
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageRefused):
        decode(_png(400, 300), max_pixels=100_000)
    assert before == Image.MAX_IMAGE_PIXELS
    assert decode(_png(960, 960)).width == 960  # the default limit, after a low one
    assert Image.open(io.BytesIO(_png(960, 960))).size == (960, 960)  # and Pillow used directly


def test_truncated_jpeg_refused():
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(buf, "JPEG")
    with pytest.raises(ImageRefused) as e:
        decode(buf.getvalue()[:400])
    assert "broken JPEG" in e.value.why


def test_transparency_becomes_white_and_animation_first_frame():
    d = decode(_png(40, 40, "RGBA", (0, 0, 0, 0)))
    assert d.image.mode == "RGB" and d.image.getpixel((5, 5)) == (255, 255, 255)
    frames = [Image.new("RGB", (50, 50), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    d = decode(buf.getvalue())
    assert d.format == "GIF" and d.image.getpixel((10, 10))[0] > 200


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (200, 100), (255, 255, 255))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    d = decode(buf.getvalue())
    assert (d.width, d.height) == (100, 200)


@pytest.mark.parametrize("header, ok", [("image/jpeg", True), ("image/png; charset=binary", True), (None, True),
                                        ("application/octet-stream", True), ("text/html; charset=utf-8", False),
                                        ("image/svg+xml", False), ("application/json", False)])
def test_content_type(header, ok):
    assert content_type_ok(header) is ok


@pytest.mark.parametrize("status, ctype, length, why", [
    (200, "image/jpeg", "1000", None), (200, "image/jpeg", None, None), (404, "text/html", None, "HTTP 404"),
    (200, "text/html", "10", "not an image"), (200, "image/png", "6000000", "over the limit"),
    (200, "image/png", "abc", "bad Content-Length"), (302, "image/png", None, "HTTP 302"),
])
def test_refusal(status, ctype, length, why):
    r = refusal(status, ctype, length, 5_000_000)
    assert (r is None) if why is None else (why in r)
