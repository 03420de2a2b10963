"""Lazada: catalog JSON pages (?ajax=true&page=N, paged by mainInfo) for categories and searches, then
product pages (the __moduleData__ fields) for description, attributes and brand. Plain HTTP; a flagged
product page is rendered in Chromium once for the evidence screenshot."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import scrapy

from crawlers.parsers import lazada
from crawlers.parsers.blocks import block_reason
from crawlers.parsers.common import Blocked, ParseError
from crawlers.spiders.base import TiswatchSpider


class LazadaSpider(TiswatchSpider):
    name = "lazada"
    marketplace = "lazada"
    default_base = "https://www.lazada.co.th"

    def initial_requests(self):
        sp = self.start_points()
        for cat in sp.categories:
            url = self.absolute(cat)
            if "?" not in url and not url.endswith("/"):
                url += "/"
            yield self._catalog(url, 1)
        for kw in sp.keywords:
            yield self._catalog(f"{self.base_url}/catalog/?{urlencode({'q': kw})}", 1)
        self.complete_coverage = bool(sp.categories) and not sp.keywords

    def _catalog(self, url: str, page: int) -> scrapy.Request:
        sep = "&" if "?" in url else "?"
        return scrapy.Request(f"{url}{sep}ajax=true&page={page}", callback=self.parse_catalog, errback=self.on_error,
                              cb_kwargs={"root": url, "page": page}, headers={"Accept": "application/json"})

    def _product_url(self, url: str) -> str:
        # the catalog gives //www.lazada.co.th/products/...; on a replica keep its host and path prefix
        if "/products/" in url and not url.startswith(self.base_url):
            return self.base_url + "/products/" + quote(url.split("/products/", 1)[1], safe="/%-._~")
        return url

    def _product(self, card: dict[str, Any], card_hash: str | None, key: str, ref: str, priority: int = 0) -> scrapy.Request:
        return scrapy.Request(self._product_url(card.get("url") or ""), callback=self.parse_product, errback=self.on_error,
                              priority=priority, cb_kwargs={"card": card, "card_hash": card_hash},
                              meta={"listing_key": key, "ref": ref, "card": card_hash})

    def ref_of_url(self, url: str):
        ids = lazada.ids_from_url(url)
        return (ids[0], ids[0], None) if ids else None

    def revisit_request(self, row: dict[str, Any]) -> scrapy.Request | None:
        if not row.get("url") or not row.get("item_id"):
            return None
        card = {"marketplace": "lazada", "item_id": row["item_id"], "url": row["url"]}
        return self._product(card, row.get("card_hash"), row["key"], row["ref"], priority=-10)

    def parse_catalog(self, response: scrapy.http.Response, root: str, page: int):
        try:
            why = block_reason(response.url, response.status, response.body)
            if why:
                raise Blocked("lazada", response.url, why)
            try:
                data = json.loads(response.body)
            except ValueError as e:
                # a cut-off or garbled answer: ask again (with backoff), then give up on this page
                retry = self.retry(response, "invalid catalog JSON")
                if retry is not None:
                    self.crawler.stats.inc_value("tiswatch/invalid_json_retries")
                    yield retry
                else:
                    self.page_failed(response.url, f"not a catalog JSON ({len(response.body)} bytes): {e}")
                return
            cards, paging = lazada.parse_catalog(data, response.url, self.base_url.split("/lazada")[0])
        except Blocked as e:
            self.on_blocked(e)
            return
        except ParseError as e:
            self.page_failed(response.url, str(e))
            return
        for card, h in self.plan(cards):
            yield self._product(card, h, f"lazada:{card['item_id']}", card["item_id"])
        if paging["more"]:
            if page < max(1, self.max_search_pages or 10_000):
                yield self._catalog(root, page + 1)
            else:
                self.crawler.stats.inc_value("tiswatch/search_page_cap")
                if self.complete_coverage:
                    self.ctx.complete = False  # a category not seen to its end: no delisting from it

    def parse_product(self, response: scrapy.http.Response, card: dict[str, Any], card_hash: str | None = None):
        ref = response.meta.get("ref") or card["item_id"]
        item: dict[str, Any] = {}
        try:
            why = block_reason(response.url, response.status, response.body)
            if why:
                raise Blocked("lazada", response.url, why)
            fields = lazada.extract_module_data(response.text, response.url)
            item = lazada.parse_pdp_fields(fields, response.url, self.base_url)
        except Blocked as e:
            self.on_blocked(e)
        except ParseError as e:
            # the card alone is still a listing; the product page was not what we expect
            self.page_failed(response.url, str(e))
        merged = {**card, **{k: v for k, v in item.items() if v not in (None, "", [], {})}}
        merged["url"] = card.get("url") or response.url
        merged.update(_raw=response.body, _raw_kind="html", _sources=[response.url], _ref=ref, _card=card_hash)
        yield from self.finish(merged)
