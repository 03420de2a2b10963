"""Ordinary shop sites: schema.org Product from JSON-LD, microdata and OpenGraph (extruct), found from
start URLs or the site's sitemap.xml (sitemap indexes are followed). A sitemap's <lastmod> plays the
part of a search card: a page whose lastmod did not change is fetched again only when due."""

from __future__ import annotations

from typing import Any

import scrapy
from scrapy.utils.sitemap import Sitemap

from crawlers.incremental import card_hash, decide
from crawlers.parsers import schemaorg
from crawlers.parsers.blocks import block_reason
from crawlers.parsers.common import Blocked, ParseError
from crawlers.spiders.base import TiswatchSpider, _list


class ShopSpider(TiswatchSpider):
    name = "shop"
    marketplace = "shop"

    def __init__(self, base_url: str = "", start_urls: object = None, sitemap: str = "", **kw):
        super().__init__(base_url=base_url, **kw)
        self.arg_start_urls = _list(start_urls)
        self.arg_sitemap = sitemap

    def initial_requests(self):
        mp = self.mp_settings
        product_urls = self.arg_start_urls or ([] if self.arg_sitemap else list(mp.start_urls if mp else []))
        sitemaps = [self.arg_sitemap] if self.arg_sitemap else \
            ([f"{self.base_url}/sitemap.xml"] if self.base_url and not product_urls else [])
        self.complete_coverage = bool(sitemaps) and not product_urls
        for url in sitemaps:
            yield scrapy.Request(url, callback=self.parse_sitemap, errback=self.on_error)
        for url in product_urls:
            yield self._page(url, None, [])

    def _page(self, url: str, card: str | None, keys: list[str], priority: int = 0) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_page, errback=self.on_error, priority=priority,
                              cb_kwargs={"card": card}, meta={"ref": url, "card": card, "listing_keys": keys,
                                                              "listing_key": keys[0] if keys else None})

    def ref_of_url(self, url: str):
        return (url, None, None) if url.startswith(("http://", "https://")) else None

    def revisit_request(self, row: dict[str, Any]) -> scrapy.Request | None:
        url = row["ref"] if str(row.get("ref", "")).startswith(("http://", "https://")) else row.get("url")
        keys = [row["key"]] if row.get("key") else []
        return self._page(url, row.get("card_hash"), keys, priority=-10) if url else None

    def parse_sitemap(self, response: scrapy.http.Response):
        try:
            sm = Sitemap(response.body)
        except Exception as e:
            self.page_failed(response.url, f"not a sitemap ({e})")
            return
        entries = [e for e in sm if e.get("loc")]
        if sm.type == "sitemapindex":
            for e in entries:
                yield scrapy.Request(e["loc"], callback=self.parse_sitemap, errback=self.on_error)
            return
        ctx = self.ctx
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        states = ctx.store.fetch_states("shop", [e["loc"] for e in entries])
        unchanged: list[str] = []
        for e in entries:
            card = card_hash({"lastmod": e["lastmod"]}, ("lastmod",)) if e.get("lastmod") else None
            st = states.get(e["loc"])
            d = decide(card, st, now, ctx.policy)
            self.crawler.stats.inc_value(f"tiswatch/cards/{d.why}")
            if d.fetch:
                yield self._page(e["loc"], card, st.keys if st else [])
            else:
                unchanged.extend(st.keys if st else [])
        if unchanged:
            ctx.store.touch(unchanged, now)
            ctx.seen.update(unchanged)
            self.crawler.stats.inc_value("tiswatch/skipped_unchanged", len(unchanged))

    def parse_page(self, response: scrapy.http.Response, card: str | None = None):
        if not isinstance(response, scrapy.http.TextResponse):
            self.page_failed(response.url, "not a text page")
            return
        why = block_reason(response.url, response.status, response.body)
        if why:
            self.on_blocked(Blocked("shop", response.url, why))
        try:
            products = schemaorg.products_in_page(response.text, response.url, "shop")
        except ParseError as e:
            self.page_failed(response.url, str(e))
            return
        ref = response.meta.get("ref") or response.request.url
        if not products:
            self.crawler.stats.inc_value("tiswatch/pages_without_product")
            for key in response.meta.get("listing_keys") or []:
                self.gone(key, ref, response.url, card)  # it was a product page; it is not any more
            return
        keys = [f"shop:{p['item_id']}" for p in products]
        for p in products:
            p.update(_raw=response.body, _raw_kind="html", _sources=[response.url], _ref=ref, _ref_keys=keys, _card=card)
            yield from self.finish(p)
