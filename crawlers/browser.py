"""One Playwright driver per crawl: scrapy-playwright's download handler, shared by http and https.

Scrapy builds one download handler per URL scheme, and scrapy-playwright's handler is not lazy: each
instance starts its own Playwright driver (a node process, ~100-150 MB resident) when the engine
starts. With DOWNLOAD_HANDLERS naming it for both "http" and "https", every crawl ran two drivers, one
of them idle for the whole crawl (or both busy, each with its own Chromium, when a crawl met both
schemes). Here the second scheme gets the first one's handler: one driver, one Chromium."""

from __future__ import annotations

from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler


class PlaywrightHandler(ScrapyPlaywrightDownloadHandler):
    @classmethod
    def from_crawler(cls, crawler):
        h = getattr(crawler, "_tiswatch_playwright_handler", None)
        if h is None:
            h = cls(crawler)
            crawler._tiswatch_playwright_handler = h
        return h

    async def close(self) -> None:
        if getattr(self, "_tiswatch_closed", False):  # Scrapy closes it once per scheme
            return
        self._tiswatch_closed = True
        await super().close()


def playwright_handlers(crawler) -> list:
    """The crawl's Playwright download handlers, each once (a handler serves several schemes)."""
    try:
        handlers = crawler.engine.downloader.handlers._handlers.values()
    except AttributeError:
        return []
    out: dict[int, object] = {}
    for h in handlers:
        if getattr(h, "context_wrappers", None) is not None:
            out.setdefault(id(h), h)
    return list(out.values())
