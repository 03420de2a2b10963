"""What the tiswatch spiders share: arguments from configuration, block handling, item assembly."""

from __future__ import annotations

import json
import logging
from typing import Any

import scrapy
from scrapy.exceptions import CloseSpider

from crawlers.context import context_for
from crawlers.parsers.common import Blocked

log = logging.getLogger(__name__)


def _list(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        v = v.strip()
        if v.startswith("["):
            return [str(x) for x in json.loads(v)]
        return [x.strip() for x in v.split("|") if x.strip()]
    return [str(x) for x in v]


class TiswatchSpider(scrapy.Spider):
    """Arguments (-a on the Scrapy command line, or from `tiswatch crawl`): base_url, categories and
    keywords ("a|b|c" or a JSON list), max_search_pages. Without categories and keywords the keywords
    come from the standards catalogue."""

    marketplace = ""
    default_base = ""
    complete_coverage = False  # True when this crawl saw everything the marketplace lists (category crawl)

    def __init__(self, base_url: str = "", categories: Any = None, keywords: Any = None,
                 max_search_pages: Any = None, listing_urls: Any = None, **kw: Any):
        super().__init__(**kw)
        # a revisit (scheduler): these listings' own pages are fetched again, and nothing else
        self.listing_urls = _list(listing_urls)
        self.base_url = (base_url or self.default_base).rstrip("/")
        self.categories = _list(categories)
        self.keywords = _list(keywords)
        self.max_search_pages = int(max_search_pages) if max_search_pages not in (None, "") else 3

    @property
    def ctx(self):
        return context_for(self.crawler, self.marketplace)

    def start_keywords(self) -> list[str]:
        if self.keywords or self.categories:
            return self.keywords
        if self.listing_urls:
            return []
        from crawlers.keywords import catalogue_keywords
        from registry.catalogue import load_catalogue

        return catalogue_keywords(load_catalogue(self.ctx.settings.catalogue_path))

    def on_blocked(self, exc: Blocked) -> None:
        """A block or captcha: record it, stop this marketplace's crawl instead of looping on it."""
        self.crawler.stats.inc_value("tiswatch/blocked")
        self.ctx.blocked = {"url": exc.url, "why": exc.why}
        self.ctx.complete = False
        log.error("%s", exc)
        raise CloseSpider("blocked")

    def on_error(self, failure) -> None:
        self.ctx.complete = False
        self.crawler.stats.inc_value("tiswatch/page_errors")
        log.warning("page failed: %s (%s)", getattr(failure.request, "url", "?"), failure.getErrorMessage())

    def page_failed(self, url: str, why: str) -> None:
        self.ctx.complete = False
        self.crawler.stats.inc_value("tiswatch/parse_errors")
        log.warning("skipped %s: %s", url, why)
