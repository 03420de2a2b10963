"""Shopee: a real browser is the only way in. Plain HTTP gets error 90309999 or 403, because the
front end signs every API request with headers computed in the page. So we drive search and product
pages in Chromium through scrapy-playwright and read the JSON the page itself receives
(api/v4/search/search_items in both shapes, api/v4/pdp/get_pc), falling back to the page's JSON-LD.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy_playwright.page import PageMethod

from crawlers.parsers import shopee
from crawlers.parsers.common import Blocked, ParseError
from crawlers.spiders.base import TiswatchSpider

log = logging.getLogger(__name__)
_LD = re.compile(r'<script[^>]+type="application/ld\+json"[^>]*>(.*?)</script>', re.S)


async def _init_page(page, request):
    """Before navigation: listen to the page's own API responses and keep their bodies."""
    captured: list[asyncio.Future] = []
    request.meta["_captured"] = captured

    def on_response(resp):
        if "/api/v4/" in resp.url:
            captured.append(asyncio.ensure_future(_body(resp)))

    page.on("response", on_response)


async def _body(resp) -> tuple[str, bytes]:
    try:
        return resp.url, await resp.body()
    except Exception:
        return resp.url, b""


class ShopeeSpider(TiswatchSpider):
    name = "shopee"
    marketplace = "shopee"
    default_base = "https://shopee.co.th"
    custom_settings = {
        "DOWNLOAD_HANDLERS": {
            "http": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
            "https": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
        },
        "PLAYWRIGHT_ABORT_REQUEST": "crawlers.spiders.shopee.abort_request",
    }

    def _meta(self, **extra: Any) -> dict[str, Any]:
        return {"playwright": True, "playwright_include_page": True, "playwright_page_init_callback": _init_page,
                "playwright_page_methods": [PageMethod("wait_for_selector", "body[data-loaded], body[data-blocked]", timeout=20_000)],
                **extra}

    async def start(self):
        for cat in self.categories:
            url = cat if cat.startswith("http") else f"{self.base_url}/{cat.lstrip('/')}"
            yield self._search(url.split("?")[0], 0)
        for kw in self.start_keywords():
            yield self._search(f"{self.base_url}/search?{urlencode({'keyword': kw})}", 0)
        self.complete_coverage = bool(self.categories) and not self.keywords
        for url in self.listing_urls:
            yield scrapy.Request(url, callback=self.parse_product, errback=self.on_page_error, meta=self._meta(),
                                 cb_kwargs={"card": {}})

    def _search(self, url: str, page: int) -> scrapy.Request:
        sep = "&" if "?" in url else "?"
        return scrapy.Request(f"{url}{sep}page={page}" if page else url, callback=self.parse_search, errback=self.on_page_error,
                              meta=self._meta(), cb_kwargs={"root": url, "page": page}, dont_filter=page == 0 and False)

    async def _captured(self, response) -> list[tuple[str, Any]]:
        futs = response.meta.get("_captured") or []
        out = []
        for url, body in await asyncio.gather(*futs):
            if not body:
                continue
            try:
                out.append((url, json.loads(body)))
            except ValueError:
                self.page_failed(url, "API answered with something that is not JSON")
        return out

    async def on_page_error(self, failure):
        page = failure.request.meta.get("playwright_page")
        if page is not None and not page.is_closed():
            await page.close()
        self.on_error(failure)

    async def parse_search(self, response: scrapy.http.Response, root: str, page: int):
        pw = response.meta["playwright_page"]
        follow: list[scrapy.Request] = []
        try:
            if "/verify/" in response.url:
                raise Blocked("shopee", response.url, "captcha / traffic verification page")
            found = False
            for url, data in await self._captured(response):
                if "search_items" not in url:
                    continue
                found = True
                cards = shopee.parse_search_items(data, self.base_url, url)
                for card in cards:
                    follow.append(scrapy.Request(card["url"], callback=self.parse_product, errback=self.on_page_error,
                                                 meta=self._meta(), cb_kwargs={"card": card}))
                if shopee.search_has_more(data) and page + 1 < max(1, self.max_search_pages or 10_000):
                    follow.append(self._search(root, page + 1))
            if not found:
                self.page_failed(response.url, "the page made no search_items request")
        except Blocked as e:
            await pw.close()
            self.on_blocked(e)
        except ParseError as e:
            self.page_failed(response.url, str(e))
        finally:
            if not pw.is_closed():
                await pw.close()
        for r in follow:
            yield r

    async def parse_product(self, response: scrapy.http.Response, card: dict[str, Any]):
        from listings.model import Listing
        from matching import check

        pw = response.meta["playwright_page"]
        item: dict[str, Any] | None = None
        raw = b""
        try:
            gone = False
            for url, data in await self._captured(response):
                if "pdp/get_pc" in url:
                    parsed = shopee.parse_get_pc(data, self.base_url, url)
                    raw = json.dumps(data, ensure_ascii=False).encode()
                    if parsed is None:
                        gone = True
                    else:
                        item = parsed
            if item is None and not gone:
                item = self._from_jsonld(response.text, response.url)
            if item is None:
                if gone:
                    self.crawler.stats.inc_value("tiswatch/items_gone")
                else:
                    self.page_failed(response.url, "no get_pc response and no JSON-LD Product")
                return
            merged = {**card, **{k: v for k, v in item.items() if v not in (None, "", [], {})}}
            merged["_raw"], merged["_raw_kind"] = (raw, "json") if raw else (response.body, "html")
            merged["_html"] = response.text
            merged["_sources"] = [response.url]
            try:
                listing = Listing.model_validate({k: v for k, v in merged.items() if not k.startswith("_")})
                v = check(listing, self.ctx.registry)
                merged["_verdict"] = v
                if v.flagged and self.ctx.settings.crawl.screenshots:
                    merged["_screenshot"] = await pw.screenshot(full_page=True, type="png")
            except Exception as e:
                log.debug("pre-check failed for %s: %s", response.url, e)
            yield merged
        except Blocked as e:
            await pw.close()
            self.on_blocked(e)
        except ParseError as e:
            self.page_failed(response.url, str(e))
        finally:
            if not pw.is_closed():
                await pw.close()

    @staticmethod
    def _from_jsonld(html: str, url: str) -> dict[str, Any] | None:
        for block in _LD.findall(html):
            try:
                data = json.loads(block)
            except ValueError:
                continue
            for d in data if isinstance(data, list) else [data]:
                if isinstance(d, dict) and d.get("@type") == "Product":
                    return shopee.parse_jsonld(d, url)
        return None


def abort_request(request) -> bool:
    """Fonts and media are never needed; images are kept for the evidence screenshot."""
    return request.resource_type in ("font", "media")
