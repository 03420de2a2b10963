"""Pictures for the sandbox marketplaces, drawn from the world's listings: product photos, packaging
labels carrying the TIS mark with its number, licence QR codes (a real licence, a fake one, a look-alike
site), a shop's LINE QR; each in a variant a crawler meets on real sites: clean, rotated, scaled down,
JPEG-compressed hard, or noisy. Deterministic: the same world gives the same bytes.

`plan_images(world, image_only_share)` decides what each listing's pictures show (by its scenario and
its truth) and, for a share of the listings whose claim is in the text, moves the claim out of the text
into a picture ("image only"): the truth stays what it was, but only a reader of images can reach it.
Some listings without a claim get a fake licence QR ("fake_qr"), which makes them mislabeled.
`ImageBook(world).get(name)` renders one picture by the name the marketplace pages use for it.

The images' own truth (`ImageSpec.shows`) is what the benchmark and the tests score claims against.
"""

from __future__ import annotations

import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matching.claims import read_claims
from matching.image_claims import licence_qr_url
from matching.normalise import clean

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from sandbox.world import World, WorldListing

FONT_DIR = Path("/usr/share/fonts/truetype/tlwg")
LABEL_FONTS = ("Loma.ttf", "Loma-Bold.ttf", "Garuda.ttf", "Garuda-Bold.ttf", "Waree.ttf", "Waree-Bold.ttf",
               "Norasi.ttf", "Sawasdee-Bold.ttf", "Umpush.ttf", "Kinnari-Bold.ttf")
CLEAR_FONTS = ("Loma.ttf", "Garuda.ttf", "Waree.ttf", "Umpush.ttf")
VARIANTS = ("clean", "rotated", "scaled", "jpeg", "noisy")
# images per listing as the sandbox pages show them (sandbox/shapes.py: image_id(wl, 0..n-1))
IMAGES_PER_LISTING = {"shopee": 2, "lazada": 2, "shop": 1}
_LICENCE_LABEL = re.compile(r"(?:ใบอนุญาตเลขที่|เลขที่ใบอนุญาต|ใบอนุญาต|Licen[cs]e\s*no\.?)\s*$", re.IGNORECASE)
_LOOKALIKE_HOSTS = ("tisi-verify.com", "tisi-check.net", "check-tisi.co", "tisi.go.th.verify-licence.io")
_DISTRACTORS = ("220-240V~ 50/60Hz", "โทร 02-118-2230", "ผลิต 03/2567", "Made in China", "นำเข้าโดย บริษัท ตัวอย่าง จำกัด",
                "Lot No. 2405-118", "ขนาด 12 x 8 x 3 ซม.", "รับประกัน 1 ปี", "IP20", "Input 5V 2A", "www.example-shop.co.th")


@dataclass
class ImageSpec:
    """What one picture shows and how it is spoiled. kind: photo, label, combo (photo and label side
    by side, for sites with one picture), line_qr (a shop's LINE QR banner)."""

    name: str
    kind: str
    variant: str = "clean"
    seed: int = 0
    brand: str = ""
    model: str = ""
    tis: str | None = None          # printed under the TIS mark
    tis_form: str = "มอก. {}"
    licence_text: str | None = None  # printed as "ใบอนุญาตเลขที่ ..."
    qr: str | None = None            # the QR payload
    angle: float = 0.0
    scale: float = 1.0
    quality: int = 90
    noise: float = 0.0
    font: str = "Loma.ttf"
    shows: list[tuple[str, str]] = field(default_factory=list)  # the claims a perfect reader finds
    reused_from: str | None = None   # the name of the picture this one copies (one operator, many shops)
    big: bool = False                # the claim printed a size larger (a claim made only in the picture)

    @property
    def content_type(self) -> str:
        return "image/jpeg"


# ---- planning ------------------------------------------------------------------------------------
def _text_claims(listing: dict[str, Any]) -> list[tuple[str, str]]:
    fields = {"title": listing.get("title"), "description": listing.get("description")}
    return [(c.kind, c.value) for c in read_claims(fields) if c.kind in ("tis", "licence")]


def strip_claims(text: str) -> str:
    """The text without its TIS and licence claims (and the words that introduce a licence number)."""
    s = "\n".join(clean(line) for line in (text or "").split("\n"))
    for _ in range(5):
        cs = [c for c in read_claims({"t": s}) if c.kind in ("tis", "licence")]
        if not cs:
            break
        for c in sorted(cs, key=lambda c: c.span[0], reverse=True):
            a, b = c.span
            before = _LICENCE_LABEL.search(s[:a]) if c.kind == "licence" else None
            if before:
                a = before.start()
            s = s[:a] + s[b:]
        s = re.sub(r"[(\[【]\s*[)\]】]", "", s)
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in s.split("\n")]
    return "\n".join(ln for ln in lines if ln.strip("✔️ ")).strip()


def image_name(wl: WorldListing, i: int) -> str:
    from sandbox.shapes import image_id

    return image_id(wl, i)


def plan_images(world: World, image_only_share: float = 0.0, fake_qr_share: float | None = None,
                reuse_share: float = 0.15) -> dict[str, ImageSpec]:
    """Decide every listing's pictures; returns name -> spec (also kept as world.images).

    With image_only_share > 0, that share of the listings whose claim is in the text get it moved into
    a picture, and a third of that share of unlicensed listings get a fake licence QR (truth becomes
    mislabeled). Both change the listing itself, so a world built with a share is a different world.
    `reuse_share` of the unlicensed and mislabeled listings re-use another seller's cover photo."""
    fake_qr_share = image_only_share / 3 if fake_qr_share is None else fake_qr_share
    book: dict[str, ImageSpec] = {}
    for wl in world.listings:
        rng = random.Random(f"images:{world.seed}:{wl.marketplace}:{wl.item_id}")
        for spec in _plan_listing(world, wl, rng, image_only_share, fake_qr_share):
            book[spec.name] = spec
    _reuse_photos(world, book, reuse_share)
    world.images = book
    return book


def _reuse_photos(world: World, book: dict[str, ImageSpec], share: float) -> None:
    """One operator behind several shops: a share of the flagged listings take the cover photo of
    another seller's listing of the same product (re-encoded or resized, as a copy is)."""
    rng = random.Random(f"reuse:{world.seed}")
    by_std: dict[str, list[WorldListing]] = {}
    for wl in world.listings:
        if wl.expected.get("verdict") in ("unlicensed", "mislabeled") and wl.expected.get("tis_no"):
            by_std.setdefault(wl.expected["tis_no"], []).append(wl)
    for group in by_std.values():
        for wl in group:
            if rng.random() >= share:
                continue
            others = [o for o in group if o.listing.get("seller_id") != wl.listing.get("seller_id")]
            if not others:
                continue
            src = book[image_name(rng.choice(others), 0)]
            if src.reused_from or src.kind != "photo" or src.variant not in ("clean", "jpeg", "scaled"):
                continue
            dst = book[image_name(wl, 0)]
            if dst.kind != "photo":
                continue
            dst.seed, dst.brand, dst.reused_from = src.seed, src.brand, src.name
            dst.variant = rng.choice(("clean", "jpeg", "scaled"))
            dst.angle, dst.noise = 0.0, 0.0
            dst.scale = rng.uniform(0.6, 0.9) if dst.variant == "scaled" else 1.0
            dst.quality = rng.randrange(40, 70) if dst.variant == "jpeg" else 90


def _brand_model(world: World, wl: WorldListing) -> tuple[str, str]:
    lic_no = wl.expected.get("licence_no")
    if lic_no:
        lic = next((x for x in world.licences if x.licence_no == lic_no), None)
        if lic is not None:
            return lic.trademarks[0], (lic.models[0] if lic.models else "")
    b = wl.listing.get("brand") or ""
    if not b:
        m = re.search(r"\b([A-Z][a-z]{3,})\b", wl.listing.get("title") or "")
        b = m.group(1) if m else ""
    return b, ""


def _plan_listing(world: World, wl: WorldListing, rng: random.Random, image_only_share: float,
                  fake_qr_share: float) -> list[ImageSpec]:
    n = IMAGES_PER_LISTING.get(wl.marketplace, 1)
    brand, model = _brand_model(world, wl)
    claims = _text_claims(wl.listing)
    label: dict[str, Any] | None = None
    scen = wl.scenario
    if claims and image_only_share and rng.random() < image_only_share and scen.startswith(("mislabeled", "licensed")):
        # the claim leaves the text and appears only in a picture: truth unchanged
        before = wl.listing["title"], wl.listing.get("description")
        wl.listing["title"] = strip_claims(wl.listing["title"]) or wl.listing["title"]
        wl.listing["description"] = strip_claims(wl.listing.get("description") or "")
        if _text_claims(wl.listing):
            wl.listing["title"], wl.listing["description"] = before
        else:
            wl.scenario = scen + "/image_only"
            label = {**_label_for(claims, rng, qr_share=0.5), "only": True}
    elif scen == "unlicensed_unknown_brand" and fake_qr_share and rng.random() < fake_qr_share:
        fake = f"{rng.choice('ทน')}{rng.randrange(90000, 99999)}-{rng.randrange(1, 9)}/{rng.randrange(1, 70)}"
        label = {"qr_licence": fake, "tis": wl.expected.get("tis_no") if rng.random() < 0.5 else None, "only": True}
        wl.scenario = scen + "/fake_qr"
        wl.expected = {**wl.expected, "verdict": "mislabeled"}
    elif scen.startswith("licensed") and wl.expected.get("licence_no") and rng.random() < 0.35:
        lic = next((x for x in world.licences if x.licence_no == wl.expected["licence_no"]), None)
        label = {"qr_licence": wl.expected["licence_no"], "tis": lic.tis_no if lic and rng.random() < 0.7 else None}
    elif claims and rng.random() < 0.2:
        label = _label_for(claims, rng, qr_share=0.3)
    r = rng.random()
    extra = "line_qr" if r < 0.08 else "lookalike" if r < 0.12 and not wl.expected.get("licence_no") else None

    specs: list[ImageSpec] = []
    for i in range(n):
        name = image_name(wl, i)
        if n == 1:
            kind = "combo" if label else ("line_qr" if extra == "line_qr" else "photo")
        elif i == 0:
            kind = "photo"
        else:
            kind = "label" if label else ("line_qr" if extra == "line_qr" else "lookalike" if extra == "lookalike" else "photo")
        specs.append(_spec(name, kind, rng, brand, model, label if kind in ("label", "combo") else None, wl))
    return specs


def _label_for(claims: list[tuple[str, str]], rng: random.Random, qr_share: float) -> dict[str, Any]:
    label: dict[str, Any] = {}
    for kind, value in claims:
        if kind == "tis" and "tis" not in label:
            label["tis"] = value
        elif kind == "licence" and "qr_licence" not in label and "licence_text" not in label:
            label["qr_licence" if rng.random() < qr_share else "licence_text"] = value
    return label


def _spec(name: str, kind: str, rng: random.Random, brand: str, model: str, label: dict[str, Any] | None,
          wl: WorldListing) -> ImageSpec:
    variant = rng.choice(VARIANTS)
    spec = ImageSpec(name, kind, variant, rng.randrange(1 << 30), brand, model, font=rng.choice(LABEL_FONTS))
    if label and label.get("only"):
        # a claim shown only in a picture is shown to be read: clean, or mildly compressed or scaled
        # (the hard variants are measured by tests/bench/bench_images.py, not made into verdicts)
        # and printed as the mark's number is: "มอก. NNNN-YYYY" in a plain bold face, a size larger
        spec.variant = rng.choice(("clean", "clean", "jpeg", "scaled"))
        spec.font = rng.choice(CLEAR_FONTS)
        spec.big = True
        if spec.variant == "jpeg":
            spec.quality = rng.randrange(55, 80)
        elif spec.variant == "scaled":
            spec.scale = rng.uniform(0.75, 0.9)
    elif variant == "rotated":
        spec.angle = rng.choice((-1, 1)) * rng.uniform(4, 14) if rng.random() < 0.75 else rng.choice((90.0, -90.0))
    elif variant == "scaled":
        spec.scale = rng.uniform(0.35, 0.6)
    elif variant == "jpeg":
        spec.quality = rng.randrange(15, 30)
    elif variant == "noisy":
        spec.noise = rng.uniform(14, 26)
    if label:
        if label.get("tis"):
            spec.tis = label["tis"]
            spec.tis_form = "มอก. {}" if spec.big else rng.choice(("มอก. {}", "มอก.{}", "มอก. {}", "TIS {}"))
            spec.shows.append(("tis", label["tis"]))
        if label.get("licence_text"):
            spec.licence_text = label["licence_text"]
            spec.shows.append(("licence", label["licence_text"]))
        if label.get("qr_licence"):
            spec.qr = licence_qr_url(label["qr_licence"])
            spec.shows.append(("licence", label["qr_licence"]))
    if kind == "line_qr":
        shop = re.sub(r"[^a-z0-9]", "", (wl.listing.get("seller") or "shop").lower()) or "shop"
        spec.qr = f"https://line.me/R/ti/p/@{shop}{rng.randrange(10, 99)}"
        spec.shows.append(("qr_elsewhere", "line.me"))
    if kind == "lookalike":
        host = rng.choice(_LOOKALIKE_HOSTS)
        spec.qr = f"https://{host}/verify?id={rng.randrange(100000, 999999)}"
        spec.shows.append(("qr_lookalike", host))
        spec.kind = "label"
    return spec


# ---- drawing -------------------------------------------------------------------------------------
def _font(name: str, size: int):
    from PIL import ImageFont

    path = FONT_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: Thai font missing; install the Debian package fonts-thai-tlwg (./dev setup does)")
    return ImageFont.truetype(str(path), size)


def _qr_image(payload: str, box: int) -> PILImage.Image:
    import segno
    from PIL import Image

    q = segno.make(payload, error="m", micro=False)
    buf = io.BytesIO()
    q.save(buf, kind="png", scale=max(2, box // (q.symbol_size(border=2)[0])), border=2)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _photo(d, img, rng: random.Random, spec: ImageSpec, x0: int, y0: int, w: int, h: int) -> None:
    """A product-like picture: a background with its own light, a few props, the product with a
    highlight, its brand, a sales badge. Composition, colours and sizes all vary, so two listings'
    photos differ as real ones do (their perceptual hashes are far apart) unless one is re-used."""
    c1 = tuple(rng.randrange(60, 250) for _ in range(3))
    c2 = tuple(rng.randrange(20, 250) for _ in range(3))
    vertical = rng.random() < 0.5
    span = h if vertical else w
    for k in range(span):
        t = k / max(1, span - 1)
        col = tuple(int(a + (b - a) * t) for a, b in zip(c1, c2, strict=True))
        d.line([(x0, y0 + k), (x0 + w, y0 + k)] if vertical else [(x0 + k, y0), (x0 + k, y0 + h)], fill=col)
    for _ in range(rng.randrange(2, 6)):  # props and shadows
        px, py = x0 + rng.uniform(0, w * 0.8), y0 + rng.uniform(0, h * 0.8)
        pw, ph = rng.uniform(w * 0.1, w * 0.5), rng.uniform(h * 0.1, h * 0.5)
        col = tuple(rng.randrange(0, 256) for _ in range(3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)((px, py, px + pw, py + ph), fill=col)
    body = tuple(rng.randrange(10, 160) for _ in range(3))
    bw, bh = rng.uniform(0.3, 0.6) * w, rng.uniform(0.3, 0.7) * h
    bx0, by0 = x0 + rng.uniform(0.05, 0.95 - bw / w) * w, y0 + rng.uniform(0.1, 0.95 - bh / h) * h
    bx1, by1 = bx0 + bw, by0 + bh
    if rng.random() < 0.5:
        d.rounded_rectangle((bx0, by0, bx1, by1), radius=int(min(bw, bh) * 0.12), fill=body)
    else:
        d.ellipse((bx0, by0, bx1, by1), fill=body)
    d.rounded_rectangle((bx0 + bw * 0.1, by0 + bh * 0.1, bx0 + bw * 0.22, by1 - bh * 0.1), radius=8,
                        fill=tuple(min(255, v + 70) for v in body))
    if spec.brand:
        f = _font("Loma-Bold.ttf", max(14, int(bw * 0.12)))
        d.text(((bx0 + bx1) / 2, (by0 + by1) / 2), spec.brand.upper(), font=f, fill=(240, 240, 240), anchor="mm")
    badge = rng.choice(("ส่งฟรี", "ลด 50%", "ของแท้ 100%", "NEW", "ขายดี", "พร้อมส่ง"))
    f = _font("Garuda-Bold.ttf", max(12, int(w * 0.045)))
    bxx = x0 + 10 if rng.random() < 0.5 else x0 + w * 0.66
    d.rectangle((bxx, y0 + 10, bxx + w * 0.32, y0 + 10 + h * 0.09), fill=(220, 30, 40))
    d.text((bxx + w * 0.16, y0 + 10 + h * 0.045), badge, font=f, fill=(255, 255, 255), anchor="mm")


def _tis_mark(d, x: int, y: int, s: int) -> None:
    """A drawing in the spirit of the TIS mark (an emblem in a circle); the number goes under it."""
    d.ellipse((x, y, x + s, y + s), outline=(0, 0, 0), width=max(2, s // 18))
    d.polygon([(x + s * 0.5, y + s * 0.18), (x + s * 0.8, y + s * 0.72), (x + s * 0.2, y + s * 0.72)], outline=(0, 0, 0),
              width=max(2, s // 22))
    d.arc((x + s * 0.3, y + s * 0.38, x + s * 0.7, y + s * 0.78), 200, 340, fill=(0, 0, 0), width=max(2, s // 22))


def _label(d, img, rng: random.Random, spec: ImageSpec, x0: int, y0: int, w: int, h: int) -> None:
    """A packaging label: brand and model, some print that is not a claim, the mark, its number, the
    licence number and the QR code, as far as the spec has them."""
    bg = (255, 255, 255) if rng.random() < 0.7 else (246, 242, 228)
    d.rectangle((x0, y0, x0 + w, y0 + h), fill=bg, outline=(60, 60, 60), width=3)
    pad = int(w * 0.05)
    fs = max(16, int(w * 0.045))
    big = _font(spec.font, int(fs * 1.5))
    f = _font(spec.font, fs)
    y = y0 + pad
    head = " ".join(x for x in (spec.brand.upper(), spec.model) if x) or "PRODUCT"
    d.text((x0 + pad, y), head, font=big, fill=(20, 20, 20))
    y += int(fs * 2.2)
    for line in rng.sample(_DISTRACTORS, 2):
        d.text((x0 + pad, y), line, font=f, fill=(60, 60, 60))
        y += int(fs * 1.5)
    mark = int(min(w, h) * 0.22)
    my = y + int(fs * 0.5)
    qs = int(min(w, h) * 0.34)
    has_mark = spec.tis is not None or spec.licence_text is not None or (spec.qr and "tisi" in spec.qr)
    if has_mark:
        _tis_mark(d, x0 + pad, my, mark)
        ty = my + mark + int(fs * 0.4)
        lines = []
        if spec.tis:
            lines.append(spec.tis_form.format(spec.tis))
        if spec.licence_text:
            lines.append(f"ใบอนุญาตเลขที่ {spec.licence_text}")
        for text in lines:
            lf = _font(spec.font, int(fs * 1.3)) if spec.big else f
            while d.textlength(text, font=lf) > w - 2 * pad and lf.size > 10:  # never cut a number off
                lf = _font(spec.font, lf.size - 2)
            d.text((x0 + pad, ty), text, font=lf, fill=(0, 0, 0))
            ty += int(lf.size * 1.5)
    if spec.qr:
        q = _qr_image(spec.qr, qs)
        # beside the mark, clear of the text under it
        img.paste(q, (x0 + w - pad - q.width, my))


def _line_qr(d, img, rng: random.Random, spec: ImageSpec, x0: int, y0: int, w: int, h: int) -> None:
    d.rectangle((x0, y0, x0 + w, y0 + h), fill=(6, 199, 85))
    f = _font("Garuda-Bold.ttf", max(16, int(w * 0.06)))
    d.text((x0 + w / 2, y0 + h * 0.12), "แอดไลน์ร้าน สอบถามได้เลย", font=f, fill=(255, 255, 255), anchor="mm")
    q = _qr_image(spec.qr or "", int(min(w, h) * 0.55))
    img.paste(q, (int(x0 + (w - q.width) / 2), int(y0 + h * 0.25)))


def render(spec: ImageSpec, size: int = 800) -> bytes:
    """The picture as JPEG bytes."""
    from PIL import Image, ImageDraw

    rng = random.Random(spec.seed)
    if spec.kind == "combo":
        img = Image.new("RGB", (size * 2, size), (255, 255, 255))
        photo = Image.new("RGB", (size, size), (255, 255, 255))  # drawn apart: its props stay in its half
        _photo(ImageDraw.Draw(photo), photo, rng, spec, 0, 0, size, size)
        img.paste(photo, (0, 0))
        d = ImageDraw.Draw(img)
        _label(d, img, rng, spec, size + 10, 40, size - 50, size - 80)
    else:
        img = Image.new("RGB", (size, size), (255, 255, 255))
        d = ImageDraw.Draw(img)
        if spec.kind == "label":
            # the packaging photographed: a label somewhere on a box, on a table of some colour
            _photo(d, img, rng, ImageSpec("", "photo"), 0, 0, size, size)
            lw, lh = int(size * rng.uniform(0.72, 0.9)), int(size * rng.uniform(0.7, 0.9))
            lx, ly = rng.randrange(8, size - lw - 8), rng.randrange(8, size - lh - 8)
            _label(d, img, rng, spec, lx, ly, lw, lh)
        elif spec.kind == "line_qr":
            _line_qr(d, img, rng, spec, 0, 0, size, size)
        else:
            _photo(d, img, rng, spec, 0, 0, size, size)
    img = spoil(img, spec)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=spec.quality)
    return buf.getvalue()


def spoil(img: PILImage.Image, spec: ImageSpec) -> PILImage.Image:
    """Apply the spec's variant: rotation, down-scaling, noise (JPEG quality is applied on saving)."""
    from PIL import Image

    if spec.angle:
        img = img.rotate(spec.angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    if spec.scale != 1.0:
        img = img.resize((max(1, int(img.width * spec.scale)), max(1, int(img.height * spec.scale))), Image.Resampling.LANCZOS)
    if spec.noise:
        import numpy as np

        a = np.asarray(img, dtype=np.float32)
        a += np.random.default_rng(spec.seed).normal(0, spec.noise, a.shape).astype(np.float32)
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return img


class ImageBook:
    """The world's pictures by name, rendered on first use and kept (bounded)."""

    def __init__(self, world: World, cache: int = 2000):
        self.specs: dict[str, ImageSpec] = getattr(world, "images", None) or plan_images(world)
        self._cache: dict[str, bytes] = {}
        self._max = cache

    def get(self, name: str) -> tuple[bytes, str] | None:
        spec = self.specs.get(name)
        if spec is None:
            return None
        data = self._cache.get(name)
        if data is None:
            data = render(spec)
            if len(self._cache) < self._max:
                self._cache[name] = data
        return data, spec.content_type
