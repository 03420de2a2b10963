"""What the tiswatch spiders share: start points from configuration, resuming an interrupted run,
incremental planning of search cards, evidence rendering, block handling, vanished listings.

Spiders yield plain dicts in the listing format (DOMAIN.md §4.2); keys starting with "_" carry what
only the pipelines need (crawlers/pipelines.py) and never reach the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.request import request_from_dict

from crawlers.context import context_for
from crawlers.incremental import card_hash, decide
from crawlers.parsers.blocks import block_reason
from crawlers.parsers.common import Blocked

log = logging.getLogger(__name__)
GONE_STATUSES = (404, 410)


def _list(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        v = v.strip()
        if v.startswith("["):
            return [str(x) for x in json.loads(v)]
        return [x.strip() for x in v.split("|") if x.strip()]
    return [str(x) for x in v]


def public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("_")}


class TiswatchSpider(scrapy.Spider):
    """Arguments (-a on the Scrapy command line, or from `tiswatch crawl`): base_url, categories and
    keywords ("a|b|c" or a JSON list), max_search_pages. Without categories and keywords the start
    points come from the configuration: [marketplaces.NAME] keywords and categories, the catalogue's
    product words and config/category_seeds.toml (crawlers/keywords.py)."""

    marketplace = ""
    default_base = ""
    complete_coverage = False  # True when this crawl sees everything the marketplace lists (category crawl)
    render_for_evidence = True  # flagged pages fetched over plain HTTP are rendered in Chromium for a screenshot
    max_429_pages = 3  # pages in a row still answered with HTTP 429 after all retries: the site is blocking us

    def __init__(self, base_url: str = "", categories: Any = None, keywords: Any = None,
                 max_search_pages: Any = None, listing_urls: Any = None, **kw: Any):
        super().__init__(**kw)
        # a revisit (the scheduler's revisit job): these listings' own pages are fetched, nothing else
        self.listing_urls = _list(listing_urls)
        self.revisits = not self.listing_urls
        self._base_url = (base_url or "").rstrip("/")
        self.arg_categories = _list(categories)
        self.arg_keywords = _list(keywords)
        self._max_search_pages = int(max_search_pages) if max_search_pages not in (None, "") else None

    # ---- configuration ---------------------------------------------------------------------------
    @property
    def ctx(self):
        return context_for(self.crawler, self.marketplace)

    @property
    def mp_settings(self):
        return self.ctx.settings.marketplaces.get(self.marketplace)

    @property
    def base_url(self) -> str:
        mp = self.mp_settings
        return self._base_url or (mp.base_url if mp is not None and mp.base_url else self.default_base)

    @property
    def max_search_pages(self) -> int:
        if self._max_search_pages is not None:
            return self._max_search_pages
        mp = self.mp_settings
        return mp.max_search_pages if mp is not None else 3

    def start_points(self):
        from crawlers.keywords import catalogue_keywords, load_seeds, start_points
        from registry.catalogue import load_catalogue

        mp = self.mp_settings
        explicit = bool(self.arg_keywords or self.arg_categories)
        words = [] if explicit or (mp is not None and not mp.catalogue_keywords) else \
            catalogue_keywords(load_catalogue(self.ctx.settings.catalogue_path))
        seeds = {} if explicit or (mp is not None and not mp.seed_categories) else load_seeds()
        return start_points(self.marketplace, mp, self.arg_keywords, self.arg_categories, words, seeds)

    def absolute(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        if path_or_url.startswith("//"):
            return "https:" + path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    # ---- starting and resuming -------------------------------------------------------------------
    async def start(self):
        ctx = self.ctx
        ctx.tracker_for(self.crawler)  # fails the crawl now if the frontier cannot be opened
        if ctx.frontier.run.resumed:
            n = 0
            for d in ctx.frontier.pending():
                try:
                    yield request_from_dict(d, spider=self)
                    n += 1
                except Exception as e:  # a request of an older version of the spider
                    log.warning("cannot resume a request of the interrupted crawl (%s): %s", d.get("url"), e)
            self.crawler.stats.set_value("tiswatch/frontier/resumed_requests", n)
        if self.listing_urls:
            for row in self.url_rows(self.listing_urls):
                r = self.revisit_request(row)
                if r is not None:
                    yield r
            return
        for r in self.initial_requests():
            yield r

    def initial_requests(self) -> Iterable[scrapy.Request]:
        return []

    def ref_of_url(self, url: str) -> tuple[str, str | None, str | None] | None:
        """(ref, item id, shop id) of a listing page URL; None when the URL is not one."""
        return None

    def url_rows(self, urls: list[str]) -> list[dict[str, Any]]:
        """Revisit rows (as ListingStore.due_refetch gives them) for listing page URLs."""
        refs = {u: self.ref_of_url(u) for u in urls}
        states = self.ctx.store.fetch_states(self.marketplace, [r[0] for r in refs.values() if r])
        rows = []
        for url, r in refs.items():
            if r is None:
                log.warning("not a %s listing URL, not revisited: %s", self.marketplace, url)
                continue
            st = states.get(r[0])
            key = st.keys[0] if st and st.keys else (f"{self.marketplace}:{r[1]}" if r[1] else None)
            rows.append({"key": key, "ref": r[0], "url": url, "item_id": r[1], "shop_id": r[2],
                         "card_hash": st.card_hash if st else None})
        return rows

    def revisit_request(self, row: dict[str, Any]) -> scrapy.Request | None:
        """A request for a known listing's own page (is it still there? what does it say now?)."""
        return None

    # ---- incremental crawling ----------------------------------------------------------------------
    def plan(self, cards: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        """The cards whose product page is to be fetched (with their card hash); the others are
        recorded as seen again, unchanged (crawlers/incremental.py)."""
        ctx = self.ctx
        now = datetime.now(UTC)
        states = ctx.store.fetch_states(self.marketplace, [c["item_id"] for c in cards])
        out: list[tuple[dict[str, Any], str]] = []
        unchanged: list[str] = []
        policy = ctx.policy
        for c in cards:
            h = card_hash(c)
            d = decide(h, states.get(c["item_id"]), now, policy)
            self.crawler.stats.inc_value(f"tiswatch/cards/{d.why}")
            if d.fetch:
                out.append((c, h))
            else:
                unchanged.append(f"{self.marketplace}:{c['item_id']}")
        if unchanged:
            ctx.store.touch(unchanged, now)
            ctx.seen.update(unchanged)
            self.crawler.stats.inc_value("tiswatch/skipped_unchanged", len(unchanged))
        return out

    def gone(self, key: str, ref: str, url: str, card: str | None = None) -> None:
        """The listing's own page says it no longer exists: delisted, with the time it was last seen."""
        ctx = self.ctx
        now = datetime.now(UTC)
        self.crawler.stats.inc_value("tiswatch/items_gone")
        last_seen = ctx.store.delist(key, now)
        if last_seen is not None:
            self.crawler.stats.inc_value("tiswatch/delisted_gone")
            ctx.events.append("delisted", key, {"marketplace": self.marketplace, "last_seen": last_seen.isoformat(),
                                                "url": url})
            log.info("delisted %s (last seen %s): %s", key, last_seen.isoformat(timespec="seconds"), url,
                     extra={"listing": key})
        ctx.store.record_fetch(self.marketplace, ref, [key], card, now)

    # ---- evidence ----------------------------------------------------------------------------------
    def precheck(self, item: dict[str, Any]):
        """(listing, verdict) for a spider's item, checked now (the check pipeline then reuses the
        verdict); (None, None) when it is not a valid listing (the validate pipeline reports it)."""
        from listings.model import Listing
        from matching import check

        try:
            listing = Listing.model_validate(public(item))
        except Exception:
            return None, None
        item["_verdict"] = check(listing, self.ctx.registry)
        return listing, item["_verdict"]

    def wants_evidence(self, item: dict[str, Any]) -> bool:
        """A flagged listing whose current view has no evidence yet: a screenshot is to be taken."""
        if not self.ctx.settings.crawl.screenshots:
            return False  # nothing to decide here: the check stage (or the store worker) checks it
        listing, v = self.precheck(item)
        return bool(listing is not None and v.flagged
                    and self._needs_evidence(item.get("_ref") or listing.item_id, listing))

    def finish(self, item: dict[str, Any]) -> Iterator[Any]:
        """The item, or first a request to render its page in Chromium for a full-page screenshot
        when it is flagged and needs fresh evidence (pages fetched over plain HTTP)."""
        url = (item.get("_sources") or [None])[0] or item.get("url")
        if not (self.render_for_evidence and url and self.wants_evidence(item)):
            yield item
            return
        self.crawler.stats.inc_value("tiswatch/render_requests")
        tr = self.ctx.tracker
        key = (tr.key(scrapy.Request(url)) if tr is not None else url) + ":render"
        yield scrapy.Request(url, callback=self.parse_render, errback=self.render_failed, dont_filter=True,
                             priority=10, cb_kwargs={"item": item},
                             meta={"playwright": True, "playwright_include_page": True, "frontier_key": key,
                                   "playwright_page_goto_kwargs": {"wait_until": "load"}})

    def _needs_evidence(self, ref: str, listing) -> bool:
        st = self.ctx.store.fetch_states(self.marketplace, [ref]).get(ref)
        return not (st and st.has_evidence and st.content_hash == listing.content_hash())

    async def parse_render(self, response, item: dict[str, Any]):
        page = response.meta.get("playwright_page")
        try:
            if page is not None:
                item["_screenshot"] = await page.screenshot(full_page=True, type="png")
                item["_html"] = await page.content()
                self.crawler.stats.inc_value("tiswatch/screenshots")
        except Exception as e:
            self.crawler.stats.inc_value("tiswatch/screenshot_errors")
            log.warning("no screenshot of %s: %s", response.url, e)
        finally:
            if page is not None and not page.is_closed():
                await page.close()
        yield item

    async def render_failed(self, failure):
        """The page could not be rendered: the listing is stored with the evidence it has."""
        page = failure.request.meta.get("playwright_page")
        if page is not None and not page.is_closed():
            await page.close()
        self.crawler.stats.inc_value("tiswatch/screenshot_errors")
        log.warning("rendering %s for evidence failed: %s", failure.request.url, failure.getErrorMessage())
        item = failure.request.cb_kwargs["item"]
        tr = self.ctx.tracker
        if tr is not None:
            key = tr.key(failure.request)
            tr.item_started(key, item)
            tr.output_done(key, failure.request.url)
        return [item]

    # ---- trouble -----------------------------------------------------------------------------------
    def retry(self, response, reason: str) -> scrapy.Request | None:
        """Ask again for a page whose answer was unusable (cut-off JSON, the page's own API failing),
        or None when its retries are used up. The retry gets its own frontier entry: the response
        at hand is done, the retry still pending."""
        retry = get_retry_request(response.request, spider=self, reason=reason)
        if retry is None:
            return None
        retry.meta.pop("playwright_page", None)
        tr = self.ctx.tracker
        if tr is not None:
            base_key = tr.key(response.request).split("#retry")[0]
            retry.meta["frontier_key"] = f"{base_key}#retry{retry.meta.get('retry_times', 1)}"
        return retry

    def on_blocked(self, exc: Blocked) -> None:
        """A block or captcha: record it, stop this marketplace's crawl instead of looping on it. The
        page that showed it stays pending, so the next crawl starts with it."""
        self.crawler.stats.inc_value("tiswatch/blocked")
        self.ctx.blocked = {"url": exc.url, "why": exc.why, "at": datetime.now(UTC).isoformat(timespec="seconds")}
        self.ctx.complete = False
        log.error("%s", exc)
        raise CloseSpider("blocked")

    def on_error(self, failure) -> None:
        """A request failed for good (after retries): a vanished item, a block, or a page lost."""
        request = failure.request
        tr = self.ctx.tracker
        if failure.check(HttpError):
            resp = failure.value.response
            why = block_reason(resp.url, resp.status, resp.body)
            if why:  # the request stays pending: the next crawl starts there
                self.on_blocked(Blocked(self.marketplace, resp.url, why))
            if resp.status == 429:
                self.ctx.consecutive_429 += 1
                if self.ctx.consecutive_429 >= self.max_429_pages:
                    self.on_blocked(Blocked(self.marketplace, resp.url, "HTTP 429 (too many requests) persisted after retries"))
            keys = request.meta.get("listing_keys") or ([request.meta["listing_key"]] if request.meta.get("listing_key") else [])
            if resp.status in GONE_STATUSES and keys:
                for key in keys:
                    self.gone(key, request.meta.get("ref") or "", resp.url, request.meta.get("card"))
                if tr is not None:
                    tr.mark(tr.key(request), request.url, "done")
                return
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            self.crawler.stats.inc_value("tiswatch/ignored")
            log.info("not fetched: %s (%s)", request.url, failure.getErrorMessage())
        else:
            self.ctx.complete = False
            self.crawler.stats.inc_value("tiswatch/page_errors")
            msg = failure.getErrorMessage()
            if "maxsize" in msg or "max size" in msg or "larger than" in msg:
                self.crawler.stats.inc_value("tiswatch/oversize")
                msg = f"larger than [crawl] max_page_mb ({msg})"
            log.warning("page failed: %s (%s)", request.url, msg)
        if tr is not None:
            tr.mark(tr.key(request), request.url, "failed")

    def page_failed(self, url: str, why: str) -> None:
        self.ctx.complete = False
        self.crawler.stats.inc_value("tiswatch/parse_errors")
        log.warning("skipped %s: %s", url, why)
