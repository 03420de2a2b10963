"""The crawl child process: `python -m crawlers.run MARKETPLACE --home DIR [...]`.

Scrapy's reactor cannot be restarted inside one process, so every crawl runs in its own child with
its own log, exit status and time limit (see crawlers/runner.py for the parent side). Exit status:
0 finished, 3 blocked (or still paused after a block), 1 failed or stopped early, 4 another crawl of
the same marketplace is running. A crawl that was killed (even with kill -9) resumes on the next run
from its durable frontier (crawlers/frontier.py) unless --fresh. A revisit (--urls-file, from the
scheduler) fetches only those listing pages, with a frontier of its own that never resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

SPIDERS = {"shopee": "crawlers.spiders.shopee.ShopeeSpider", "lazada": "crawlers.spiders.lazada.LazadaSpider",
           "shop": "crawlers.spiders.shop.ShopSpider"}
EXIT_OK, EXIT_FAILED, EXIT_BLOCKED, EXIT_BUSY = 0, 1, 3, 4


def paused_until(status: dict, marketplace: str, now: datetime) -> datetime | None:
    """When a blocked marketplace may be crawled again (None: now). Pure."""
    st = status.get(marketplace) or {}
    if st.get("state") != "blocked" or not st.get("paused_until"):
        return None
    try:
        until = datetime.fromisoformat(st["paused_until"])
    except (TypeError, ValueError):
        return None
    return until if until > now else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m crawlers.run")
    ap.add_argument("marketplace", choices=sorted(SPIDERS))
    ap.add_argument("--home")
    ap.add_argument("--config")
    ap.add_argument("--base-url", default="")
    ap.add_argument("--category", action="append", default=[])
    ap.add_argument("--keyword", action="append", default=[])
    ap.add_argument("--start-url", action="append", default=[])
    ap.add_argument("--sitemap", default="")
    ap.add_argument("--max-search-pages", type=int)
    ap.add_argument("--fresh", action="store_true", help="forget an interrupted crawl instead of resuming it")
    ap.add_argument("--force", action="store_true", help="crawl even while the marketplace is paused after a block")
    ap.add_argument("--log-file", default="")
    ap.add_argument("--job", default="", help="the scheduler job that started this crawl (for the logs)")
    ap.add_argument("--urls-file", default="", help="listing page URLs to fetch again, one a line (a revisit)")
    ap.add_argument("--distributed", action="store_true", help="work on the marketplace's shared run in Redis (cluster/)")
    ap.add_argument("--join", action="store_true", help="with --distributed: only join an open run, never start one")
    ap.add_argument("--name", default="", help="with --distributed: this process's name (default host:pid:random)")
    a = ap.parse_args(argv)

    from crawlers.context import read_status, write_status
    from settings import ConfigError, load_settings

    try:
        ts = load_settings(config=a.config, home=a.home)
    except ConfigError as e:
        print(f"configuration error\n{e}", file=sys.stderr)
        return 2
    ts.ensure_home()
    mp_dir = ts.crawl_dir / a.marketplace
    mp_dir.mkdir(parents=True, exist_ok=True)
    from ops.locks import Busy, FileLock, crawl_lock_path

    lock = FileLock(crawl_lock_path(ts.home, a.marketplace), what=f"crawl {a.marketplace} {a.job}".strip())
    try:
        if not a.distributed:  # distributed crawl processes share the marketplace's run (cluster/)
            lock.acquire()  # one crawl of a marketplace at a time, whoever starts it; released when we exit
    except Busy as e:
        print(f"another crawl of {a.marketplace} is running: {e}", file=sys.stderr)
        return EXIT_BUSY
    status = read_status(ts.home)
    until = paused_until(status, a.marketplace, datetime.now(UTC))
    if until is not None and not a.force:
        print(f"{a.marketplace}: paused after a block until {until.isoformat(timespec='seconds')} "
              f"({(status[a.marketplace].get('blocked') or {}).get('why', '')}); --force crawls anyway", file=sys.stderr)
        return EXIT_BLOCKED
    if until is not None:
        write_status(ts.home, a.marketplace, "forced", previous=status.get(a.marketplace))

    log_file = a.log_file or str(ts.log_dir / f"crawl-{a.marketplace}.log")
    from crawlers.storeworker import prestart, wanted

    if wanted(ts.crawl) and ts.crawl.store_batch > 1 and ts.store.backend == "sqlite" and not a.distributed:
        # the store worker starts now: its start-up runs beside Scrapy's below, on the other core
        prestart(str(ts.home), a.config or None, a.marketplace, log_file, ts.log.level)
    from scrapy.crawler import CrawlerProcess  # imported only now: a paused or busy crawl exits at once
    from scrapy.settings import Settings
    from scrapy.utils.misc import load_object

    from crawlers.settings import scrapy_settings

    s = Settings()
    s.setmodule("crawlers.settings", priority="project")
    s.update(scrapy_settings(ts, a.marketplace), priority="cmdline")
    if a.config:
        s.set("TISWATCH_CONFIG", a.config, priority="cmdline")
    s.set("TISWATCH_FRESH", a.fresh, priority="cmdline")
    s.set("LOG_FILE", log_file, priority="cmdline")
    urls = _read_urls(a.urls_file) if a.urls_file else []
    if urls:
        s.set("TISWATCH_FRONTIER", "revisit", priority="cmdline")
    kwargs = {"base_url": a.base_url}
    if urls:
        kwargs["listing_urls"] = json.dumps(urls)
    if a.category:
        kwargs["categories"] = json.dumps(a.category)
    if a.keyword:
        kwargs["keywords"] = json.dumps(a.keyword)
    if a.max_search_pages is not None:
        kwargs["max_search_pages"] = str(a.max_search_pages)
    if a.marketplace == "shop":
        kwargs["start_urls"] = json.dumps(a.start_url)
        kwargs["sitemap"] = a.sitemap
    spidercls = load_object(SPIDERS[a.marketplace])
    report_path = mp_dir / "last_run.json"
    if a.distributed:
        from cluster.crawl import apply_distributed, open_run_exists
        from cluster.crawl import report_path as process_report
        from cluster.frontier import process_name

        if a.join and not open_run_exists(ts, a.marketplace):
            print(f"{a.marketplace}: no distributed run is open; nothing to join", file=sys.stderr)
            return EXIT_OK
        name = a.name or process_name()
        spidercls = apply_distributed(s, ts, a.marketplace, spidercls, name=name, join=a.join)
        report_path = process_report(ts, a.marketplace, name)
    t0 = datetime.now(UTC).replace(microsecond=0)
    process = CrawlerProcess(s, install_root_handler=True)
    process.crawl(spidercls, **kwargs)
    from ops.logs import configure_crawl_logging

    configure_crawl_logging(ts, a.marketplace, a.job)  # after crawl(): Scrapy re-installs its handler there
    _root_level_of_handlers()
    _freeze_start_up(browser=not _plain_http(s))
    process.start()
    try:
        report = json.loads(report_path.read_text("utf-8"))
    except (OSError, ValueError):
        return EXIT_FAILED
    if datetime.fromisoformat(report.get("finished") or "1970-01-01T00:00:00+00:00") < t0:
        return EXIT_FAILED  # the crawl did not get as far as writing its report
    if report.get("reason") == "finished":
        return EXIT_OK
    return EXIT_BLOCKED if report.get("reason") == "blocked" else EXIT_FAILED


def _root_level_of_handlers() -> None:
    """The root logger at the lowest level any handler writes (Scrapy's: [log] level), instead of
    NOTSET: Scrapy logs every response ("Crawled (200)") and every item ("Scraped from") at DEBUG, and
    with the root at NOTSET each made a LogRecord (and looked up its caller's frame) that every
    handler then dropped. Nothing that was written changes. Left alone when a handler takes all (a
    NullHandler, which libraries add to their loggers, writes nothing and does not count)."""
    import logging

    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))]
    levels = [h.level for lg in loggers for h in lg.handlers if not isinstance(h, logging.NullHandler)]
    root = logging.getLogger()
    if levels and min(levels) > logging.NOTSET and root.level == logging.NOTSET:
        root.setLevel(min(levels))


def _plain_http(s: Any) -> bool:
    """The crawl fetches every page with Scrapy's own HTTP handler (crawlers.settings: no browser)."""
    handlers = s.getdict("DOWNLOAD_HANDLERS")
    return all(str(handlers.get(k, "")).endswith("HTTP11DownloadHandler") for k in ("http", "https"))


def _freeze_start_up(browser: bool = True) -> None:
    """The garbage collector's share of the crawl process (a tenth of its CPU in a fast HTTP crawl),
    made smaller without changing what it collects (crawlers.procmem.freeze_start_up):
    - what start-up made (Scrapy, Twisted and their imports, the settings, the crawler: some 110,000
      objects) is frozen out of its full passes: each full pass walked all of it again, about half the
      collector's time;
    - without a browser, a young collection every 7,000 new objects instead of 700: Scrapy makes and
      drops thousands of objects per page, and a collection ran every few of them, the other half of
      the collector's time (a crawl of 3,079 pages: some 1,050 young collections, 0.5 CPU-s; now 30,
      0.1 CPU-s). Garbage in reference cycles waits for at most 7,000 allocations (a few pages'
      worth); crawls with a browser keep Python's default, since their pages hold screenshots and
      whole rendered pages."""
    from crawlers.procmem import freeze_start_up

    freeze_start_up(None if browser else 7000)


def _read_urls(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [u.strip() for u in f if u.strip().startswith(("http://", "https://"))]


if __name__ == "__main__":
    sys.exit(main())
