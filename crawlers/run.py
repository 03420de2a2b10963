"""The crawl child process: `python -m crawlers.run MARKETPLACE --home DIR [...]`.

Scrapy's reactor cannot be restarted inside one process, so every crawl runs in its own child with
its own log, exit status and time limit (see crawlers/runner.py for the parent side). Exit status:
0 finished, 3 blocked, 1 failed. A crawl killed midway leaves its JOBDIR; the next run resumes it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

SPIDERS = {"shopee": "crawlers.spiders.shopee.ShopeeSpider", "lazada": "crawlers.spiders.lazada.LazadaSpider",
           "shop": "crawlers.spiders.shop.ShopSpider"}


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
    ap.add_argument("--log-file", default="")
    ap.add_argument("--job", default="", help="the scheduler job that started this crawl (for the logs)")
    ap.add_argument("--urls-file", default="", help="listing page URLs to fetch again, one a line (a revisit)")
    a = ap.parse_args(argv)

    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings
    from scrapy.utils.misc import load_object

    from crawlers.settings import scrapy_settings
    from settings import load_settings

    ts = load_settings(config=a.config, home=a.home)
    ts.ensure_home()
    from ops.locks import Busy, FileLock, crawl_lock_path

    lock = FileLock(crawl_lock_path(ts.home, a.marketplace), what=f"crawl {a.marketplace} {a.job}".strip())
    try:
        lock.acquire()  # one crawl of a marketplace at a time, whoever starts it; released when we exit
    except Busy as e:
        print(f"another crawl of {a.marketplace} is running: {e}", file=sys.stderr)
        return 4
    mp = ts.marketplaces.get(a.marketplace)
    s = Settings()
    s.setmodule("crawlers.settings", priority="project")
    s.update(scrapy_settings(ts, a.marketplace), priority="cmdline")
    if a.config:
        s.set("TISWATCH_CONFIG", a.config, priority="cmdline")
    s.set("LOG_FILE", a.log_file or str(ts.log_dir / f"crawl-{a.marketplace}.log"), priority="cmdline")
    urls = _read_urls(a.urls_file) if a.urls_file else []
    # what to crawl comes from the configuration unless the command line says (a keyword group, a
    # revisit of listing URLs, `tiswatch crawl --keyword`): then only what it says
    configured = mp is not None and not (urls or a.category or a.keyword or a.start_url or a.sitemap)
    # a revisit keeps its own crawl state, so that it never resumes (or leaves behind) a regular crawl's
    jobdir = ts.crawl_dir / a.marketplace / ("revisit-job" if urls else "job")
    if (a.fresh or urls) and jobdir.exists():
        shutil.rmtree(jobdir)
    s.set("JOBDIR", str(jobdir), priority="cmdline")
    kwargs = {
        "base_url": a.base_url or (mp.base_url if mp else ""),
        "categories": json.dumps(a.category or (mp.categories if configured else [])),
        "keywords": json.dumps(a.keyword or (mp.keywords if configured else [])),
    }
    if urls:
        kwargs["listing_urls"] = json.dumps(urls)
    pages = a.max_search_pages if a.max_search_pages is not None else (mp.max_search_pages if mp else None)
    if pages is not None:
        kwargs["max_search_pages"] = str(pages)
    if a.marketplace == "shop":
        kwargs["start_urls"] = json.dumps(a.start_url or (mp.start_urls if configured else []))
        kwargs["sitemap"] = a.sitemap
    from ops.logs import configure_crawl_logging

    process = CrawlerProcess(s, install_root_handler=True)
    configure_crawl_logging(ts, a.marketplace, a.job)
    process.crawl(load_object(SPIDERS[a.marketplace]), **kwargs)
    configure_crawl_logging(ts, a.marketplace, a.job)  # again: crawl() re-installs Scrapy's root handler
    process.start()
    report_path = ts.crawl_dir / a.marketplace / "last_run.json"
    try:
        report = json.loads(report_path.read_text("utf-8"))
    except (OSError, ValueError):
        return 1
    if report.get("reason") == "finished":
        shutil.rmtree(jobdir, ignore_errors=True)  # done: the next crawl starts afresh
        return 0
    return 3 if report.get("reason") == "blocked" else 1


def _read_urls(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [u.strip() for u in f if u.strip().startswith(("http://", "https://"))]


if __name__ == "__main__":
    sys.exit(main())
