"""The crawl's bound on responses still being scraped (crawlers.middlewares.ScrapeBacklogMiddleware).

A real Scrapy crawl in a child process (Scrapy's reactor runs once a process) of 40 small pages served
on a free port, with the crawl's downloader middleware and an item stage that holds every listing
until the crawl can hand it no more (the middleware holds a page back, or every page is fetched), then
fetches a picture for each listing through the engine, as the image stage does. Without the bound
all 40 responses pile up waiting for the stage (what made a Shopee crawl's Python process grow by
~60 MB per 1,000 pages: every response kept its Playwright page, API answers and screenshot); with it
at most the bound plus the downloads already under way, and the stage's own picture requests still
pass while pages are held (no deadlock)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from settings import ROOT

pytestmark = pytest.mark.slow
PAGES, CONCURRENCY, LIMIT = 40, 4, 6


class _Site(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"\x89PNG\r\n\x1a\n" + b"0" * 64 if self.path.startswith("/img/") else \
            f"<html><title>{self.path}</title></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "image/png" if self.path.startswith("/img/") else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def site():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def child(base: str, limit: int, out: str) -> None:
    """The crawl (run in a child process): writes what the item stage saw to `out`."""
    import asyncio

    import scrapy
    from scrapy.crawler import CrawlerProcess

    from crawlers.middlewares import ScrapeBacklogMiddleware

    seen: dict = {"backlog": [], "items": 0, "pictures": 0, "waits": 0}

    class Hold:
        """Holds every item until the crawl cannot hand the stage more, then fetches its picture."""

        def __init__(self, crawler):
            self.crawler = crawler
            self.open = False

        @classmethod
        def from_crawler(cls, crawler):
            return cls(crawler)

        def _stuck(self) -> bool:
            eng = self.crawler.engine
            mw = next(m for m in eng.downloader.middleware.middlewares if isinstance(m, ScrapeBacklogMiddleware))
            if mw.waiting:
                return True  # pages are held back until the stage drains
            return not eng.downloader.active and not eng._slot.scheduler.has_pending_requests()

        async def process_item(self, item, spider=None):
            slot = self.crawler.engine.scraper.slot
            seen["backlog"].append(len(slot.active) + len(slot.queue))
            while not (self.open or self._stuck()):
                await asyncio.sleep(0.02)
            self.open = True
            req = scrapy.Request(f"{base}/img/{item['n']}.png", dont_filter=True, meta={"tiswatch_image": True})
            resp = await self.crawler.engine.download_async(req)
            seen["pictures"] += resp.body.startswith(b"\x89PNG")
            seen["items"] += 1
            return item

    class Pages(scrapy.Spider):
        name = "pages"

        async def start(self):
            for n in range(PAGES):
                yield scrapy.Request(f"{base}/p/{n}", callback=self.parse, cb_kwargs={"n": n})

        def parse(self, response, n):
            yield {"n": n}

    p = CrawlerProcess({"LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False, "ROBOTSTXT_OBEY": False,
                        "CONCURRENT_REQUESTS": CONCURRENCY, "CONCURRENT_REQUESTS_PER_DOMAIN": CONCURRENCY,
                        "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "TISWATCH_MAX_SCRAPING": limit,
                        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
                        "DOWNLOADER_MIDDLEWARES": {"crawlers.middlewares.ScrapeBacklogMiddleware": 50},
                        "ITEM_PIPELINES": {Hold: 100}})
    crawler = p.create_crawler(Pages)
    p.crawl(crawler)
    p.start()
    seen["waits"] = crawler.stats.get_value("tiswatch/backlog_waits", 0)
    seen["responses"] = crawler.stats.get_value("response_received_count", 0)
    Path(out).write_text(json.dumps(seen))


def _crawl(site: str, limit: int, tmp_path: Path) -> dict:
    out = tmp_path / f"seen-{limit}.json"
    code = f"from tests.integration.test_scrape_backlog import child; child({site!r}, {limit}, {str(out)!r})"
    r = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text())


def test_responses_waiting_for_the_item_pipeline_are_bounded(site, tmp_path):
    held = _crawl(site, LIMIT, tmp_path)
    # every page scraped and every picture fetched while pages were held back: nothing deadlocked
    assert held["items"] == PAGES and held["pictures"] == PAGES and held["responses"] == 2 * PAGES
    assert held["waits"] > 0
    # at most the bound plus the downloads already past the middleware when it filled
    assert max(held["backlog"]) <= LIMIT + CONCURRENCY

    free = _crawl(site, 0, tmp_path)  # 0: no bound (Scrapy's own, by body bytes, never bites on small pages)
    assert free["items"] == PAGES and free["waits"] == 0
    assert max(free["backlog"]) == PAGES  # every response waited for the stage at once
