"""Lazada: catalog JSON pages (?ajax=true&page=N) for categories and searches, then product pages
(the __moduleData__ fields) for description, attributes and brand. Plain HTTP, no browser."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import scrapy

from crawlers.parsers import lazada
from crawlers.parsers.common import Blocked, ParseError
from crawlers.spiders.base import TiswatchSpider


class LazadaSpider(TiswatchSpider):
    name = "lazada"
    marketplace = "lazada"
    default_base = "https://www.lazada.co.th"

    async def start(self):
        for cat in self.categories:
            url = cat if cat.startswith("http") else f"{self.base_url}/{cat.strip('/')}/"
            yield self._catalog(url, 1)
        for kw in self.start_keywords():
            yield self._catalog(f"{self.base_url}/catalog/?{urlencode({'q': kw})}", 1, kw)
        self.complete_coverage = bool(self.categories) and not self.keywords
        for url in self.listing_urls:
            yield scrapy.Request(url, callback=self.parse_product, errback=self.on_error, cb_kwargs={"card": {}})

    def _catalog(self, url: str, page: int, q: str | None = None) -> scrapy.Request:
        sep = "&" if "?" in url else "?"
        return scrapy.Request(f"{url}{sep}ajax=true&page={page}", callback=self.parse_catalog, errback=self.on_error,
                              cb_kwargs={"root": url, "page": page}, headers={"Accept": "application/json"})

    def parse_catalog(self, response: scrapy.http.Response, root: str, page: int):
        try:
            lazada.check_block(response.text, response.url)
            data = response.json()
            cards, paging = lazada.parse_catalog(data, response.url, self.base_url.split("/lazada")[0])
        except Blocked as e:
            self.on_blocked(e)
        except (ParseError, ValueError) as e:
            self.page_failed(response.url, f"not a catalog JSON ({e})")
            return
        for card in cards:
            url = self._product_url(card)
            yield scrapy.Request(url, callback=self.parse_product, errback=self.on_error, cb_kwargs={"card": card})
        if paging["more"] and page < max(1, self.max_search_pages or 10_000):
            yield self._catalog(root, page + 1)

    def _product_url(self, card: dict[str, Any]) -> str:
        u = card.get("url") or ""
        # the catalog gives //www.lazada.co.th/products/...; on a replica keep its host and path prefix
        if "/products/" in u and not u.startswith(self.base_url):
            return self.base_url + "/products/" + quote(u.split("/products/", 1)[1], safe="/%-._~")
        return u

    def parse_product(self, response: scrapy.http.Response, card: dict[str, Any]):
        if response.status == 404:
            return
        try:
            fields = lazada.extract_module_data(response.text, response.url)
            item = lazada.parse_pdp_fields(fields, response.url, self.base_url)
        except Blocked as e:
            self.on_blocked(e)
        except ParseError as e:
            # the card alone is still a listing; the product page was not what we expect
            self.page_failed(response.url, str(e))
            item = {}
        merged = {**card, **{k: v for k, v in item.items() if v not in (None, "", [], {})}}
        merged["url"] = card.get("url") or response.url
        merged["_raw"] = response.body
        merged["_raw_kind"] = "html"
        merged["_sources"] = [response.url]
        yield merged
