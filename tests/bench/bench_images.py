"""Image stage benchmark: how well claims are read from the sandbox's pictures, how fast, and what the
stage costs a crawl. Prints tables with figures and ratios against baselines measured in the same run;
asserts nothing about time.

    .venv/bin/python -m tests.bench.bench_images            # the full run (about 15-30 minutes on 2 cores)
    .venv/bin/python -m tests.bench.bench_images --quick    # a smaller one (a few minutes)
    .venv/bin/python -m tests.bench.bench_images --quick --only=1   # one section (1-4)

1. Claims by variant: pictures drawn by sandbox/images.py (labels and photo+label pictures carrying a
   TIS number, a printed licence number and/or a licence QR code; plain photos carrying none), in each
   variant (clean, rotated, scaled, JPEG, noisy), read raw, pre-processed (upright, scale, QR mask: the
   default) and pre-processed with our own threshold: recall and precision of the (kind, value) claims,
   pictures read per second (the baseline is the raw reading of the same pictures in the same run).
2. Verdicts: a sandbox world where a share of the claims is only in the pictures; every listing read as
   the crawl stage reads it (QR and hash for all pictures, OCR for the budgeted ones) and checked with
   and without its image claims, against the truth.
3. Crawl: the sandbox shop site crawled twice by the real spider in a child process, with the stage on
   and off: wall time, and the stage's own CPU time (QR, hashes, OCR) from the crawl's stats.
4. A listing without pictures: the stage's cost per item against an item pipeline that does nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

VARIANTS = ("clean", "rotated", "scaled", "jpeg", "noisy")


def _table(title: str, head: list[str], rows: list[list[object]]) -> None:
    print(f"\n{title}")
    cells = [head] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for n, r in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


# ---- 1. claims by variant ------------------------------------------------------------------------
def corpus(per_variant: int, seed: int = 5):
    from matching.image_claims import licence_qr_url
    from registry.catalogue import load_catalogue
    from sandbox.images import LABEL_FONTS, ImageSpec

    stds = [s.tis_no for s in load_catalogue().standards]
    rng = random.Random(seed)
    out = []
    for variant in VARIANTS:
        for i in range(per_variant):
            kind = ("label", "label", "combo", "photo")[i % 4]
            s = ImageSpec(f"{variant}{i}", kind, variant, rng.randrange(1 << 30), "Voltex", f"PB-{rng.randrange(100, 9999)}",
                          font=rng.choice(LABEL_FONTS))
            if variant == "rotated":
                s.angle = rng.choice((-1, 1)) * rng.uniform(4, 14) if i % 4 != 1 else rng.choice((90.0, -90.0))
            elif variant == "scaled":
                s.scale = rng.uniform(0.35, 0.6)
            elif variant == "jpeg":
                s.quality = rng.randrange(15, 30)
            elif variant == "noisy":
                s.noise = rng.uniform(14, 26)
            if kind != "photo":
                s.tis = rng.choice(stds)
                s.tis_form = rng.choice(("มอก. {}", "มอก.{}", "TIS {}"))
                s.shows.append(("tis", s.tis))
                lic = f"{rng.choice('ทนส')}{rng.randrange(100, 99999)}-{rng.randrange(1, 40)}/{rng.randrange(1, 70)}"
                r = rng.random()
                if r < 0.4:
                    s.licence_text = lic
                    s.shows.append(("licence", lic))
                elif r < 0.8:
                    s.qr = licence_qr_url(lic)
                    s.shows.append(("licence", lic))
            out.append(s)
    return out


def bench_claims(per_variant: int) -> None:
    from images.reader import ReadOptions, read_image
    from matching.image_claims import claims_from_findings
    from sandbox.images import render

    specs = corpus(per_variant)
    data = [render(s) for s in specs]
    results = {}
    modes = (("raw", ReadOptions(preprocess=False)), ("pre-processed", ReadOptions()),
             ("pre + threshold", ReadOptions(binarize=True)))  # the default leaves thresholding to Tesseract
    for name, opts in modes:
        per = defaultdict(lambda: [0, 0, 0, 0.0, 0])  # tp, fn, fp, seconds, pictures
        for s, d in zip(specs, data, strict=True):
            t = time.perf_counter()
            r = read_image(d, 1, opts)
            per[s.variant][3] += time.perf_counter() - t
            per[s.variant][4] += 1
            got = {(c.kind, c.value) for c in claims_from_findings([r.findings], min_conf=opts.min_conf) if c.kind in ("tis", "licence")}
            want = {c for c in s.shows if c[0] in ("tis", "licence")}
            per[s.variant][0] += len(got & want)
            per[s.variant][1] += len(want - got)
            per[s.variant][2] += len(got - want)
        results[name] = per
    rows = []
    for v in (*VARIANTS, "all"):
        row: list[object] = [v]
        for name, _ in modes:
            per = results[name]
            keys = VARIANTS if v == "all" else (v,)
            tp, fn, fp = (sum(per[k][i] for k in keys) for i in range(3))
            sec, n = sum(per[k][3] for k in keys), sum(per[k][4] for k in keys)
            row += [f"{tp / max(1, tp + fn):.2f}", f"{tp / max(1, tp + fp):.2f}", f"{n / sec:.2f}"]
        r_raw = float(row[1]) if float(row[1]) else None
        row.append(f"{float(row[4]) / r_raw:.2f}x" if r_raw else "-")
        rows.append(row)
    _table(f"1. claims read from {len(specs)} pictures ({per_variant} per variant: labels, photo+label, plain photos)",
           ["variant", "raw recall", "raw prec.", "raw pic/s", "pre recall", "pre prec.", "pre pic/s",
            "thr recall", "thr prec.", "thr pic/s", "pre/raw recall"], rows)


# ---- 2. verdicts ---------------------------------------------------------------------------------
def bench_verdicts(n_listings: int) -> None:
    from images.pipeline import choose_for_ocr
    from images.reader import ReadOptions, add_ocr, look
    from listings.model import Listing
    from matching import check
    from matching.image_claims import claims_from_findings
    from registry.index import Registry
    from sandbox.images import IMAGES_PER_LISTING, render
    from sandbox.shapes import image_id
    from sandbox.world import build_world
    from settings import load_settings

    conf = load_settings(environ={}).images
    w = build_world(seed=17, n_listings=n_listings, image_only_share=0.5)
    reg = Registry(w.licences, w.catalogue, version="bench")
    opts = ReadOptions(languages=conf.ocr_languages, min_conf=conf.ocr_min_conf)
    counts = defaultdict(lambda: [0, 0, 0])  # listings, right with images, right text only
    flagged = defaultdict(lambda: [0, 0])     # with images: (flagged right, flagged wrong)
    t_read = 0.0
    pictures = 0
    ocr_runs = 0
    t0 = time.perf_counter()
    for x in w.listings:
        lst = Listing.model_validate(x.listing)
        readings, decoded = [], {}
        t = time.perf_counter()
        for i in range(IMAGES_PER_LISTING[x.marketplace]):
            r, d = look(render(w.images[image_id(x, i)]), i + 1, opts)
            readings.append(r)
            decoded[i + 1] = d
        for r in choose_for_ocr(readings, conf.ocr_images, conf.ocr_min_score):
            add_ocr(r, decoded[r.findings.index], opts)
            ocr_runs += 1
        claims = claims_from_findings([r.findings for r in readings], reg.catalogue.vague_claims, conf.ocr_min_conf)
        t_read += time.perf_counter() - t
        pictures += len(readings)
        exp = (x.expected["verdict"], x.expected["tis_no"], x.expected["licence_no"])
        vi = check(lst, reg, image_claims=claims)
        vt = check(lst, reg)
        group = "claim only in a picture" if "/" in x.scenario else "claim in the text or none"
        for g in (group, "all"):
            counts[g][0] += 1
            counts[g][1] += (vi.verdict, vi.tis_no, vi.licence_no) == exp
            counts[g][2] += (vt.verdict, vt.tis_no, vt.licence_no) == exp
        if vi.flagged:
            flagged["all"][0 if vi.verdict == x.expected["verdict"] else 1] += 1
    total = time.perf_counter() - t0
    rows = []
    for g in ("claim only in a picture", "claim in the text or none", "all"):
        n, ri, rt = counts[g]
        rows.append([g, n, f"{rt / max(1, n):.3f}", f"{ri / max(1, n):.3f}", f"{(ri / max(1, n)) / max(1e-9, rt / max(1, n)):.2f}x"])
    _table(f"2. verdicts of {len(w.listings)} sandbox listings (half the claims moved into pictures), against the truth",
           ["listings", "n", "text only", "with images", "ratio"], rows)
    ok, bad = flagged["all"]
    print(f"  flags with images: {ok + bad}, of which with the true verdict {ok} ({ok / max(1, ok + bad):.3f})")
    print(f"  reading: {pictures} pictures, {ocr_runs} OCR runs, {t_read:.1f} s ({pictures / max(1e-9, t_read):.2f} pictures/s,"
          f" {t_read / len(w.listings):.2f} s per listing); whole section {total:.1f} s")


# ---- 3. crawl ------------------------------------------------------------------------------------
def bench_crawl(n_listings: int) -> None:
    from crawlers.runner import run_crawl
    from registry.store import RegistryStore, bulk
    from sandbox.server import SandboxServer
    from sandbox.world import build_world
    from settings import load_settings

    w = build_world(seed=23, n_listings=n_listings * 3, image_only_share=0.25)
    fast = "[crawl]\ndownload_delay = 0.0\nautothrottle = false\nconcurrency = 16\nconcurrency_per_domain = 16\n"
    rows = []
    base = None
    homes = {"off": Path(tempfile.mkdtemp(prefix="bench-images-")), "on": Path(tempfile.mkdtemp(prefix="bench-images-"))}
    try:
        with SandboxServer(w) as srv:
            seeds = json.load(urllib.request.urlopen(srv.url + "/_sandbox/seeds.json"))
            for name, which, extra in (("images off", "off", "[images]\nenabled = false\n"), ("images on", "on", ""),
                                       ("images on, cache warm", "on", "")):
                s = load_settings(home=homes[which] / "home", environ={})
                s.ensure_home()
                if not s.registry_db.exists():
                    rs = RegistryStore(s.registry_db)
                    rs.import_licences(bulk(w.licences))
                    rs.close()
                for f in s.home.glob("listings.sqlite*"):  # each run ingests every listing anew
                    f.unlink()
                shutil.rmtree(s.crawl_dir, ignore_errors=True)
                cfg = homes[which] / "c.toml"
                cfg.write_text(fast + extra)
                t = time.perf_counter()
                r = run_crawl(s, "shop", base_url=f"{srv.url}/shop", config=str(cfg), time_limit=3600,
                              sitemap=seeds["shop"]["sitemap"])
                wall = time.perf_counter() - t
                st = r.report.get("stats", {})
                cpu = st.get("tiswatch/images/cpu_seconds", 0.0)
                ocr = st.get("tiswatch/images/ocr_seconds", 0.0)
                base = base or wall
                rows.append([name, r.report.get("listings", "?"), f"{wall:.1f}", f"{wall / base:.2f}x", f"{cpu:.1f}",
                             f"{cpu / wall:.0%}", f"{ocr / wall:.0%}", st.get("tiswatch/images/ocr", 0),
                             st.get("tiswatch/images/cache_hits", 0)])
    finally:
        for h in homes.values():
            shutil.rmtree(h, ignore_errors=True)
    _table(f"3. crawling the sandbox shop site ({len(w.for_marketplace('shop'))} listings, one picture each), child process",
           ["run", "listings", "wall s", "vs off", "stage CPU s", "stage/wall", "OCR/wall", "OCR runs", "cache hits"], rows)


# ---- 4. a listing without pictures ---------------------------------------------------------------
def bench_no_images(n: int) -> None:
    from crawlers.context import CrawlContext
    from images.pipeline import ImagePipeline
    from listings.model import Listing
    from settings import load_settings

    class Stats:
        def inc_value(self, k, v=1):
            raise AssertionError("a listing without pictures touched the stats")

    class Crawler:
        stats = Stats()
        engine = None

    crawler = Crawler()
    tmp = Path(tempfile.mkdtemp(prefix="bench-images-"))
    crawler.tiswatch = CrawlContext(load_settings(home=tmp, environ={}), "shop")
    p = ImagePipeline(crawler)
    items = [{"_listing": Listing(marketplace="shop", item_id=str(i), title="พัดลม", images=[])} for i in range(n)]

    async def nothing(item):
        return item

    async def run(fn):
        t = time.perf_counter()
        for it in items:
            await fn(it)
        return time.perf_counter() - t

    def measure(fn):
        return statistics.median(asyncio.run(run(fn)) for _ in range(5))

    b = measure(nothing)
    s = measure(p.process_item)
    shutil.rmtree(tmp, ignore_errors=True)
    _table(f"4. a listing without pictures ({n} items, median of 5 runs)",
           ["pipeline", "µs per item", "vs no-op"],
           [["no-op coroutine", f"{b / n * 1e6:.2f}", "1.00x"], ["image stage", f"{s / n * 1e6:.2f}", f"{s / b:.2f}x"]])
    print("  (no download, no thread, no store, cache or registry opened: the stage returns at its first test)")


def run(quick: bool = False, only: set[str] | None = None) -> None:
    from images.reader import tesseract_available

    if not tesseract_available("tha"):
        raise SystemExit("tesseract with its Thai model is not installed: ./dev installs it (tesseract-ocr tesseract-ocr-tha)")
    only = only or {"1", "2", "3", "4"}
    print("image stage benchmark" + (" (quick)" if quick else "") + "; the machine may be shared: compare ratios, not seconds")
    if "4" in only:
        bench_no_images(2000 if quick else 20000)
    if "1" in only:
        bench_claims(4 if quick else 24)
    if "2" in only:
        bench_verdicts(45 if quick else 240)
    if "3" in only:
        bench_crawl(20 if quick else 60)


def test_images_benchmark() -> None:
    """`make bench` runs the quick one (the full one: python -m tests.bench.bench_images)."""
    run(quick=True)


def main() -> None:
    run("--quick" in sys.argv, {a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")} or None)


if __name__ == "__main__":
    main()
