"""Ordinary shop sites: schema.org Product from JSON-LD, microdata and OpenGraph (extruct), found from
start URLs or the site's sitemap.xml (sitemap indexes are followed)."""

from __future__ import annotations

import scrapy
from scrapy.utils.sitemap import Sitemap

from crawlers.parsers import schemaorg
from crawlers.parsers.common import ParseError
from crawlers.spiders.base import TiswatchSpider, _list


class ShopSpider(TiswatchSpider):
    name = "shop"
    marketplace = "shop"

    def __init__(self, base_url: str = "", start_urls: object = None, sitemap: str = "", **kw):
        super().__init__(base_url=base_url, **kw)
        self.product_urls = _list(start_urls)
        self.sitemap_urls = [sitemap] if sitemap else (
            [f"{self.base_url}/sitemap.xml"] if self.base_url and not self.product_urls and not self.listing_urls else [])
        self.product_urls += [u for u in self.listing_urls if u not in self.product_urls]

    async def start(self):
        self.complete_coverage = bool(self.sitemap_urls) and not self.product_urls
        for url in self.sitemap_urls:
            yield scrapy.Request(url, callback=self.parse_sitemap, errback=self.on_error)
        for url in self.product_urls:
            yield scrapy.Request(url, callback=self.parse_page, errback=self.on_error)

    def parse_sitemap(self, response: scrapy.http.Response):
        try:
            sm = Sitemap(response.body)
        except Exception as e:
            self.page_failed(response.url, f"not a sitemap ({e})")
            return
        for entry in sm:
            loc = entry.get("loc")
            if not loc:
                continue
            if sm.type == "sitemapindex":
                yield scrapy.Request(loc, callback=self.parse_sitemap, errback=self.on_error)
            else:
                yield scrapy.Request(loc, callback=self.parse_page, errback=self.on_error)

    def parse_page(self, response: scrapy.http.Response):
        if not isinstance(response, scrapy.http.TextResponse):
            self.page_failed(response.url, "not a text page")
            return
        try:
            products = schemaorg.products_in_page(response.text, response.url, "shop")
        except ParseError as e:
            self.page_failed(response.url, str(e))
            return
        if not products:
            self.crawler.stats.inc_value("tiswatch/pages_without_product")
            return
        for p in products:
            p["_raw"] = response.body
            p["_raw_kind"] = "html"
            p["_sources"] = [response.url]
            yield p
