"""Opening an image from the network without trusting it.

A listing's pictures come from sellers and CDNs we do not control. Before any pixel is decoded we
check what the bytes are (by their magic number, not by the Content-Type header or the URL), how large
the picture claims to be (a small PNG can declare 60,000 x 60,000 pixels and inflate to gigabytes: a
decompression bomb), and we decode only the first frame of an animation. Pillow's own guard
(`Image.MAX_IMAGE_PIXELS`, 89 Mpx by default) stays as a second line of defence, its warning turned
into an error. It is process-wide, so it is only ever raised (to a caller's higher limit), never
lowered: a caller's lower limit once became every later caller's (a test of a small limit made another
test's 960x960 picture a "decompression bomb"), and the caller's own limit is checked here anyway.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps

# formats marketplaces serve; anything else (SVG, TIFF, BMP, HEIC, PDF, HTML) is refused
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
CONTENT_TYPES = ("image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/webp", "image/gif",
                 "application/octet-stream", "binary/octet-stream")
DEFAULT_MAX_PIXELS = 25_000_000
MIN_SIDE = 16
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageRefused(ValueError):
    """The bytes are not an image we read; `why` says what was wrong, for the crawl log."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


def sniff(data: bytes) -> str | None:
    """The image format from the first bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def content_type_ok(header: str | None) -> bool:
    """A Content-Type an image may come with (missing is allowed: the bytes are sniffed anyway)."""
    if not header:
        return True
    return header.split(";")[0].strip().lower() in CONTENT_TYPES


@dataclass
class Decoded:
    image: Image.Image  # RGB, upright (EXIF orientation applied), first frame
    format: str
    width: int
    height: int


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int = 20_000) -> Decoded:
    """Decode an untrusted image or raise ImageRefused saying why."""
    if not data:
        raise ImageRefused("empty body")
    fmt = sniff(data)
    if fmt is None:
        head = data[:32].lstrip().lower()
        what = "HTML" if head.startswith((b"<!doctype", b"<html")) else "SVG" if b"<svg" in data[:512].lower() else "unknown"
        raise ImageRefused(f"not a JPEG, PNG, WebP or GIF image ({what} content)")
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels  # never lowered: see the module's docstring
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=[fmt])
            w, h = img.size  # from the header: nothing is decoded yet
            if w * h > max_pixels or max(w, h) > max_side:
                raise ImageRefused(f"{w}x{h} pixels is over the limit of {max_pixels:,} (a decompression bomb?)")
            if min(w, h) < MIN_SIDE:
                raise ImageRefused(f"{w}x{h} pixels is too small to show anything")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img) or img
            rgb = _rgb(img)
        except ImageRefused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageRefused(f"refused by the decompression-bomb guard: {e}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise ImageRefused(f"broken {fmt} image: {e}") from None
    return Decoded(rgb, fmt, rgb.width, rgb.height)


def _rgb(img: Image.Image) -> Image.Image:
    """RGB on white: transparent pixels (PNG, GIF, WebP) become white, as a page shows them."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return img.convert("RGB") if img.mode != "RGB" else img
