"""Reading one picture: QR codes (zxing-cpp), printed text (Tesseract, Thai and English models), and a
perceptual hash (imagehash) that finds the same photo on other listings.

Everything here is CPU work on pixels that are already decoded (images/decode.py); claims are made from
what is read by the pure functions of matching/image_claims.py. OCR is the slow part (a few tenths of a
second to seconds per picture), so the caller decides which pictures deserve it (`text_score`) and how
many per listing.

Pre-processing for OCR, each step measured by tests/bench/bench_images.py (figures in the README):
- upright: a QR code's orientation (zxing reports it) gives the label's; without a QR the skew is
  estimated from the projection profile of edges (text lines make sharp peaks) within ±15°, and a
  reading that says little asks Tesseract's orientation detection whether the picture is sideways;
- scale: a picture under 700 px is scaled up to a long side of 1,600 px (Tesseract reads strokes
  20-40 px high best; at most ×3), one over 2,400 px down to it (bounds the cost);
- mask: decoded QR codes are painted white (their modules otherwise read as letters glued to the
  TIS number beside them);
- threshold (off by default, measured worse): grey, a 3x3 median filter, then Otsu's threshold.
Boxes of the words read are mapped back to the original picture's pixels.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageFilter, ImageOps

from images.decode import Decoded, decode
from matching.image_claims import Box, ImageFindings, OcrWord, QrCode

# Tesseract spawns OpenMP threads per process; on a shared machine one per process is faster overall
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


@dataclass
class ReadOptions:
    qr: bool = True
    ocr: bool = True
    languages: str = "tha"       # Tesseract's Thai model reads the Latin letters and digits of labels too
    preprocess: bool = True      # False: none of the three steps below
    upright: bool = True
    rescale: bool = True
    binarize: bool = False       # measured: Tesseract's own Otsu does better on these pictures
    min_conf: float = 60.0
    timeout: float = 60.0        # seconds per Tesseract run (a hang guard; [images] ocr_timeout)
    target_side: int = 1600      # a picture with a long side under small_side is scaled up to this
    small_side: int = 700
    max_side: int = 2400         # and one over max_side down to it
    max_pixels: int = 25_000_000
    psm: int = 11                # Tesseract page segmentation: 11 = sparse text, as labels are

    def key(self) -> str:
        """The options that change what OCR reads: a cached reading made with others is not reused."""
        pre = f"{int(self.upright)}{int(self.rescale)}{int(self.binarize)}" if self.preprocess else "000"
        return f"v1:{self.languages}:{pre}:{self.psm}:{self.target_side}:{self.small_side}:{self.max_side}"


@dataclass
class ImageReading:
    """What was read from one picture; `findings` feeds matching.image_claims."""

    sha256: str
    phash: str
    format: str
    width: int
    height: int
    findings: ImageFindings
    text_score: float = 0.0
    ocr_done: bool = False
    angle: float = 0.0
    qr_orientation: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """A JSON-ready summary (the cache and the evidence manifest keep this)."""
        f = self.findings
        return {"sha256": self.sha256, "phash": self.phash, "format": self.format, "width": self.width,
                "height": self.height, "text_score": round(self.text_score, 4), "ocr": self.ocr_done,
                "angle": round(self.angle, 1), "qr_orientation": self.qr_orientation,
                "qr": [{"payload": q.payload, "box": list(q.box)} for q in f.qr],
                "words": [{"text": w.text, "box": list(w.box), "conf": round(w.conf, 1), "line": list(w.line),
                           "ubox": list(w.ubox) if w.ubox else None} for w in f.words]}

    @classmethod
    def from_record(cls, d: dict[str, Any], index: int) -> ImageReading:
        f = ImageFindings(index, d["width"], d["height"],
                          [QrCode(q["payload"], tuple(q["box"])) for q in d.get("qr", [])],  # type: ignore[arg-type]
                          [OcrWord(w["text"], tuple(w["box"]), w["conf"], tuple(w["line"]),  # type: ignore[arg-type]
                                   tuple(w["ubox"]) if w.get("ubox") else None) for w in d.get("words", [])])
        return cls(d["sha256"], d["phash"], d["format"], d["width"], d["height"], f, d.get("text_score", 0.0),
                   d.get("ocr", False), d.get("angle", 0.0), d.get("qr_orientation"))


@functools.lru_cache(maxsize=8)
def tesseract_available(languages: str = "tha") -> bool:
    """Tesseract is installed with every model of `languages` ("tha", "tha+eng"): without the model
    every OCR run would fail, so callers fall back to QR codes only."""
    if shutil.which("tesseract") is None:
        return False
    import pytesseract

    try:
        have = set(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractError, OSError, RuntimeError):
        return False
    return all(lang in have for lang in languages.split("+") if lang)


# ---- perceptual hash and QR --------------------------------------------------------------------
def perceptual_hash(img: Image.Image) -> str:
    """64-bit DCT perceptual hash as 16 hex digits: the same photo re-encoded, resized or lightly
    edited stays within a few bits."""
    import imagehash

    return str(imagehash.phash(img))


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass(frozen=True)
class _Qr:
    payload: str
    box: Box
    orientation: int


def read_qr_codes(img: Image.Image) -> list[_Qr]:
    import zxingcpp

    fmt = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.MicroQRCode)
    out = []
    seen = set()
    for r in zxingcpp.read_barcodes(img, formats=fmt):
        if not r.valid or r.text in seen:
            continue
        seen.add(r.text)
        p = r.position
        xs = [p.top_left.x, p.top_right.x, p.bottom_right.x, p.bottom_left.x]
        ys = [p.top_left.y, p.top_right.y, p.bottom_right.y, p.bottom_left.y]
        out.append(_Qr(r.text, (min(xs), min(ys), max(xs), max(ys)), int(r.orientation)))
    return out


# ---- which pictures carry text -------------------------------------------------------------------
def _edges(gray: Image.Image):
    import numpy as np

    a = np.asarray(gray, dtype=np.int16)
    gx = np.abs(np.diff(a, axis=1))[:-1, :]
    gy = np.abs(np.diff(a, axis=0))[:, :-1]
    return (np.maximum(gx, gy) > 40).astype(np.float32)


def text_score(img: Image.Image) -> float:
    """How likely the picture carries printed text, 0..1: the share of rows, in a 256-px thumbnail,
    whose edges come in many short runs (strokes of letters) rather than a few long ones (a product's
    outline). Cheap (a few ms); used to pick the pictures worth OCR."""
    import numpy as np

    g = ImageOps.grayscale(img)
    g.thumbnail((256, 256))
    e = _edges(g)
    if e.size == 0:
        return 0.0
    transitions = np.abs(np.diff(e, axis=1)).sum(axis=1)  # edge on/off switches per row
    return float((transitions >= 12).mean())


def estimate_skew(img: Image.Image, max_angle: float = 15.0, step: float = 1.0) -> float:
    """The small rotation (degrees, PIL's counter-clockwise sense) that makes text lines horizontal:
    the angle whose projection of edges onto rows is sharpest (text lines make tall, narrow peaks).
    Only near-horizontal text is searched; sideways text is Tesseract's orientation detection's job."""
    import numpy as np

    g = ImageOps.grayscale(img)
    g.thumbnail((400, 400))
    e = Image.fromarray((_edges(g) * 255).astype(np.uint8))
    scores: dict[float, float] = {}
    n = int(max_angle / step)
    for k in range(-n, n + 1):
        a = k * step
        r = np.asarray(e.rotate(a, resample=Image.Resampling.NEAREST, expand=True), dtype=np.float32)
        rows = r.sum(axis=1)
        scores[a] = float(np.square(np.diff(rows)).sum()) / max(1.0, float(rows.sum()))
    best = max(scores, key=lambda a: scores[a])
    # an upright picture stays upright unless another angle is clearly sharper
    return best if scores[best] > 1.15 * scores[0.0] else 0.0


def osd_rotation(img: Image.Image, opts: ReadOptions) -> int:
    """Tesseract's orientation detection: 0, 90, 180 or 270 (degrees clockwise to turn the picture);
    0 when it cannot tell (too little text)."""
    import pytesseract

    try:
        o = pytesseract.image_to_osd(img, config="--psm 0", output_type=pytesseract.Output.DICT, timeout=opts.timeout)
    except (pytesseract.TesseractError, RuntimeError):
        return 0
    return int(o.get("rotate", 0)) if float(o.get("orientation_conf", 0)) >= 1.5 else 0


# ---- OCR -------------------------------------------------------------------------------------------
@dataclass
class _Transform:
    """From the prepared picture's pixels back to the original's: undo the scale, then the rotation."""

    angle: float
    scale: float
    src_size: tuple[int, int]
    rot_size: tuple[int, int]

    def point(self, x: float, y: float) -> tuple[float, float]:
        x, y = x / self.scale, y / self.scale
        cx, cy = self.rot_size[0] / 2, self.rot_size[1] / 2
        ox, oy = self.src_size[0] / 2, self.src_size[1] / 2
        t = math.radians(self.angle)
        dx, dy = x - cx, y - cy
        # PIL rotates counter-clockwise on screen (y down): the inverse turns (dx, dy) back
        return ox + dx * math.cos(t) - dy * math.sin(t), oy + dx * math.sin(t) + dy * math.cos(t)

    def box(self, b: Box) -> Box:
        pts = [self.point(x, y) for x in (b[0], b[2]) for y in (b[1], b[3])]
        w, h = self.src_size
        x0 = max(0, min(w, int(min(p[0] for p in pts))))
        y0 = max(0, min(h, int(min(p[1] for p in pts))))
        x1 = max(0, min(w, math.ceil(max(p[0] for p in pts))))
        y1 = max(0, min(h, math.ceil(max(p[1] for p in pts))))
        return (x0, y0, x1, y1)


def mask_codes(img: Image.Image, boxes: list[Box]) -> Image.Image:
    """The picture with its decoded QR codes painted white: their modules read as stray letters glued
    to the TIS number printed beside them ("2217-254868"), and what they say is known already."""
    if not boxes:
        return img
    from PIL import ImageDraw

    out = img.copy()
    d = ImageDraw.Draw(out)
    for x0, y0, x1, y1 in boxes:
        m = max(4, (x1 - x0) // 12)  # the quiet zone around the code
        d.rectangle((x0 - m, y0 - m, x1 + m, y1 + m), fill=(255, 255, 255))
    return out


def prepare(img: Image.Image, angle: float, opts: ReadOptions) -> tuple[Image.Image, _Transform]:
    """The picture as Tesseract should see it, and how to map its pixels back."""
    src = img.size
    if angle:
        img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    rot = img.size
    g = ImageOps.grayscale(img)
    scale = 1.0
    if opts.preprocess and opts.rescale:
        long_side = max(g.size)
        if long_side < opts.small_side:  # thumbnails: letters too small for Tesseract
            scale = min(3.0, opts.target_side / long_side)
        elif long_side > opts.max_side:  # very large pictures: bound the cost
            scale = opts.max_side / long_side
        if abs(scale - 1.0) > 0.1:
            g = g.resize((round(g.width * scale), round(g.height * scale)), Image.Resampling.LANCZOS)
        else:
            scale = 1.0
    if opts.preprocess and opts.binarize:
        g = g.filter(ImageFilter.MedianFilter(3))
        g = _otsu(g)
    return g, _Transform(angle, scale, src, rot)


def _otsu(g: Image.Image) -> Image.Image:
    import numpy as np

    hist = np.asarray(g.histogram()[:256], dtype=np.float64)
    total = hist.sum()
    if total == 0:
        return g
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1 = total - w0
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 / total - m0) ** 2 / (w0 * w1)
    t = int(np.nanargmax(between))
    return g.point(lambda v: 255 if v > t else 0)


def ocr_words(img: Image.Image, angle: float, opts: ReadOptions) -> list[OcrWord]:
    """Words Tesseract reads in the picture turned by `angle`, boxes in the original's pixels."""
    import pytesseract

    prepared, tf = prepare(img, angle, opts)
    data = pytesseract.image_to_data(prepared, lang=opts.languages, config=f"--oem 1 --psm {opts.psm}",
                                     output_type=pytesseract.Output.DICT, timeout=opts.timeout)
    out: list[OcrWord] = []
    for i, text in enumerate(data["text"]):
        text = (text or "").strip()
        conf = float(data["conf"][i])
        if not text or conf < 0:
            continue
        b = (data["left"][i], data["top"][i], data["left"][i] + data["width"][i], data["top"][i] + data["height"][i])
        out.append(OcrWord(text, tf.box(b), conf, (data["block_num"][i], data["par_num"][i], data["line_num"][i]), b))
    return out


def _quality(words: list[OcrWord]) -> float:
    """Characters read with confidence: how much a reading says."""
    return sum(len(w.text) for w in words if w.conf >= 60)


def ocr_upright(img: Image.Image, opts: ReadOptions, qr_orientation: int | None,
                qr_boxes: list[Box] | None = None) -> tuple[list[OcrWord], float]:
    """OCR with the picture turned upright. A QR code's orientation settles it when there is one;
    otherwise the small skew is estimated, and if that reading says little, Tesseract's orientation
    detection is asked whether the picture is sideways or upside down (paid only for such pictures).
    Decoded QR codes are masked first (mask_codes)."""
    if opts.preprocess and qr_boxes:
        img = mask_codes(img, qr_boxes)
    if not (opts.preprocess and opts.upright):
        return ocr_words(img, 0.0, opts), 0.0
    if qr_orientation is not None and qr_orientation % 360:
        base = float(qr_orientation)
        turned = img.rotate(base, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
        return _ocr_turned(img, turned, base, opts), base
    angle = estimate_skew(img)
    words = ocr_words(img, angle, opts)
    if _quality(words) >= 40:
        return words, angle
    rot = osd_rotation(img, opts)
    if not rot:
        return words, angle
    base = float(-rot)
    turned = img.rotate(base, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    again = _ocr_turned(img, turned, base, opts)
    return (again, base) if _quality(again) > _quality(words) else (words, angle)


def _ocr_turned(img: Image.Image, turned: Image.Image, base: float, opts: ReadOptions) -> list[OcrWord]:
    """OCR of `turned` (img rotated by `base`) after its own small deskew, boxes mapped to `img`."""
    small = estimate_skew(turned)
    return ocr_words(img, base + small, opts)


def confirm_weak_claims(img: Image.Image, reading: ImageReading, opts: ReadOptions, limit: int = 3) -> int:
    """A TIS or licence number that OCR read with less than `min_conf` confidence is read a second
    time on its own: its line cut out, turned upright, enlarged, read as a raw line. When the second
    reading gives the same number, the two agree and the words' confidence is raised to `min_conf`
    (the claim counts); otherwise it stays doubtful (dropped). Returns how many were confirmed."""
    import pytesseract

    from matching.image_claims import claims_from_words

    words = reading.findings.words
    strong = {(c.kind, c.value) for c in claims_from_words(1, words, min_conf=opts.min_conf)}
    weak = [c for c in claims_from_words(1, words) if c.kind in ("tis", "licence") and (c.kind, c.value) not in strong]
    confirmed = 0
    for c in weak[:limit]:
        x0, y0, x1, y1 = c.box
        pad = max(8, (min(x1 - x0, y1 - y0)) // 2)
        crop = img.crop((max(0, x0 - pad), max(0, y0 - pad), min(img.width, x1 + pad), min(img.height, y1 + pad)))
        if reading.angle:
            crop = crop.rotate(reading.angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
        g = ImageOps.grayscale(crop)
        f = max(1.0, min(4.0, 160 / max(1, g.height)))  # the line about 50-60 px high
        g = g.resize((round(g.width * f), round(g.height * f)), Image.Resampling.LANCZOS)
        data = pytesseract.image_to_data(g, lang=opts.languages, config="--oem 1 --psm 13",  # a raw line
                                         output_type=pytesseract.Output.DICT, timeout=opts.timeout)
        again = [OcrWord(tx.strip(), (data["left"][i], data["top"][i], data["left"][i] + data["width"][i],
                                      data["top"][i] + data["height"][i]), float(data["conf"][i]), (1, 1, 1))
                 for i, tx in enumerate(data["text"]) if (tx or "").strip() and float(data["conf"][i]) >= 0]
        if (c.kind, c.value) not in {(k.kind, k.value) for k in claims_from_words(1, again)}:
            continue
        confirmed += 1
        for i, w in enumerate(words):
            b = w.box
            if b[0] >= x0 and b[1] >= y0 and b[2] <= x1 and b[3] <= y1 and w.conf < opts.min_conf:
                words[i] = OcrWord(w.text, w.box, opts.min_conf, w.line, w.ubox)
    return confirmed


# ---- one picture ---------------------------------------------------------------------------------
def look(data: bytes, index: int, opts: ReadOptions | None = None) -> tuple[ImageReading, Decoded]:
    """The cheap pass over a picture: decode (refusing bombs and non-images with
    images.decode.ImageRefused), perceptual hash, QR codes, text score. `index` is 1-based."""
    opts = opts or ReadOptions()
    t0 = time.perf_counter()
    d = decode(data, opts.max_pixels)
    img = d.image
    sec: dict[str, float] = {"decode": time.perf_counter() - t0}
    t = time.perf_counter()
    ph = perceptual_hash(img)
    sec["phash"] = time.perf_counter() - t
    findings = ImageFindings(index, d.width, d.height)
    orientation = None
    if opts.qr:
        t = time.perf_counter()
        codes = read_qr_codes(img)
        findings.qr = [QrCode(q.payload, q.box) for q in codes]
        if codes:
            orientation = codes[0].orientation
        sec["qr"] = time.perf_counter() - t
    t = time.perf_counter()
    score = text_score(img)
    sec["score"] = time.perf_counter() - t
    reading = ImageReading(hashlib.sha256(data).hexdigest(), ph, d.format, d.width, d.height, findings, score,
                           qr_orientation=orientation, seconds=sec)
    return reading, d


def add_ocr(reading: ImageReading, decoded: Decoded, opts: ReadOptions) -> ImageReading:
    """The slow pass: the printed text, with the picture turned upright (see ocr_upright); claims read
    with too little confidence are read again on their own (confirm_weak_claims)."""
    t = time.perf_counter()
    reading.findings.words, reading.angle = ocr_upright(decoded.image, opts, reading.qr_orientation,
                                                        [q.box for q in reading.findings.qr])
    if opts.preprocess:
        confirm_weak_claims(decoded.image, reading, opts)
    reading.ocr_done = True
    reading.seconds["ocr"] = time.perf_counter() - t
    return reading


def read_image(data: bytes, index: int, opts: ReadOptions | None = None, do_ocr: bool | None = None) -> ImageReading:
    """Both passes; OCR when `do_ocr` (default: opts.ocr)."""
    opts = opts or ReadOptions()
    reading, decoded = look(data, index, opts)
    if opts.ocr if do_ocr is None else do_ocr:
        add_ocr(reading, decoded, opts)
    return reading
