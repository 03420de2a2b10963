"""Shopee: a real browser is the only way in. Plain HTTP gets error 90309999 or 403, because the
front end signs every API request with headers computed in the page. So we drive search and product
pages in Chromium through scrapy-playwright and read the JSON the page itself receives
(api/v4/search/search_items in both shapes, api/v4/pdp/get_pc), falling back to the page's JSON-LD.

Every Playwright page is closed in the callback that received it, errors included (`finally`), and in
the errbacks; a page of a response that is retried is closed by the retry middleware.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy_playwright.page import PageMethod

from crawlers.middlewares import backoff_delay
from crawlers.parsers import shopee
from crawlers.parsers.blocks import block_reason
from crawlers.parsers.common import Blocked, ParseError
from crawlers.spiders.base import TiswatchSpider

log = logging.getLogger(__name__)
RETRY_STATUSES = (429, 500, 502, 503, 504)


async def _init_page(page, request):
    """Before navigation: listen to the page's own API responses and keep (url, status, body)."""
    captured: list[tuple[str, asyncio.Future]] = []
    asked: list[str] = []
    page.tiswatch_captured = captured
    page.tiswatch_asked = asked  # API calls the page made, answered or not

    def on_request(req):
        if "/api/v4/" in req.url:
            asked.append(req.url)

    def on_response(resp):
        if "/api/v4/" in resp.url:
            captured.append((resp.url, asyncio.ensure_future(_body(resp))))

    page.on("request", on_request)

    page.on("response", on_response)


async def _body(resp) -> tuple[str, int, bytes]:
    try:
        return resp.url, resp.status, await resp.body()
    except Exception:
        return resp.url, resp.status, b""


async def wait_for_api(page, marker: str, timeout: float = 20.0) -> None:
    """Page method: wait until the page has received the API response whose URL has `marker`, or
    was sent to a verification page, or `timeout` seconds passed (the callback then reports it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if "/verify/" in page.url:
            return
        pending = [f for u, f in getattr(page, "tiswatch_captured", []) if marker in u]
        if pending:
            await asyncio.wait(pending, timeout=max(0.1, deadline - loop.time()))
            return
        await asyncio.sleep(0.05)


def _asked(page, marker: str) -> bool:
    return any(marker in u for u in getattr(page, "tiswatch_asked", ()))


class ShopeeSpider(TiswatchSpider):
    name = "shopee"
    marketplace = "shopee"
    default_base = "https://shopee.co.th"
    render_for_evidence = False  # the page is in a browser already: screenshots are taken there

    @property
    def img_base(self) -> str:
        """Where the pictures named in the JSON live: Shopee's CDN, or /file on a replica's own host."""
        if self.base_url == self.default_base:
            return "https://down-th.img.susercontent.com/file"
        from urllib.parse import urlsplit

        u = urlsplit(self.base_url)
        return f"{u.scheme}://{u.netloc}/file"

    @property
    def api_wait(self) -> float:
        """Seconds a page may take to receive its own API answer: the crawl's request timeout."""
        return float(self.settings.getfloat("DOWNLOAD_TIMEOUT", 30.0))

    def _meta(self, marker: str, **extra: Any) -> dict[str, Any]:
        return {"playwright": True, "playwright_include_page": True, "playwright_page_init_callback": _init_page,
                "playwright_page_methods": [PageMethod(wait_for_api, marker, self.api_wait)], **extra}

    def initial_requests(self):
        sp = self.start_points()
        for cat in sp.categories:
            yield self._search(self.absolute(cat).split("?")[0], 0)
        for kw in sp.keywords:
            yield self._search(f"{self.base_url}/search?{urlencode({'keyword': kw})}", 0)
        self.complete_coverage = bool(sp.categories) and not sp.keywords

    def _search(self, url: str, page: int) -> scrapy.Request:
        sep = "&" if "?" in url else "?"
        return scrapy.Request(f"{url}{sep}page={page}" if page else url, callback=self.parse_search,
                              errback=self.on_page_error, meta=self._meta("search_items"),
                              cb_kwargs={"root": url, "page": page})

    def _product(self, url: str, card: dict[str, Any], card_hash: str | None, key: str, ref: str,
                 priority: int = 0) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_product, errback=self.on_page_error, priority=priority,
                              meta=self._meta("pdp/get_pc", listing_key=key, ref=ref, card=card_hash),
                              cb_kwargs={"card": card, "card_hash": card_hash})

    def ref_of_url(self, url: str):
        ids = shopee.ids_from_url(url)
        return (ids[1], ids[1], ids[0]) if ids else None

    def revisit_request(self, row: dict[str, Any]) -> scrapy.Request | None:
        url = row.get("url") or (shopee.product_url(self.base_url, "item", row.get("shop_id"), row["item_id"])
                                 if row.get("shop_id") else None)
        if not url:
            return None
        card = {k: v for k, v in {"marketplace": "shopee", "item_id": row["item_id"], "shop_id": row.get("shop_id"),
                                  "url": url}.items() if v}
        return self._product(url, card, row.get("card_hash"), row["key"], row["ref"], priority=-10)

    async def _captured(self, page) -> list[tuple[str, int, Any]]:
        futs = [f for _, f in getattr(page, "tiswatch_captured", [])]
        out = []
        for url, status, body in await asyncio.gather(*futs):
            if status in RETRY_STATUSES:
                out.append((url, status, None))
                continue
            if not body:
                continue
            try:
                out.append((url, status, json.loads(body)))
            except ValueError:
                self.page_failed(url, f"API answered HTTP {status} with something that is not JSON")
        return out

    def _retry(self, response, why: str):
        """The page's own API call failed (429/5xx): fetch the page again after a backoff."""
        retry = self.retry(response, why)
        if retry is None:
            return None
        self.crawler.stats.inc_value("tiswatch/api_retries")
        return retry, backoff_delay(retry.meta.get("retry_times", 1), None, 0.5, 60.0, random.random())

    async def on_page_error(self, failure):
        page = failure.request.meta.get("playwright_page")
        try:
            if page is not None and "/verify/" in (page.url or ""):
                self.on_blocked(Blocked("shopee", page.url, "captcha / traffic verification page"))
        finally:
            if page is not None and not page.is_closed():
                await page.close()
        self.on_error(failure)

    def _check_block(self, response, page) -> None:
        url = page.url if page is not None else response.url
        why = block_reason(url, response.status, response.body)
        if why:
            raise Blocked("shopee", url, why)

    async def parse_search(self, response: scrapy.http.Response, root: str, page: int):
        pw = response.meta.get("playwright_page")
        follow: list[scrapy.Request] = []
        try:
            self._check_block(response, pw)
            found = False
            for url, status, data in await self._captured(pw):
                if "search_items" not in url:
                    continue
                if data is None:
                    r = self._retry(response, f"search_items HTTP {status}")
                    if r is not None:
                        await asyncio.sleep(r[1])
                        follow.append(r[0])
                    else:
                        self.page_failed(response.url, f"search_items answered HTTP {status} after retries")
                    found = True
                    break
                found = True
                cards = shopee.parse_search_items(data, self.base_url, url, img_base=self.img_base)
                for card, h in self.plan(cards):
                    key = f"shopee:{card['item_id']}"
                    follow.append(self._product(card["url"], card, h, key, card["item_id"]))
                if shopee.search_has_more(data):
                    if page + 1 < max(1, self.max_search_pages or 10_000):
                        follow.append(self._search(root, page + 1))
                    else:
                        self.crawler.stats.inc_value("tiswatch/search_page_cap")
                        if self.complete_coverage:
                            self.ctx.complete = False  # a category not seen to its end: no delisting from it
            if not found:
                self.page_failed(response.url, "the page received no search_items response")
        except Blocked as e:
            self.on_blocked(e)
        except ParseError as e:
            self.page_failed(response.url, str(e))
        finally:
            if pw is not None and not pw.is_closed():
                await pw.close()
        for r in follow:
            yield r

    async def parse_product(self, response: scrapy.http.Response, card: dict[str, Any], card_hash: str | None = None):
        pw = response.meta.get("playwright_page")
        out: list[Any] = []
        try:
            await self._product_page(response, pw, card, card_hash, out)
        except Blocked as e:
            self.on_blocked(e)
        except ParseError as e:
            self.page_failed(response.url, str(e))
        finally:
            if pw is not None and not pw.is_closed():
                await pw.close()
        for x in out:
            yield x

    async def _product_page(self, response, pw, card: dict[str, Any], card_hash: str | None, out: list[Any]) -> None:
        self._check_block(response, pw)
        item: dict[str, Any] | None = None
        raw = b""
        gone = retry = False
        for url, _status, data in await self._captured(pw):
            if "pdp/get_pc" not in url:
                continue
            if data is None:
                retry = True
                continue
            parsed = shopee.parse_get_pc(data, self.base_url, url, img_base=self.img_base)
            raw = json.dumps(data, ensure_ascii=False).encode()
            if parsed is None:
                gone = True
            else:
                item = parsed
        if item is None and not gone and not retry and _asked(pw, "pdp/get_pc"):
            # the page asked for its get_pc but the answer did not come in time (a slow page or a busy
            # machine): load the page again rather than settle for the thinner JSON-LD (no attributes)
            r = self._retry(response, "get_pc asked for but not answered in time")
            if r is not None:
                await asyncio.sleep(r[1])
                out.append(r[0])
                return
        if item is None and not gone:
            item = self._from_jsonld(response.text, response.url)
            if item is not None:
                self.crawler.stats.inc_value("tiswatch/shopee/jsonld_fallback")
                log.warning("%s: no get_pc answer: the listing is read from the page's JSON-LD (no attributes)", response.url)
        if item is None and retry:
            r = self._retry(response, "get_pc HTTP 429/5xx")
            if r is None:
                self.page_failed(response.url, "get_pc kept failing after retries")
            else:
                await asyncio.sleep(r[1])
                out.append(r[0])
            return
        key = response.meta.get("listing_key") or f"shopee:{card['item_id']}"
        ref = response.meta.get("ref") or card["item_id"]
        if item is None:
            if gone:
                self.gone(key, ref, response.url, card_hash)
            else:
                self.page_failed(response.url, "no get_pc response and no JSON-LD Product")
            return
        merged = {**card, **{k: v for k, v in item.items() if v not in (None, "", [], {})}}
        merged.update(_raw=raw or response.body, _raw_kind="json" if raw else "html", _html=response.text,
                      _sources=[response.url], _ref=ref, _card=card_hash)
        if self.wants_evidence(merged) and pw is not None:
            try:
                merged["_screenshot"] = await pw.screenshot(full_page=True, type="png")
                self.crawler.stats.inc_value("tiswatch/screenshots")
            except Exception as e:  # the browser crashed under the page: the listing is kept, with the rest of its evidence
                self.crawler.stats.inc_value("tiswatch/screenshot_errors")
                log.warning("no screenshot of %s: %s", response.url, e)
        out.append(merged)

    @staticmethod
    def _from_jsonld(html: str, url: str) -> dict[str, Any] | None:
        from crawlers.parsers.schemaorg import jsonld_blocks

        for d in jsonld_blocks(html):
            if d.get("@type") == "Product":
                return shopee.parse_jsonld(d, url)
        return None


def abort_request(request) -> bool:
    """Fonts and media are never needed; images are kept for the evidence screenshot."""
    return request.resource_type in ("font", "media")
