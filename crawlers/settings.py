"""Scrapy settings for tiswatch spiders. Values that users tune live in tiswatch's TOML config
([crawl] and [marketplaces.*]); `scrapy_settings()` maps them here. Run as a plain Scrapy project too:
`scrapy list`, `scrapy crawl lazada -a base_url=http://127.0.0.1:8800/lazada`."""

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
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
COOKIES_ENABLED = True
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
ITEM_PIPELINES = {
    "crawlers.pipelines.ValidatePipeline": 300,
    "crawlers.pipelines.CheckPipeline": 400,
    "crawlers.pipelines.StorePipeline": 500,
    "crawlers.pipelines.EvidencePipeline": 600,
}
DOWNLOADER_MIDDLEWARES = {
    "crawlers.middlewares.BackoffRetryMiddleware": 550,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
}
EXTENSIONS = {"crawlers.middlewares.CrawlReport": 500}
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
    obey = c.obey_robots if mp is None or mp.obey_robots is None else mp.obey_robots
    out: dict[str, Any] = {
        "ROBOTSTXT_OBEY": obey,
        "CONCURRENT_REQUESTS": c.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": c.concurrency_per_domain,
        "DOWNLOAD_DELAY": c.download_delay,
        "AUTOTHROTTLE_ENABLED": c.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(c.download_delay, 0.05),
        "DOWNLOAD_TIMEOUT": c.timeout,
        "RETRY_TIMES": c.retries,
        "USER_AGENT": c.user_agent,
        "CLOSESPIDER_PAGECOUNT": c.max_pages,
        "LOG_LEVEL": ts.log.level,
        "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": c.browser_executable, "headless": True, "args": CHROMIUM_ARGS},
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": c.browser_pages,
        "TISWATCH_HOME": str(ts.home),
    }
    return out
