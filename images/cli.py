"""`tiswatch images ...`: what tiswatch reads in a picture, and which listings use the same photo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="Listing pictures: read one (QR codes, printed TIS and licence numbers), "
                                             "find the listings that use the same photo.")
console = Console()
err = Console(stderr=True)


def _settings():
    from cli import state

    s = state.settings()
    s.ensure_home()
    return s


def _load(source: str, conf) -> bytes:
    """A picture from a file or an http(s) URL, within the [images] limits; exits with the reason."""
    from images.fetch import FetchLimits, FetchRefused, fetch_image

    if source.startswith(("http://", "https://")):
        try:
            return fetch_image(source, FetchLimits(conf.max_bytes, conf.timeout))
        except FetchRefused as e:
            err.print(f"[red]{escape(str(e))}[/red]")
            raise typer.Exit(1) from None
    p = Path(source)
    try:
        size = p.stat().st_size
    except OSError as e:
        err.print(f"[red]{escape(source)}: {escape(e.strerror or str(e))}[/red]")
        raise typer.Exit(1) from None
    if size > conf.max_bytes:
        err.print(f"[red]{escape(source)}: {size:,} bytes is over [images] max_bytes ({conf.max_bytes:,})[/red]")
        raise typer.Exit(1)
    return p.read_bytes()


@app.command("read")
def read(
    sources: Annotated[list[str], typer.Argument(help="picture files or http(s) URLs, in the listing's order")],
    ocr: Annotated[bool, typer.Option("--ocr/--no-ocr", help="read printed text too (slow)")] = True,
    preprocess: Annotated[bool, typer.Option("--preprocess/--raw", help="turn upright and scale before OCR")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per picture")] = False,
    text: Annotated[bool, typer.Option("--text", help="also print all the text OCR read")] = False,
) -> None:
    """Read pictures as the crawl does and print the claims found: TIS numbers and licence numbers
    (printed, or in a TISI licence QR code), QR codes pointing elsewhere, with where in the picture;
    and each picture's SHA-256 and perceptual hash."""
    from images.decode import ImageRefused
    from images.reader import ReadOptions, read_image, tesseract_available
    from matching.image_claims import claims_from_findings, ocr_text, read_qr
    from matching.reasons import sentence
    from registry.catalogue import load_catalogue

    s = _settings()
    conf = s.images
    if ocr and not tesseract_available(conf.ocr_languages):
        err.print(f"[yellow]tesseract or its {conf.ocr_languages!r} model is not installed: QR codes only (Debian: apt install tesseract-ocr tesseract-ocr-tha)[/yellow]")
        ocr = False
    opts = ReadOptions(qr=True, ocr=ocr, languages=conf.ocr_languages, preprocess=preprocess, min_conf=conf.ocr_min_conf,
                       timeout=conf.ocr_timeout, max_pixels=conf.max_pixels)
    vague = load_catalogue(s.catalogue_path).vague_claims
    failed = 0
    for n, src in enumerate(sources, 1):
        data = _load(src, conf)
        try:
            r = read_image(data, n, opts)
        except ImageRefused as e:
            err.print(f"[red]{escape(src)}: {escape(e.why)}[/red]")
            failed += 1
            continue
        claims = claims_from_findings([r.findings], vague, conf.ocr_min_conf)
        if as_json:
            out = {"source": src, "image": n, "sha256": r.sha256, "phash": r.phash, "format": r.format,
                   "width": r.width, "height": r.height, "text_score": round(r.text_score, 3), "ocr": r.ocr_done,
                   "qr": [{"payload": q.payload, "kind": read_qr(q.payload).kind, "box": list(q.box)} for q in r.findings.qr],
                   "claims": [{"kind": c.kind, "value": c.value, "where": c.where, "box": list(c.box), "source": c.source,
                               "confidence": c.confidence} for c in claims],
                   "seconds": {k: round(v, 3) for k, v in r.seconds.items()}}
            if text:
                out["text"] = ocr_text(r.findings.words)
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
            continue
        console.print(f"[bold]image {n}[/bold] {escape(src)}: {r.format} {r.width}x{r.height}, SHA-256 {r.sha256[:16]}…, "
                      f"perceptual hash {r.phash}, text score {r.text_score:.2f}"
                      + (f", turned {r.angle:+.0f}°" if r.angle else ""))
        t = Table(show_edge=False)
        for col in ("claim", "value", "read from", "box (x0, y0, x1, y1)", "confidence"):
            t.add_column(col)
        for c in claims:
            t.add_row(c.kind, escape(c.value), c.source, ", ".join(str(v) for v in c.box),
                      f"{c.confidence:.0f}" if c.source == "ocr" else "exact")
        console.print(t if claims else "  [dim]no claim read[/dim]")
        for q in r.findings.qr:
            k = read_qr(q.payload)
            console.print(f"  QR ({k.kind}): {escape(q.payload[:200])}")
        if text and r.ocr_done:
            console.print(f"  text: {escape(ocr_text(r.findings.words)[:2000])}")
        from matching.image_claims import claim_reasons

        for code in claim_reasons(claims):
            console.print(f"  · {escape(sentence(code, 'en'))}")
    if failed:
        raise typer.Exit(1)


def _hits_table(hits, title: str) -> Table:
    t = Table(title=title)
    for col in ("listing", "picture", "seller", "verdict", "distance", "title"):
        t.add_column(col)
    for h in hits:
        t.add_row(h["key"], str(h["index"]), escape(str(h.get("seller") or h.get("seller_id") or "—")),
                  str(h.get("verdict") or "—"), f"{h['distance']} bits", escape((h.get("title") or "")[:60]))
    return t


@app.command("same")
def same(
    key: Annotated[str, typer.Argument(help="a listing key (marketplace:item_id)")],
    distance: Annotated[int | None, typer.Option(help="perceptual-hash bits two photos may differ by (default [images] reuse_distance)")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Other listings, and their sellers, that use the same photo as this listing (re-used photos are a
    sign of one operator behind many shops)."""
    from listings.store import open_store

    s = _settings()
    st = open_store(s)
    try:
        if st.get(key) is None:
            err.print(f"[red]no listing {escape(key)} in the store[/red]")
            raise typer.Exit(1)
        hits = st.same_images(key, max_distance=s.images.reuse_distance if distance is None else distance, limit=limit)
    finally:
        st.close()
    if as_json:
        for h in hits:
            sys.stdout.write(json.dumps(h, ensure_ascii=False) + "\n")
        return
    sellers = {(h["marketplace"], h.get("seller_id") or h.get("seller")) for h in hits}
    console.print(_hits_table(hits, f"{len(hits)} pictures of {len(sellers)} sellers look like {key}'s"))


@app.command("find")
def find(
    what: Annotated[str, typer.Argument(help="a perceptual hash (16 hex digits), a picture file or an http(s) URL")],
    distance: Annotated[int | None, typer.Option(help="bits the hashes may differ by (default [images] reuse_distance)")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Listings that use this photo: give its perceptual hash or the picture itself."""
    import re

    from listings.store import open_store

    s = _settings()
    if re.fullmatch(r"[0-9a-fA-F]{16}", what):
        phash = what.lower()
    else:
        from images.decode import ImageRefused, decode
        from images.reader import perceptual_hash

        try:
            phash = perceptual_hash(decode(_load(what, s.images), s.images.max_pixels).image)
        except ImageRefused as e:
            err.print(f"[red]{escape(what)}: {escape(e.why)}[/red]")
            raise typer.Exit(1) from None
    st = open_store(s)
    try:
        hits = st.find_images(phash, max_distance=s.images.reuse_distance if distance is None else distance, limit=limit)
    finally:
        st.close()
    if as_json:
        for h in hits:
            sys.stdout.write(json.dumps(h, ensure_ascii=False) + "\n")
        return
    console.print(_hits_table(hits, f"{len(hits)} pictures look like {phash}"))
