"""Claims read from a listing's images: TISI licence QR codes and text printed in the picture. Pure.

The image reader (images/reader.py) turns pixels into findings: the payload and position of every QR
code, and the words Tesseract read with their boxes and confidence. This module turns findings into
`Claim`s with the SAME claim reader as listing text (`matching.claims.read_claims`), so a `มอก.` number
or a licence number is recognised in a picture exactly as in a title. Each claim says where it was
found: `where` is "image:N" (N counts from 1, as an officer counts the pictures on the page) and `box`
is the rectangle in the original image's pixels, for the review page to highlight.

What a TISI licence QR code contains
------------------------------------
Since 2021 the TIS mark carries a QR code that "brings the consumer to the TISI website to display the
licence of the product" (TISI announcement, in force 20 July 2021). TISI publishes each licence as a
PDF at

    https://appdb.tisi.go.th/tis_dev/p4_license_report/file/<licence as a file name>.pdf

where the file name is the licence number written the way TISI's own e-licence system writes it
(`ConvertLicenseNoToFileName`): spaces and "(" dropped, ")" "-" and "/" turned into "_", so licence
ท7036-30/2915 is `ท7036_30_2915.pdf` (percent-encoded in the URL). The standards lookup carries a TIS
number (`p4license_report.php?data=tis&txt_tis=1040-2541`). We recognise, on the host tisi.go.th or
any of its sub-domains (and nowhere else):

- a licence number in the path or the query, in the file-name form (`ท7036_30_2915`) or as written
  (`ท7036-30/2915`, percent-encoded or not) -> a licence claim, checked against the registry like one
  in the title;
- a TIS number with its year in a `txt_tis`, `tis` or `tis_no` parameter -> a TIS claim (a bare `n=`
  number is TISI's internal page id, not a TIS number, and is not read);
- anything else on a TISI host -> "a QR pointing to TISI that names no licence" (a note, no claim).

A QR whose host merely *looks* like TISI's (`tisi-check.com`, `tisi.go.th.verify.io`,
`tisi.go.th@evil.example`) is a look-alike: a licence number in it is still read as a claim (the seller
shows it to buyers), and the look-alike is recorded. Any other URL is recorded as "a QR pointing
elsewhere" (a LINE shop, a payment link). A QR holding plain text is read like listing text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from matching.claims import Claim, read_claims
from matching.normalise import clean
from matching.reasons import code
from registry.tisno import parse_licence_no, parse_tis

TISI_HOST = "tisi.go.th"
LICENCE_PDF = "https://appdb.tisi.go.th/tis_dev/p4_license_report/file/{}.pdf"
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the original image's pixels

# the licence as a TISI file name: ท7036_30_2915 (type, number, _a, _b)
_LIC_FILE = re.compile(r"(?<![ก-๙A-Za-z])(?P<t>นค|ท|น|ส)(?P<n>\d{1,6})_(?P<a>\d{1,6})_(?P<b>\d{1,6})(?!\d)")
_LIC_WRITTEN = re.compile(r"(?<![ก-๙A-Za-z])(?P<lic>(?:นค|ท|น|ส)\s*\.?\s*\d{1,6}\s*-\s*\d{1,6}\s*/\s*\d{1,6})(?!\d)")
_TIS_PARAMS = ("txt_tis", "tis", "tis_no", "tisno")


@dataclass(frozen=True, slots=True)
class ImageClaim(Claim):
    """A claim read from an image: `where` is "image:N"; box in that image's pixels; source "qr"/"ocr"."""

    box: Box = (0, 0, 0, 0)
    source: str = ""
    image_size: tuple[int, int] = (0, 0)
    confidence: float = 100.0

    @property
    def image(self) -> int:
        return image_number(self.where) or 0


def image_number(where: str) -> int | None:
    """3 for "image:3"; None for a text field."""
    if where.startswith("image:"):
        try:
            return int(where[6:])
        except ValueError:
            return None
    return None


# ---- QR codes ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QrReading:
    """What one QR payload says. kind: tisi_licence, tisi_standard, tisi (names nothing we can read),
    lookalike (a host dressed up as TISI's), elsewhere (any other URL), text (not a URL)."""

    kind: str
    payload: str
    host: str = ""
    licence_no: str | None = None
    tis_no: str | None = None


def licence_file_name(licence_no: str) -> str:
    """TISI's file name for a licence (ConvertLicenseNoToFileName): ท7036-30/2915 -> ท7036_30_2915."""
    s = licence_no.replace("(", "").replace(")", "_").replace(" ", "")
    return s.replace("-", "_").replace("/", "_")


def licence_qr_url(licence_no: str) -> str:
    """The URL a TISI licence QR code carries: the licence's PDF on appdb.tisi.go.th."""
    return LICENCE_PDF.format(quote(licence_file_name(licence_no)))


def is_tisi_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == TISI_HOST or host.endswith("." + TISI_HOST)


def _looks_like_tisi(host: str) -> bool:
    h = host.lower()
    squeezed = re.sub(r"[^a-z0-9]", "", h)
    return "tisi" in squeezed or "สมอ" in h or "tis-go" in h


def _licence_in(text: str) -> str | None:
    m = _LIC_FILE.search(text)
    if m:
        return parse_licence_no(f"{m['t']}{m['n']}-{m['a']}/{m['b']}")
    m = _LIC_WRITTEN.search(clean(text))
    return parse_licence_no(m["lic"]) if m else None


def read_qr(payload: str) -> QrReading:
    """Classify one decoded QR payload (see the module docstring for the formats)."""
    raw = (payload or "").strip()
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", raw) and not raw.lower().startswith("www."):
        return QrReading("text", raw)
    try:
        parts = urlsplit(raw if "://" in raw else "http://" + raw)
        host = (parts.hostname or "").lower()
    except ValueError:
        return QrReading("text", raw)
    if not host:
        return QrReading("text", raw)
    where = unquote(parts.path) + "?" + "&".join(f"{k}={v}" for k, v in parse_qsl(parts.query, keep_blank_values=True))
    tisi = is_tisi_host(host)
    if not tisi and not _looks_like_tisi(host):
        return QrReading("elsewhere", raw, host)
    lic = _licence_in(where)
    tis = None
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k.lower() in _TIS_PARAMS:
            t = parse_tis(v)
            if t is not None and t.year is not None:
                tis = str(t)
                break
    if not tisi:
        return QrReading("lookalike", raw, host, lic, tis)
    if lic:
        return QrReading("tisi_licence", raw, host, lic, tis)
    if tis:
        return QrReading("tisi_standard", raw, host, None, tis)
    return QrReading("tisi", raw, host)


# ---- findings (what the image reader saw) --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QrCode:
    payload: str
    box: Box


@dataclass(frozen=True, slots=True)
class OcrWord:
    """A word Tesseract read: its text, box in the original image, confidence 0-100, the (block,
    paragraph, line) it belongs to, and its box in the picture as Tesseract saw it (turned upright,
    scaled), by which words are put in reading order."""

    text: str
    box: Box
    conf: float
    line: tuple[int, int, int] = (0, 0, 0)
    ubox: Box | None = None

    @property
    def layout(self) -> Box:
        return self.ubox or self.box


@dataclass
class ImageFindings:
    index: int  # 1-based position of the image in the listing
    width: int = 0
    height: int = 0
    qr: list[QrCode] = field(default_factory=list)
    words: list[OcrWord] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"image:{self.index}"


def union(boxes: Iterable[Box]) -> Box:
    bs = list(boxes)
    if not bs:
        return (0, 0, 0, 0)
    return (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))


def _height(b: Box) -> int:
    return max(1, b[3] - b[1])


def visual_lines(words: Sequence[OcrWord]) -> list[list[list[int]]]:
    """Word indices as a person reads them: rows top to bottom, each a list of runs left to right, a
    run a list of words. Tesseract's lines (which keep a Thai letter's vowel and tone marks with it)
    are merged into one row when they sit side by side (sparse-text mode cuts a row into blocks); a
    wide gap starts a new run (a photo's caption beside a label's text is not the same line)."""
    units: dict[tuple[int, int, int], list[int]] = {}
    for i, w in enumerate(words):
        units.setdefault(w.line, []).append(i)
    boxes = {k: union(words[i].layout for i in v) for k, v in units.items()}
    rows: list[tuple[Box, list[tuple[int, int, int]]]] = []
    for k in sorted(units, key=lambda k: (boxes[k][1] + boxes[k][3]) / 2):
        b = boxes[k]
        for n, (rb, members) in enumerate(rows):
            overlap = min(rb[3], b[3]) - max(rb[1], b[1])
            if overlap >= 0.5 * min(_height(rb), _height(b)):
                members.append(k)
                rows[n] = (union([rb, b]), members)
                break
        else:
            rows.append((b, [k]))
    rows.sort(key=lambda r: r[0][1])
    out: list[list[list[int]]] = []
    for _, members in rows:
        runs: list[list[int]] = []
        prev: Box | None = None
        for k in sorted(members, key=lambda k: boxes[k][0]):
            b = boxes[k]
            if prev is None or b[0] - prev[2] > 2.5 * max(_height(prev), _height(b)):
                runs.append([])
            runs[-1].extend(units[k])
            prev = b if prev is None else union([prev, b])
        out.append(runs)
    return out


_MARK_END = re.compile(r"(?:ม\s*\.?\s*อ\s*\.?\s*ก\s*\.?|TIS|ใบอนุญาต|เลขที่|licen[cs]e(?:\s*no\.?)?)\s*[:：#]?$", re.IGNORECASE)


def ocr_segments(words: Sequence[OcrWord]) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """The words as pieces of text that are each read for claims on their own, with (start, end,
    word index) of each word in its piece.

    A piece is one run of a row (see visual_lines): claims and the clues around them ("ปี" before a
    number makes it a date) never cross from one row to another, except that a row ending in a mark or
    a licence label ("มอก.", "ใบอนุญาตเลขที่") goes on with the next row, as a printed mark does. Within
    a run, words are joined with a space only where the gap is wide: more than a quarter of their height,
    or most of it between two Thai letters (Tesseract cuts Thai, which has no spaces, into short words)."""
    pieces: list[tuple[str, list[tuple[int, int, int]]]] = []
    carry: tuple[str, list[tuple[int, int, int]]] | None = None
    for runs in visual_lines(words):
        for run in runs:
            text, spans = carry if carry is not None else ("", [])
            carry = None
            if text:
                text += " "
            right: int | None = None
            last_h = 0
            for i in run:
                w = words[i]
                t = clean(w.text)
                if not t:
                    continue
                h = _height(w.layout)
                if right is not None:
                    gap = w.layout[0] - right
                    thai = _is_thai(text[-1:]) and _is_thai(t[:1])
                    if gap > max(h, last_h) * (0.8 if thai else 0.25):
                        text += " "
                spans.append((len(text), len(text) + len(t), i))
                text += t
                if right is None or w.layout[2] > right:
                    right, last_h = w.layout[2], h
            if not spans:
                continue
            if _MARK_END.search(text):
                carry = (text, spans)
            else:
                pieces.append((text, spans))
    if carry is not None:
        pieces.append(carry)
    return pieces


def _is_thai(ch: str) -> bool:
    return bool(ch) and "\u0e00" <= ch <= "\u0e7f"


def ocr_text(words: Sequence[OcrWord]) -> str:
    """All the text read, pieces joined by " ; " (for logs and debugging)."""
    return " ; ".join(fix_ocr(t)[0] for t, _ in ocr_segments(words))


# confusions Tesseract makes around claims
_OCR_FIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"แล่ม(?=\s*\d)"), "เล่ม"),                           # แ for เ in "เล่ม"
    # "มอก." read as Latin look-alikes (Tesseract 5, tha+eng: "Nan. 60335 เล่ม 2(32)-2564"); only before a number
    (re.compile(r"(?<![A-Za-z])[NW][ao][nh]\.(?=\s*\d)"), "มอก."),
    # a part number's closing parenthesis lost: "60335 เล่ม 2(32-2564" for 2(32)-2564
    (re.compile(r"(?<=\d\()(\d{1,3})(?=-\d{4})"), r"\1)"),
    (re.compile(r"(?<=\d)[lI|](?=\d)"), "1"),                         # l, I, | between digits
    (re.compile(r"ใ\s*บ\s*อ\s*น\s*ุ\s*ญ\s*า\s*ต"), "ใบอนุญาต"),      # a label word cut in pieces
    (re.compile(r"เ\s*ล\s*ข\s*ท\s*ี\s*่"), "เลขที่"),
    (re.compile(r"(?<=ใบอนุญาต)\s+(?=เลขที่)"), ""),
)


def fix_ocr(text: str) -> tuple[str, list[int]]:
    """The text with OCR's usual confusions around claims repaired, and for each character of the
    result its position in `text` (so that a claim found in the result maps back to the words)."""
    pos = list(range(len(text)))
    for rx, rep in _OCR_FIXES:
        out: list[str] = []
        newpos: list[int] = []
        last = 0
        for m in rx.finditer(text):
            out.append(text[last:m.start()])
            newpos.extend(pos[last:m.start()])
            r = m.expand(rep)
            out.append(r)
            newpos.extend(pos[min(m.start() + k, max(m.end() - 1, m.start()))] for k in range(len(r)))
            last = m.end()
        out.append(text[last:])
        newpos.extend(pos[last:])
        text, pos = "".join(out), newpos
    return text, pos


def claims_from_words(index: int, words: Sequence[OcrWord], vague_words: tuple[str, ...] = (),
                      min_conf: float = 0.0, image_size: tuple[int, int] = (0, 0)) -> list[ImageClaim]:
    """Claims in the text Tesseract read from image `index`, each with the box of the words it covers.

    A claim is kept only when every word it covers was read with at least `min_conf` confidence (a
    misread digit would otherwise become a claim of a standard that does not exist), a TIS number only
    with its year and a licence number only whole (ท5137-2/10): a label prints them so, and a number
    without its tail was read in part."""
    where = f"image:{index}"
    out: list[ImageClaim] = []
    seen: set[tuple[str, str]] = set()
    vague_done = False
    for raw, spans in ocr_segments(words):
        text, pos = fix_ocr(raw)
        if clean(text) != text:  # read_claims reports spans in clean(text); keep them comparable
            continue
        for c in read_claims({where: text}, vague_words):
            if (c.kind == "tis" and "-" not in c.value) or (c.kind == "licence" and "/" not in c.value):
                continue  # printed marks and licences are whole; a number without its tail was read in part
            if c.kind == "vague":
                if vague_done:
                    continue
                vague_done = True
                covered = [words[i] for (_, _, i) in spans]
            else:
                a, b = pos[c.span[0]], pos[max(c.span[0], c.span[1] - 1)] + 1
                covered = [words[i] for (s0, s1, i) in spans if s0 < b and s1 > a]
            if not covered or ((c.kind, c.value) in seen and c.kind != "vague"):
                continue
            conf = min(w.conf for w in covered)
            if c.kind != "vague" and conf < min_conf:
                continue
            seen.add((c.kind, c.value))
            box = union(w.box for w in covered) if c.kind != "vague" else (0, 0, 0, 0)
            out.append(ImageClaim(c.kind, c.value, where, c.span, c.text, box, "ocr", image_size, conf))
    return out


def claims_from_qr(index: int, codes: Sequence[QrCode], vague_words: tuple[str, ...] = (),
                   image_size: tuple[int, int] = (0, 0)) -> list[ImageClaim]:
    """Claims from the QR codes of image `index`. kinds: licence and tis (as in text), and the notes
    qr_tisi (a TISI URL that names nothing), qr_lookalike and qr_elsewhere (value: the host)."""
    where = f"image:{index}"
    out: list[ImageClaim] = []
    for q in codes:
        r = read_qr(q.payload)
        text = r.payload[:500]
        if r.kind == "text":
            for c in read_claims({where: r.payload[:2000]}, vague_words):
                out.append(ImageClaim(c.kind, c.value, where, (0, 0), text, q.box, "qr", image_size))
            continue
        if r.kind == "elsewhere":
            out.append(ImageClaim("qr_elsewhere", r.host, where, (0, 0), text, q.box, "qr", image_size))
            continue
        if r.kind == "lookalike":
            out.append(ImageClaim("qr_lookalike", r.host, where, (0, 0), text, q.box, "qr", image_size))
        if r.kind == "tisi":
            out.append(ImageClaim("qr_tisi", r.host, where, (0, 0), text, q.box, "qr", image_size))
        if r.licence_no:
            out.append(ImageClaim("licence", r.licence_no, where, (0, 0), text, q.box, "qr", image_size))
        if r.tis_no:
            out.append(ImageClaim("tis", r.tis_no, where, (0, 0), text, q.box, "qr", image_size))
    return out


def claims_from_findings(findings: Iterable[ImageFindings], vague_words: tuple[str, ...] = (),
                         min_conf: float = 0.0) -> list[ImageClaim]:
    """All claims of a listing's images, QR codes first (they are exact), each value once per kind
    (the first image that shows it), in image order."""
    out: list[ImageClaim] = []
    seen: set[tuple[str, str]] = set()
    for f in sorted(findings, key=lambda f: f.index):
        size = (f.width, f.height)
        for c in claims_from_qr(f.index, f.qr, vague_words, size) + claims_from_words(f.index, f.words, vague_words, min_conf, size):
            k = (c.kind, c.value if c.kind != "vague" else "")
            if k in seen:
                continue
            seen.add(k)
            out.append(c)
    return out


# ---- joining the text claims in the verdict -----------------------------------------------------
NOTE_KINDS = ("qr_lookalike", "qr_tisi", "qr_elsewhere")


def merge_claims(text_claims: Sequence[Claim], image_claims: Sequence[Claim]) -> list[Claim]:
    """Text claims first (the listing's own words come before what a picture shows), then the image
    claims. An image claim repeating a text claim is kept (the review page highlights it) but adds no
    reason; a vague image claim counts only when the text has none."""
    out = list(text_claims)
    vague = any(c.kind == "vague" for c in out)
    for c in image_claims:
        if c.kind == "vague":
            if vague:
                continue
            vague = True
        out.append(c)
    return out


def claim_reasons(claims: Sequence[Claim]) -> list[str]:
    """Reason codes for the claims, each value once, saying where an image claim was read:
    claims_tis:V / claims_licence:V (text), claims_tis_image:V:N / claims_licence_image:V:N (printed in
    image N), qr_tis:V:N / qr_licence:V:N (a TISI QR code in image N), and the notes qr_lookalike:HOST:N,
    qr_tisi:HOST:N, qr_elsewhere:HOST:N."""
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for kind in ("tis", "licence", *NOTE_KINDS):
        for c in claims:
            if c.kind != kind or (kind, c.value) in seen:
                continue
            seen.add((kind, c.value))
            n = image_number(c.where)
            if kind in NOTE_KINDS:
                out.append(code(kind, c.value, n or 0))
            elif n is None:
                out.append(code(f"claims_{kind}", c.value))
            elif getattr(c, "source", "") == "qr":
                out.append(code(f"qr_{kind}", c.value, n))
            else:
                out.append(code(f"claims_{kind}_image", c.value, n))
    return out


# ---- what OCR may have misread --------------------------------------------------------------------
def drop_doubtful(claims: Sequence[Claim], registry) -> tuple[list[Claim], list[str]]:
    """OCR-read TIS numbers that are no standard at all are far more often a misread digit than a
    seller's invention: they are dropped from the claims and noted (tis_doubtful_image:V:N) instead of
    making the listing mislabeled. Numbers from QR codes and from text are kept as they are."""
    from registry.tisno import parse_tis

    kept: list[Claim] = []
    notes: list[str] = []
    cat = registry.catalogue
    for c in claims:
        if c.kind == "tis" and getattr(c, "source", "") == "ocr":
            t = parse_tis(c.value)
            if t is None or (cat.find(t) is None and not cat.bases_for_number(t.number)):
                notes.append(code("tis_doubtful_image", c.value, image_number(c.where) or 0))
                continue
        kept.append(c)
    return kept, notes


def misread_licence(claim: Claim, registry, bases: Sequence[str]) -> str | None:
    """For a licence number read by OCR that the registry does not have: the reason
    licence_misread:READ:NEAR:N when a licence of the product's standards differs from it by one
    character (a 1 read as 7, a lost digit), else None. Exact sources (text, QR codes) are never doubted."""
    if getattr(claim, "source", "") != "ocr":
        return None
    from rapidfuzz.distance import Levenshtein

    choices = {x.licence_no for b in bases for x in registry.licences_for(b)}
    best = min(choices, key=lambda x: (Levenshtein.distance(claim.value, x), x), default=None)
    if best is not None and Levenshtein.distance(claim.value, best) <= 1:
        return code("licence_misread", claim.value, best, image_number(claim.where) or 0)
    return None
