"""Scrapy settings for tiswatch spiders. Values that users tune live in tiswatch's TOML config
([crawl] and [marketplaces.*]); `scrapy_settings()` maps them here. Run as a plain Scrapy project too
(from the repository root, where scrapy.cfg is): `scrapy list`,
`TISWATCH_HOME=DIR scrapy crawl lazada -a base_url=http://127.0.0.1:8800/lazada -a categories=shop-general`.

Extending the crawl: a new item pipeline stage goes into ITEM_PIPELINES between the existing numbers
(validate 300, check 400, store 500, evidence 600; e.g. reading listing images at 450, after the check
and before the store, or at 550 after the store); it receives the item dict with "_listing" (the
validated Listing), "_verdict" and the other "_" keys, and must return it (or raise DropItem)."""

from __future__ import annotations

from typing import Any

BOT_NAME = "tiswatch"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.25
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 32 * 1024 * 1024       # a page larger than this is refused, not parsed
DOWNLOAD_WARNSIZE = 8 * 1024 * 1024
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.25
AUTOTHROTTLE_MAX_DELAY = 30
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
# Items processed at once per response. Scrapy starts this many asyncio workers for every callback's
# output; ours yield one listing (a shop page a few), so 100 (the default) only costs task churn.
CONCURRENT_ITEMS = 8
# Scrapy checks every generator callback for a `return value` (a mistake it warns about) by reading the
# callback's source and parsing it again: its cache is keyed by the bound method, so the check runs
# again for almost every response (about 5% of a fast crawl's CPU). tests/unit/test_spider_callbacks.py
# runs the same check over every callback of our spiders once instead.
WARN_ON_GENERATOR_RETURN_VALUE = False
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
COOKIES_ENABLED = True
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
ITEM_PIPELINES = {
    "crawlers.pipelines.ValidatePipeline": 300,
    "images.pipeline.ImagePipeline": 350,
    "crawlers.pipelines.CheckPipeline": 400,
    "crawlers.pipelines.StorePipeline": 500,
    "crawlers.pipelines.EvidencePipeline": 600,
}
DOWNLOADER_MIDDLEWARES = {
    "crawlers.middlewares.BackoffRetryMiddleware": 550,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawlers.middlewares.ScrapeBacklogMiddleware": 50,  # first: a page waits before anything else
    "crawlers.middlewares.RobotsTxtMiddleware": 100,
    "crawlers.middlewares.BrowserRecycleMiddleware": 950,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
}
SPIDER_MIDDLEWARES = {"crawlers.middlewares.FrontierMiddleware": 10}  # next to the engine: sees the final output
EXTENSIONS = {"crawlers.middlewares.CrawlReport": 500}
RETRY_EXCEPTIONS = [
    "scrapy.exceptions.CannotResolveHostError", "scrapy.exceptions.DownloadConnectionRefusedError",
    "scrapy.exceptions.DownloadFailedError", "scrapy.exceptions.DownloadTimeoutError",
    "scrapy.exceptions.ResponseDataLossError", "twisted.internet.error.ConnectionDone",
    "twisted.internet.error.ConnectError", "twisted.internet.error.ConnectionLost", OSError,
    "scrapy.core.downloader.handlers.http11.TunnelError",
    "playwright.async_api.TimeoutError",  # a browser page that did not load in time
]
# Requests with meta "playwright" go through Chromium (all of Shopee; flagged Lazada and shop pages for
# their evidence screenshot); the others are plain HTTP. The browser starts only when first needed.
DOWNLOAD_HANDLERS = {  # scrapy-playwright's handler, one instance (one Playwright driver) for both schemes
    "http": "crawlers.browser.PlaywrightHandler",
    "https": "crawlers.browser.PlaywrightHandler",
}
PLAYWRIGHT_ABORT_REQUEST = "crawlers.spiders.shopee.abort_request"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage"]
PLAYWRIGHT_BROWSER_TYPE = "chromium"
PLAYWRIGHT_LAUNCH_OPTIONS = {"executable_path": "/usr/bin/chromium", "headless": True, "args": CHROMIUM_ARGS}
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 30_000


def scrapy_settings(ts: Any, marketplace: str) -> dict[str, Any]:
    """Scrapy settings from tiswatch settings `ts` for one marketplace's crawl."""
    c = ts.crawl
    mp = ts.marketplaces.get(marketplace)

    def pick(name: str):  # the marketplace's own value, else [crawl]'s
        v = getattr(mp, name, None) if mp is not None else None
        return getattr(c, name) if v is None else v

    delay = pick("download_delay")
    per_domain = pick("concurrency_per_domain")
    out: dict[str, Any] = {
        "ROBOTSTXT_OBEY": pick("obey_robots"),
        "CONCURRENT_REQUESTS": c.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": per_domain,
        "DOWNLOAD_DELAY": delay,
        "AUTOTHROTTLE_ENABLED": c.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(delay, 0.05),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": max(1.0, per_domain / 2),
        "DOWNLOAD_MAXSIZE": int(c.max_page_mb * 1024 * 1024),
        "DOWNLOAD_WARNSIZE": int(min(c.max_page_mb, 8) * 1024 * 1024),
        "DOWNLOAD_TIMEOUT": c.timeout,
        "RETRY_TIMES": c.retries,
        "USER_AGENT": c.user_agent,
        "TISWATCH_MAX_PAGES": c.max_pages,  # pages, not pictures or robots.txt (crawlers.middlewares.CrawlReport)
        "LOG_LEVEL": ts.log.level,
        "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": c.browser_executable, "headless": True, "args": CHROMIUM_ARGS},
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": c.browser_pages,
        "TISWATCH_HOME": str(ts.home),
        "TISWATCH_BROWSER_RECYCLE": c.browser_recycle_pages,
        "TISWATCH_BROWSER_RETIRE": c.browser_retire_pages,
    }
    if marketplace != "shopee" and not c.screenshots:
        plain = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
        out["DOWNLOAD_HANDLERS"] = {"http": plain, "https": plain}  # no browser at all: Scrapy's own handler
    return out
