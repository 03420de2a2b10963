"""Crawl benchmarks against the sandbox marketplaces (started here on a free port).

1. HTTP pipeline: the Lazada spider with everything a real crawl does (catalog JSON and product pages
   parsed, every listing checked by the matcher, stored, evidence written for flagged ones, frontier
   and incremental bookkeeping) against a bare Scrapy spider that fetches the same pages and does
   nothing with them, with the same concurrency, in the same run. Goal: >= 0.8x the bare pages/s.
   Twice: with the sandbox answering at once (both crawls CPU-bound: the ratio is the cost of parsing,
   matching and storing a listing against fetching it) and with 150 ms per answer, like a real site.
   Pages/s of both sides are Scrapy's own count over its own clock (spider opened to closed): the
   start-up of each process (Python imports) is outside both; what the pipeline loads on first use
   (the registry, the Thai dictionary, the stores) is inside. CPU seconds are of the whole child
   process, start-up included. The listings' pictures are not read ([images] enabled = false): the
   issue's pipeline is crawl + parse + match + store, and reading pictures (more downloads and OCR)
   has its own benchmark, tests/bench/bench_images.py.
   The full pipeline runs twice per round: as shipped ([crawl] store_worker = "auto": on a machine with
   2 CPUs or more, check, store and evidence run in a second process, crawlers/storeworker.py: the same
   work, on another core; its CPU is in the crawl child's, its start-up (imports, registry, Thai
   dictionary) runs beside the crawl process's, before Scrapy's clock like the imports), and in one
   process ([crawl] store_worker = false: the matcher's registry and dictionary load on first use,
   inside the clock).
   The rounds interleave bare and full runs, so that both sides share whatever load the machine has.
   The world: 9,000 listings, 3,000 of them on Lazada (3,079 pages; each run lasts several seconds at
   once, so that a moment's load elsewhere moves a ratio less); with server latency at most 3,000
   listings (1,000 on Lazada, 1,028 pages: at 150 ms per answer such a run already lasts about 10 s).
   Ratios are printed for the best run of each side and as the median (and range) of the rounds'
   own ratios, each round's runs having shared the machine's load.
   The bare spider runs twice per round too: as Scrapy ships it (the goal's baseline), and with the
   pipeline's CONCURRENT_ITEMS = 8 instead of Scrapy's 100 (Scrapy starts that many asyncio tasks for
   every response's output, a large share of a bare spider's CPU): what the pipeline's own work costs
   against a spider tuned the same way.
2. Browser: the Shopee spider (every page in Chromium through scrapy-playwright, one Chromium at a
   time, replaced every [crawl] browser_retire_pages pages, --browser-retire N to change it; screenshots
   of flagged listings included): pages/s, and the resident memory of the crawl (Python, Playwright's
   driver, Chromium) after 200, 500, 1,000 and 2,000 pages, in all and by kind of process (the crawl
   process, its store worker, the driver, Chromium's browser, renderer, GPU and utility processes:
   where it grows). Goal: growth from 1,000 to 2,000 under 50 MB, read on PSS: RSS summed over the
   tree counts the pages Chromium's processes share (its code, fonts, shared memory) once per process,
   so it rises by 40-60 MB whenever a sixth renderer or a third utility process happens to be alive
   (their own, anonymous memory: 8-16 MB); PSS divides shared pages among their sharers. Both are
   printed, by process too. The readings at 1,000 and 2,000
   pages fall as a new Chromium starts (with the default 500): compare the medians of the last 200
   pages' readings (taken every 10 pages), which are of a browser 300 to 500 pages old both times. The
   medians of the readings with one Chromium alive are printed too (a replaced browser finishes its
   last pages beside the new one: 1 reading in 20 of each window, with pictures read, in the runs of
   24-25 Nov; the two medians were within 25 MB).
   The crawl stops just past the last reading ([crawl] max_pages): the world has more. Pages are the
   pages opened in Chromium; the listings' pictures are not read (as in part 1; --browser-images reads
   them: the image stage's downloads and OCR, about a CPU-second a listing, then set the pace; the
   pictures do not count as pages).

    .venv/bin/python -m tests.bench.bench_crawl [--listings N] [--browser-pages N] [--rounds R] [--no-http]
                                                [--latency-ms MS] [--browser-images] [--browser-retire N]
    make bench                                   # every benchmark in tests/bench

Prints figures and ratios; asserts nothing about time (the machine may be shared). Wall-clock rates
include waiting for a core on a busy machine; the CPU seconds of each crawl child are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

HTTP_CRAWL = {"download_delay": 0.0, "autothrottle": False, "concurrency": 16, "concurrency_per_domain": 16,
              "screenshots": False, "obey_robots": True, "retries": 3}


# ---- the bare spider (run in a child process: `python -m tests.bench.bench_crawl --bare ...`) -----------
def _bare_main(categories: list[str], base: str, out: str, items: int | None = None) -> None:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    from crawlers.parsers.lazada import absolute  # the same product URL rebasing as the real spider

    class Bare(scrapy.Spider):
        name = "bare"

        async def start(self):
            for c in categories:
                yield scrapy.Request(f"{c}?ajax=true&page=1", callback=self.catalog, cb_kwargs={"root": c, "page": 1})

        def catalog(self, response, root, page):
            data = json.loads(response.body)
            for it in data["mods"]["listItems"]:
                url = absolute(it["itemUrl"].split("?")[0])
                yield scrapy.Request(base + "/products/" + url.split("/products/", 1)[1], callback=self.product)
            if not data["mainInfo"]["noMorePages"]:
                yield scrapy.Request(f"{root}?ajax=true&page={page + 1}", callback=self.catalog,
                                     cb_kwargs={"root": root, "page": page + 1})

        def product(self, response):
            return None

    cpu: list[float] = []

    def now_cpu(*a, **kw) -> None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(r.ru_utime + r.ru_stime)

    p = CrawlerProcess({"LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False, "CONCURRENT_REQUESTS": 16,
                        "CONCURRENT_REQUESTS_PER_DOMAIN": 16, "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False,
                        "ROBOTSTXT_OBEY": True, "USER_AGENT": "bench", **({"CONCURRENT_ITEMS": items} if items else {})})
    crawler = p.create_crawler(Bare)
    from scrapy import signals

    crawler.signals.connect(now_cpu, signal=signals.spider_opened)
    crawler.signals.connect(now_cpu, signal=signals.spider_closed)
    p.crawl(crawler)
    p.start()
    stats = crawler.stats.get_stats()
    Path(out).write_text(json.dumps({"responses": stats.get("response_received_count", 0),
                                     "elapsed": stats.get("elapsed_time_seconds", 0), "cpu": cpu[-1] - cpu[0]}))


def _child(cmd: list[str], check: bool = True) -> tuple[float, float]:
    """(wall, cpu) seconds of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=check, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _home(tmp: Path, name: str, world, crawl: dict, extra: str = ""):
    from registry.store import RegistryStore, bulk
    from settings import load_settings

    s = load_settings(home=tmp / name, environ={})
    s.ensure_home()
    rs = RegistryStore(s.registry_db)
    rs.import_licences(bulk(world.licences))
    rs.close()
    cfg = s.home / "bench.toml"
    cfg.write_text("[crawl]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in crawl.items()) + extra)
    return s, str(cfg)


Run = tuple[float, int, float, float, float, float, float, float]
# The bare spider as Scrapy ships it, and with the pipeline's CONCURRENT_ITEMS (crawlers/settings.py): with
# the asyncio reactor Scrapy starts CONCURRENT_ITEMS tasks for every callback's output, and its default of
# 100 costs the bare spider a large share of its CPU per page (the goal is measured against the first).
BARE_VARIANTS = (("bare Scrapy spider", None), ("bare spider, CONCURRENT_ITEMS = 8", 8))
FULL_VARIANTS = (("full pipeline (crawl+parse+match+store), one process", {"store_worker": False}),
                 ("full pipeline as shipped (store worker)", {}))


def bench_http(tmp: Path, n_listings: int, rounds: int, latency_ms: int = 0,
               variants: tuple[tuple[str, dict], ...] = FULL_VARIANTS) -> list[tuple[str, str]]:
    from crawlers.runner import crawl_command
    from sandbox.server import SandboxServer
    from sandbox.world import build_world

    world = build_world(seed=5, n_licences=1000, n_listings=n_listings)
    rows = []
    with SandboxServer(world) as srv:
        srv.sandbox.modes.slow_ms = latency_ms
        cats = [f"{srv.url}/lazada/{c[2]}/" for c in srv.sandbox.categories("lazada")]
        # (pages/s, pages, seconds on Scrapy's clock, CPU seconds and wall seconds of the whole child,
        # CPU seconds on Scrapy's clock: spider open to close, the store worker's included; the store worker's alone;
        # the kernel's part of the store worker's)
        bare: dict[str, list[Run]] = {name: [] for name, _ in BARE_VARIANTS}
        full: dict[str, list[Run]] = {name: [] for name, _ in variants}
        for i in range(rounds):  # interleaved: each round runs every side once, so they share the load
            for k, (bname, items) in enumerate(BARE_VARIANTS):
                out = tmp / f"bare{latency_ms}-{i}-{k}.json"
                wall, cpu = _child([sys.executable, "-m", "tests.bench.bench_crawl", "--bare", str(out), srv.url + "/lazada",
                                    str(items or 0), *cats])
                b = json.loads(out.read_text())
                bare[bname].append((b["responses"] / b["elapsed"], b["responses"], b["elapsed"], cpu, wall, b["cpu"], 0.0, 0.0))
            for j, (name, extra) in enumerate(variants):
                home, cfg = _home(tmp, f"full{latency_ms}-{i}-{j}", world, {**HTTP_CRAWL, **extra},
                                  "[images]\nenabled = false\n")
                cmd = crawl_command(home, "lazada", base_url=srv.url + "/lazada", categories=cats, config=cfg,
                                    max_search_pages=1000) + ["--log-file", str(home.log_dir / "crawl.log")]
                wall, cpu = _child(cmd)
                rep = json.loads((home.crawl_dir / "lazada" / "last_run.json").read_text())
                st = rep["stats"]
                assert rep["reason"] == "finished" and rep["listings"] == len(world.for_marketplace("lazada")), rep["reason"]
                assert st.get("tiswatch/listings") == rep["listings"], "every listing stored"
                full[name].append((st["response_received_count"] / st["elapsed_time_seconds"],
                                   st["response_received_count"], st["elapsed_time_seconds"], cpu, wall,
                                   st["tiswatch/cpu_s"], (st.get("tiswatch/store_worker/cpu_ms") or 0) / 1000,
                                   (st.get("tiswatch/store_worker/sys_ms") or 0) / 1000))
    where = f"server latency {latency_ms} ms" if latency_ms else "no server latency"
    rows.append((f"HTTP, {where}: Lazada listings, concurrency 16", f"{len(world.for_marketplace('lazada'))}, "
                 f"{rounds} rounds"))

    def line(r: Run) -> str:
        split = (f" = {1000 * (r[5] - r[6]) / r[1]:.2f} crawl + {1000 * r[6] / r[1]:.2f} store worker"
                 f" ({1000 * r[7] / r[1]:.2f} of it system)") if r[6] else ""
        return (f"{r[0]:8.1f} pages/s, {1000 * r[5] / r[1]:.2f}{split} CPU-ms per page  ({r[1]} pages in {r[2]:.1f}s, "
                f"{r[5]:.1f} CPU-s; whole process with start-up: {r[4]:.1f}s wall, {r[3]:.1f} CPU-s)")

    for bname, runs in bare.items():
        for r in runs:
            rows.append((f"  {bname}", line(r)))
    for name, runs in full.items():
        for r in runs:
            rows.append((f"  {name}", line(r)))
    for k, (bname, runs_b) in enumerate(bare.items()):
        bb = max(runs_b)
        against = "" if k == 0 else f" (vs the {bname})"
        for name, runs in full.items():
            fb = max(runs)
            per_round = sorted(f[0] / b[0] for f, b in zip(runs, runs_b, strict=True))
            rows.append((f"  {name}: full / bare pages/s (best of each){against}", f"{fb[0] / bb[0]:.2f}x" +
                         ("   (goal >= 0.8x)" if k == 0 else "")))
            rows.append((f"  {name}: full / bare pages/s, median of the rounds{against}",
                         f"{statistics.median(per_round):.2f}x   (rounds {per_round[0]:.2f}x to {per_round[-1]:.2f}x)"))
            rows.append((f"  {name}: bare / full CPU per page{against}", f"{(bb[5] / bb[1]) / (fb[5] / fb[1]):.2f}x   "
                         f"(whole processes with start-up: {(bb[3] / bb[1]) / (fb[3] / fb[1]):.2f}x; the store worker's CPU included)"))
    rows.append(("  (pages/s: Scrapy's spider-open to spider-close time on both sides, process start-up excluded; "
                 "pictures not read)", ""))
    return rows


def _by_pages(st: dict[str, Any], prefix: str) -> dict[int, Any]:
    """{pages: value} of the crawl stats named prefix + pages (tiswatch/rss_mb/1000 and the like)."""
    return {int(k[len(prefix):]): v for k, v in st.items() if k.startswith(prefix)}


def bench_browser(tmp: Path, pages: int, images: bool = False, retire: int | None = None) -> list[tuple[str, str]]:
    from crawlers.runner import crawl_command
    from sandbox.server import SandboxServer
    from sandbox.world import build_world

    n = int(pages * 1.05) * 3  # a third of the world's listings are on Shopee
    world = build_world(seed=5, n_licences=1000, n_listings=n)
    with SandboxServer(world) as srv:
        cats = [f"{srv.url}/shopee/x-cat.{c[0]}" for c in srv.sandbox.categories("shopee")]
        # the crawl stops after `pages` pages ([crawl] max_pages: pages, not pictures), just past the last reading
        crawl = {**HTTP_CRAWL, "screenshots": True, "concurrency": 8, "max_pages": pages + 8}
        if retire is not None:  # else config/default.toml's [crawl] browser_retire_pages
            crawl["browser_retire_pages"] = retire
        home, cfg = _home(tmp, "browser", world, crawl,
                          "" if images else "[images]\nenabled = false\n")
        cmd = crawl_command(home, "shopee", base_url=srv.url + "/shopee", categories=cats, config=cfg,
                            max_search_pages=1000) + ["--log-file", str(home.log_dir / "crawl.log")]
        _, cpu = _child(cmd, check=False)  # a crawl stopped by max_pages exits with 1 ("stopped early")
    rep = json.loads((home.crawl_dir / "shopee" / "last_run.json").read_text())
    assert rep["reason"] in ("finished", "closespider_pagecount"), rep["reason"]
    st = rep["stats"]
    pw = st.get("playwright/page_count", 0)  # pages opened in Chromium (search and product pages)
    rows = [("Browser: Shopee pages, one Chromium at a time", f"{pw} pages ({rep['listings']} listings, "
             f"{st.get('tiswatch/screenshots', 0)} screenshots, {st['response_received_count']} responses "
             f"with robots.txt{' and pictures' if images else ''}), {rep['reason']}; pictures "
             f"{'read (the image stage on)' if images else 'not read ([images] enabled = false)'}"),
            ("Browser: pages/s", f"{pw / st['elapsed_time_seconds']:.2f} pages/s in {st['elapsed_time_seconds']:.0f}s "
             f"({pw / cpu:.2f} pages per CPU-s of the crawl child and Chromium)"),
            ("Browser: pages left open at the end", str(st.get("tiswatch/browser_pages_open_at_end"))),
            ("Browser: pages held back while responses waited for the pipeline",
             f"{st.get('tiswatch/backlog_waits', 0)} ({st.get('tiswatch/backlog_wait_s', 0):.0f}s in all; "
             "crawlers.middlewares.ScrapeBacklogMiddleware)")]
    rss = _by_pages(st, "tiswatch/rss_mb/")
    pss = _by_pages(st, "tiswatch/pss_mb/")
    py = _by_pages(st, "tiswatch/python_rss_mb/")
    procs = _by_pages(st, "tiswatch/processes/")
    for k in sorted(rss):
        rows.append((f"Browser: memory after {k} pages", f"PSS {pss.get(k, 0):5.0f} MB   RSS {rss[k]:5.0f} MB   "
                     f"(the crawl's Python process alone: RSS {py.get(k, 0):4.0f} MB; {procs.get(k, '?')} processes)"))
    rows.append(("  (the whole process tree: Python (the crawl process, its store worker on 2+ CPUs), Playwright's "
                 "driver, every Chromium process; RSS counts "
                 "Chromium's shared pages once per process, so it moves with the renderers alive at that instant)", ""))
    med = _by_pages(st, "tiswatch/rss_mb_median/")
    pmed = _by_pages(st, "tiswatch/pss_mb_median/")
    one = _by_pages(st, "tiswatch/rss_mb_median_one_browser/")
    pone = _by_pages(st, "tiswatch/pss_mb_median_one_browser/")
    nread = _by_pages(st, "tiswatch/memory_readings/")
    for k in sorted(med):
        rows.append((f"Browser: median of the last 200 pages' readings at {k}",
                     f"PSS {pmed.get(k, 0):5.0f} MB   RSS {med[k]:5.0f} MB   of those with one Chromium alive: "
                     f"PSS {pone.get(k, 0):5.0f} MB   RSS {one.get(k, 0):5.0f} MB   (readings: {nread.get(k, '?')})"))
    if 1000 in rss and 2000 in rss:
        rows.append(("Browser: growth from 1,000 to 2,000 pages", f"PSS {pss.get(2000, 0) - pss.get(1000, 0):+.0f} MB, "
                     f"RSS {rss[2000] - rss[1000]:+.0f} MB, "
                     f"crawl process RSS {py.get(2000, 0) - py.get(1000, 0):+.0f} MB   (one reading each)"))
    if 1000 in med and 2000 in med:
        rows.append(("Browser: growth from 1,000 to 2,000 pages, medians",
                     f"PSS {pmed.get(2000, 0) - pmed.get(1000, 0):+.0f} MB   (goal < 50 MB; the pages processes share counted once), "
                     f"RSS {med[2000] - med[1000]:+.0f} MB   (counted once per process: moves by 40-60 MB with each Chromium "
                     "renderer or utility process alive, whose own memory is a fifth of that)"))
    if 1000 in one and 2000 in one:
        rows.append(("Browser: growth from 1,000 to 2,000 pages, medians of the readings with one Chromium alive",
                     f"RSS {one[2000] - one[1000]:+.0f} MB, PSS {pone.get(2000, 0) - pone.get(1000, 0):+.0f} MB   "
                     "(browsers of the same age: procmem.window_medians)"))
    roles = _by_pages(st, "tiswatch/roles_mb_median/")
    if roles:
        rows.append(("Browser: medians by process (crawlers/procmem.py role_of), PSS / RSS / anonymous RSS MB (processes)", ""))
        names = sorted({r for v in roles.values() for r in v}, key=lambda r: -max(v.get(r, {}).get("pss", 0) for v in roles.values()))
        for r in names:
            cells = []
            for k in sorted(roles):
                d = roles[k].get(r, {})
                cells.append(f"{k}: {d.get('pss', 0):4.0f} / {d.get('rss', 0):4.0f} / {d.get('anon', 0):4.0f} ({d.get('n', 0):g})")
            grow = ""
            if 1000 in roles and 2000 in roles:
                a, b = roles[1000].get(r, {}), roles[2000].get(r, {})
                grow = (f"   1,000->2,000: PSS {b.get('pss', 0) - a.get('pss', 0):+.0f} RSS {b.get('rss', 0) - a.get('rss', 0):+.0f}"
                        f" anon {b.get('anon', 0) - a.get('anon', 0):+.0f}")
            rows.append((f"  {r}", "   ".join(cells) + grow))
    rows.append(("Browser: malloc's free memory given back (crawlers/procmem.py release_free_heap)",
                 f"{st.get('tiswatch/malloc_trims', 0)} times, {st.get('tiswatch/malloc_trim_ms', 0):.0f} ms in all"))
    rows.append(("Browser: contexts replaced ([crawl] browser_recycle_pages)",
                 str(st.get("tiswatch/browser_contexts_recycled", 0))))
    launched = st.get("playwright/browser_count", 0)
    rows.append(("Browser: Chromium replaced ([crawl] browser_retire_pages)",
                 f"{st.get('tiswatch/browsers_retired', 0)} retired, {launched} launched "
                 f"({st.get('tiswatch/browser_launch_ms', 0) / max(1, launched):.0f} ms a launch), "
                 f"{st.get('tiswatch/browser_crashes', 0)} crashed, {st.get('tiswatch/browsers_retired_busy', 0)} closed "
                 f"with pages still open, {st.get('tiswatch/browser_processes_left', 0)} processes left after closing one"))
    return rows


# at once, a world large enough for runs of several seconds; with latency a run lasts 10 s at a third of it
HTTP_LISTINGS = 9000
LATENCY_LISTINGS = 3000


def run(n_listings: int = HTTP_LISTINGS, browser_pages: int = 2000, rounds: int = 2,
        latencies: tuple[int, ...] = (0, 150), where: str | None = None,
        browser_images: bool = False, browser_retire: int | None = None) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="crawlers-bench-", dir=where) as d:
        tmp = Path(d)
        rows = []
        for ms in latencies:  # localhost answers at once (CPU-bound); a real marketplace takes 100-500 ms
            rows += bench_http(tmp, min(n_listings, LATENCY_LISTINGS) if ms else n_listings, rounds, ms)
        if browser_pages:
            rows += bench_browser(tmp, browser_pages, browser_images, browser_retire)
    w = max(len(r[0]) for r in rows)
    print()
    for name, value in rows:
        print(f"{name:<{w}}  {value}")
    return rows


def test_bench_crawl():
    run(int(os.environ.get("BENCH_CRAWL_LISTINGS", HTTP_LISTINGS)), int(os.environ.get("BENCH_CRAWL_BROWSER_PAGES", 2000)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        _bare_main(sys.argv[5:], sys.argv[3], sys.argv[2], int(sys.argv[4]) or None)
        sys.exit(0)
    ap = argparse.ArgumentParser(prog="python -m tests.bench.bench_crawl")
    ap.add_argument("--listings", type=int, default=HTTP_LISTINGS, help="sandbox world size for the HTTP part (a third "
                    f"on Lazada; with --latency-ms above 0 at most {LATENCY_LISTINGS})")
    ap.add_argument("--browser-pages", type=int, default=2000, help="Shopee pages for the browser part (0: skip it)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each HTTP variant (the best is compared)")
    ap.add_argument("--latency-ms", type=int, action="append", help="sandbox answer delay for the HTTP part "
                    "(repeatable; default 0 and 150)")
    ap.add_argument("--dir", help="where the data directories go (default: the system's temporary directory)")
    ap.add_argument("--no-http", action="store_true", help="skip the HTTP part (the browser part alone)")
    ap.add_argument("--browser-images", action="store_true", help="browser part: read the listings' pictures too "
                    "(the image stage: two or three downloads and OCR a listing, about a CPU-second each)")
    ap.add_argument("--browser-retire", type=int, help="browser part: a new Chromium every N pages (default: "
                    "[crawl] browser_retire_pages of config/default.toml; 0: one Chromium for the whole crawl)")
    a = ap.parse_args()
    run(a.listings, a.browser_pages, a.rounds, () if a.no_http else tuple(a.latency_ms or (0, 150)), a.dir,
        a.browser_images, a.browser_retire)
