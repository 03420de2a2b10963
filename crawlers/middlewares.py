"""Retries with backoff, the durable frontier's Scrapy glue, revisits, and the end-of-crawl report.

- BackoffRetryMiddleware (downloader): HTTP 429/5xx and timeouts are retried after a wait (Retry-After
  when the site gives one, else exponential with jitter), so a 429 storm slows the crawl down instead
  of hammering the site. A Playwright page attached to a response that is retried is closed first.
- FrontierMiddleware (spider) and CrawlReport (extension): every request is recorded in the frontier
  before the response that yielded it is marked done, and a response is done once its items are
  stored (crawlers/frontier.py); requests this run already handled are dropped, also after a kill.
- CrawlReport also revisits due listings no search found when the crawl is otherwise idle, writes
  home/crawl/<marketplace>/last_run.json and status.json, pauses a blocked marketplace, and marks
  listings delisted that a complete crawl no longer found.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from scrapy import Request, signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as _ScrapyRobots
from scrapy.exceptions import CloseSpider, DontCloseSpider, IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawlers.context import context_for

log = logging.getLogger(__name__)


def backoff_delay(attempt: int, retry_after: str | None = None, base: float = 0.5, cap: float = 60.0,
                  rand: float = 0.5) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): the site's Retry-After (seconds)
    when it gives one, else base × 2^(attempt-1); capped, then spread by ±25% (`rand` in [0, 1)) so
    that parallel retries do not return in step. Pure."""
    delay = None
    if retry_after:
        try:
            delay = max(0.0, float(retry_after.strip()))
        except ValueError:
            delay = None  # an HTTP date: rare; fall back to exponential
    if delay is None:
        delay = base * (2 ** max(0, attempt - 1))
    return min(cap, delay) * (0.75 + rand / 2)


async def _close_page(request: Request) -> None:
    page = request.meta.pop("playwright_page", None)
    if page is not None:
        try:
            if not page.is_closed():
                await page.close()
        except Exception:  # the browser may be gone; nothing left to close then
            pass


class BackoffRetryMiddleware(RetryMiddleware):
    base_delay = 0.5
    max_delay = 60.0

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._slowed: dict[str, float] = {}  # download slot -> when it was last slowed down

    def _sleep_then(self, retry: Request, delay: float):
        async def go() -> Request:
            await asyncio.sleep(delay)
            return retry
        return go()

    def _slot(self, request):
        try:
            return self.crawler.engine.downloader.slots.get(request.meta.get("download_slot"))
        except AttributeError:
            return None

    def _slow_down(self, request, retry_after: str | None) -> None:
        """A 429 (or 503) says the whole site is being asked too fast: widen the gap between requests
        to it (AutoThrottle, when on, narrows it again as answers come back fine)."""
        slot = self._slot(request)
        if slot is None:
            return
        now = time.monotonic()
        key = request.meta.get("download_slot")
        if now - self._slowed.get(key, 0.0) < max(slot.delay, 0.5):
            return  # the other answers of the same burst: one slow-down per burst, not one per answer
        self._slowed[key] = now
        wanted = backoff_delay(1, retry_after, 1.0, self.max_delay, 0.5) if retry_after else min(10.0, max(0.5, slot.delay * 2))
        slot.delay = min(self.max_delay, max(slot.delay, wanted))
        self.crawler.stats.inc_value("tiswatch/slowdowns")
        self.crawler.stats.max_value("tiswatch/max_slot_delay_ms", int(slot.delay * 1000))

    def _speed_up(self, request) -> None:
        slot = self._slot(request)
        floor = self.crawler.settings.getfloat("DOWNLOAD_DELAY")
        if slot is not None and slot.delay > floor and not self.crawler.settings.getbool("AUTOTHROTTLE_ENABLED"):
            slot.delay = max(floor, slot.delay * 0.9)

    async def process_response(self, request, response, spider=None):
        if response.status < 400:
            context_for(self.crawler).consecutive_429 = 0
            self._speed_up(request)
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        stats = self.crawler.stats
        stats.inc_value(f"tiswatch/http_{response.status}")
        ra = response.headers.get("Retry-After")
        if response.status in (429, 503):
            self._slow_down(request, ra.decode("latin-1") if ra else None)
        retry = get_retry_request(request, reason=f"HTTP {response.status}", spider=self.crawler.spider,
                                  max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
                                  priority_adjust=self.priority_adjust)
        if retry is None:
            return response  # given up: the spider's errback sees the status
        await _close_page(request)
        retry.meta.pop("playwright_page", None)
        delay = backoff_delay(retry.meta.get("retry_times", 1), ra.decode("latin-1") if ra else None,
                              self.base_delay, self.max_delay, random.random())
        stats.inc_value("tiswatch/retry_wait_ms", int(delay * 1000))
        return await self._sleep_then(retry, delay)

    async def process_exception(self, request, exception, spider=None):
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        retry = self._retry(request, exception)
        if retry is None:
            return None
        await _close_page(request)
        retry.meta.pop("playwright_page", None)
        delay = backoff_delay(retry.meta.get("retry_times", 1), None, self.base_delay, self.max_delay, random.random())
        return await self._sleep_then(retry, delay)


class RobotsTxtMiddleware(_ScrapyRobots):
    """Scrapy's robots.txt middleware, fixed for requests that arrive while robots.txt is still being
    fetched: in Scrapy 2.19 all but the first of them get None from the shared Deferred (its first
    waiter consumes the result) and are let through unchecked. Here they look the parser up again."""

    async def robot_parser(self, request):
        rp = await super().robot_parser(request)
        if rp is None:
            stored = self._parsers.get(urlparse_cached(request).netloc)
            if stored is not None and not isinstance(stored, Deferred):
                return stored
        return rp


def _made_by_pipeline(request) -> bool:
    """A request the crawl's own machinery makes while other work waits on it: a picture the image
    stage fetches (engine.download, meta tiswatch_image), robots.txt (Scrapy's NO_CALLBACK). Holding
    one of these back until the item pipeline drains would wait on itself."""
    from scrapy.http.request import NO_CALLBACK

    return bool(request.meta.get("tiswatch_image") or request.meta.get("tiswatch_pipeline")
                or request.callback is NO_CALLBACK)


class ScrapeBacklogMiddleware:
    """Downloader middleware: a new page is fetched only while fewer than TISWATCH_MAX_SCRAPING
    responses are still being scraped (their callbacks running or their items in the item pipeline).

    Scrapy bounds that backlog by the bytes of the responses' bodies (SCRAPER_SLOT_MAX_ACTIVE_SIZE,
    5 MB) only. A listing waiting for a slow stage holds far more than its body: in a Shopee crawl
    the body Scrapy counts is the rendered page (a few KB on the sandbox), while the same response
    keeps its Playwright page objects with the API answers the page received, the listing's JSON and
    HTML and its screenshot. With the image stage reading 4 listings at a time (OCR,
    about a CPU-second each) and Chromium fetching faster, ~1,500 such responses could pile up before
    Scrapy backed off: the Python process grew by ~60 MB per 1,000 responses, every closed page still
    alive (gc counts over a sandbox crawl, README "Benchmarks"). Counting
    responses instead keeps the crawl's memory flat whatever their bodies weigh: requests wait here,
    inside the downloader's concurrency, so the engine stops taking new ones from the scheduler.
    Requests the pipeline itself makes (pictures, robots.txt) never wait. 0 turns the bound off."""

    POLL = 0.05  # seconds between looks at the backlog while it is full

    def __init__(self, crawler):
        self.crawler = crawler
        limit = crawler.settings.getint("TISWATCH_MAX_SCRAPING", -1)
        if limit < 0:  # default: a few times the downloads in flight
            limit = max(32, 4 * crawler.settings.getint("CONCURRENT_REQUESTS", 16))
        self.limit = limit
        self.waiting = 0  # requests held here now

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def backlog(self) -> int:
        """Responses handed to the scraper and not yet done with (callback, spider output, items)."""
        engine = self.crawler.engine
        slot = getattr(getattr(engine, "scraper", None), "slot", None)
        return len(slot.active) + len(slot.queue) if slot is not None else 0

    async def process_request(self, request, spider=None):
        if not self.limit or _made_by_pipeline(request) or self.backlog() < self.limit:
            return None
        self.crawler.stats.inc_value("tiswatch/backlog_waits")
        t0 = time.monotonic()
        self.waiting += 1
        try:
            while self.backlog() >= self.limit and self.crawler.engine.running:
                await asyncio.sleep(self.POLL)
        finally:
            self.waiting -= 1
        self.crawler.stats.inc_value("tiswatch/backlog_wait_s", round(time.monotonic() - t0, 3))
        return None


_NAME = re.compile(r"^tiswatch-b(\d+)-c(\d+)$")


def browser_slot(n: int, recycle_every: int, retire_every: int) -> tuple[int, str]:
    """(browser generation, context name) of the n-th browser page of a crawl (n from 0): a new
    context every `recycle_every` pages and a new browser every `retire_every` pages (0: never).
    A new browser always starts a new context. Pure."""
    gen = n // retire_every if retire_every > 0 else 0
    ctx = n // recycle_every if recycle_every > 0 else 0
    return gen, f"tiswatch-b{gen}-c{ctx}"


def generation_of(name: str | None) -> int | None:
    """The browser generation a context name of browser_slot() belongs to; None for other names. Pure."""
    m = _NAME.match(name or "")
    return int(m.group(1)) if m else None


class _Slot:
    """Where one browser page of the crawl goes: its context and browser generation; `open` while the
    page (or the request before its page exists) counts against them."""

    __slots__ = ("gen", "name", "open", "url")

    def __init__(self, name: str, gen: int, url: str = ""):
        self.name, self.gen, self.open, self.url = name, gen, False, url


class BrowserRecycleMiddleware:
    """Downloader middleware: browser pages are opened in a Playwright context that is replaced after
    [crawl] browser_recycle_pages pages, and in a Chromium that is replaced after
    [crawl] browser_retire_pages pages (crawlers/browser.py: browser_slot, PlaywrightHandler).

    A context keeps caches, service workers and the like for as long as it lives: a replaced context is
    closed as soon as its last page is. Closing contexts does not give back what the Chromium processes
    themselves grow by over thousands of pages; a replaced browser (a "generation") is closed once every
    page handed to it is done: no request of it still waiting for its page and no page of it still
    open in Playwright. Pages keep their browser; new ones go to the new browser meanwhile. A page
    nobody closes (a bug) would keep an old browser alive for the rest of the crawl: after
    TISWATCH_BROWSER_RETIRE_GRACE seconds (default 10 x the download timeout, at least 5 minutes, far
    beyond a page's life) the browser is closed anyway and counted (tiswatch/browsers_retired_busy).
    0 for either setting: one context, or one browser, for the whole crawl."""

    POLL = 0.25  # seconds between looks at a retired browser's pages

    def __init__(self, crawler):
        self.crawler = crawler
        self.every = crawler.settings.getint("TISWATCH_BROWSER_RECYCLE", 0)
        self.retire_every = crawler.settings.getint("TISWATCH_BROWSER_RETIRE", 0)
        self.grace = crawler.settings.getfloat(
            "TISWATCH_BROWSER_RETIRE_GRACE", max(300.0, 10 * crawler.settings.getfloat("DOWNLOAD_TIMEOUT", 30)))
        self.pages = 0
        self.gen, self.name = browser_slot(0, self.every, self.retire_every)
        self.open: dict[str, int] = {}  # context -> pages (or requests about to get one) counted in it
        self.open_gen: dict[int, int] = {}  # browser generation -> the same
        self.slots: set[_Slot] = set()  # those open now (what a retirement still waits for)
        self.retiring: set[int] = set()
        self._tasks: set[asyncio.Future] = set()
        crawler.signals.connect(self._spider_closed, signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    @property
    def current(self) -> str:
        return self.name

    def process_request(self, request, spider=None):
        if not request.meta.get("playwright") or "playwright_page" in request.meta:
            return None
        gen, name = browser_slot(self.pages, self.every, self.retire_every)
        self.pages += 1
        if name != self.name:
            self._advance(gen, name)
        slot = _Slot(name, gen, request.url)
        request.meta["playwright_context"] = name
        request.meta["_tiswatch_slot"] = slot
        self._opened(slot)
        if "_tiswatch_init" not in request.meta:  # the spider's own page callback, kept once across retries
            request.meta["_tiswatch_init"] = request.meta.get("playwright_page_init_callback")
        request.meta["playwright_page_init_callback"] = self._init_page
        return None

    async def _init_page(self, page, request):
        slot = request.meta.get("_tiswatch_slot")
        if slot is not None:
            if not slot.open:  # a page made again for the same request (its first one's target closed)
                self._opened(slot)
            page.once("close", lambda *_: self._done(slot))
        inner = request.meta.get("_tiswatch_init")
        if inner is not None:
            await inner(page, request)

    def process_exception(self, request, exception, spider=None):
        slot = request.meta.get("_tiswatch_slot")
        if slot is not None and request.meta.get("playwright") and "playwright_page" not in request.meta:
            self._done(slot)  # failed before a page was made (or its page is closed already)
        return None

    def _opened(self, slot: _Slot) -> None:
        slot.open = True
        self.slots.add(slot)
        self.open[slot.name] = self.open.get(slot.name, 0) + 1
        self.open_gen[slot.gen] = self.open_gen.get(slot.gen, 0) + 1

    def _done(self, slot: _Slot) -> None:
        if not slot.open:
            return
        slot.open = False
        self.slots.discard(slot)
        self.open_gen[slot.gen] = self.open_gen.get(slot.gen, 0) - 1
        n = self.open[slot.name] = self.open.get(slot.name, 0) - 1
        if n <= 0 and slot.name != self.name:
            del self.open[slot.name]
            if slot.gen == self.gen:  # an old browser's contexts close with it
                self._spawn(self._close_context(slot.name))

    def _advance(self, gen: int, name: str) -> None:
        """The next page starts context `name` (and browser generation `gen`): contexts of the current
        browser already done with are closed, and older browsers retired once their pages are done."""
        self.gen, self.name = gen, name
        for n, c in list(self.open.items()):
            if c <= 0 and n != name:
                del self.open[n]
                if generation_of(n) == gen:
                    self._spawn(self._close_context(n))
        for g in list(self.open_gen):
            if g < gen and g not in self.retiring:
                self.retiring.add(g)
                self._spawn(self._retire(g))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retire(self, gen: int) -> None:
        from crawlers.browser import playwright_handlers

        t0 = time.monotonic()
        busy = False
        try:
            while True:
                handlers = playwright_handlers(self.crawler)
                if self.open_gen.get(gen, 0) <= 0 and not any(h.pages_in(gen) for h in handlers):
                    break
                if time.monotonic() - t0 > self.grace:
                    busy = True
                    log.warning("browser generation %d still has %d pages after %.0fs: closing it anyway (%s)", gen,
                                max(self.open_gen.get(gen, 0), sum(h.pages_in(gen) for h in handlers)), self.grace,
                                ", ".join(sorted(s.url for s in self.slots if s.gen == gen)[:5]))
                    break
                await asyncio.sleep(self.POLL)
            for h in handlers:
                await h.retire(gen, busy)
        except Exception as e:  # a browser going away under us: nothing left to free
            log.debug("retiring browser generation %d: %s", gen, e)
        finally:
            self.open_gen.pop(gen, None)
            for n in [n for n in self.open if generation_of(n) == gen]:
                del self.open[n]

    async def _close_context(self, name: str) -> None:
        try:
            from crawlers.browser import playwright_handlers

            for h in playwright_handlers(self.crawler):
                w = h.context_wrappers.get(name)
                if w is not None:
                    await w.context.close()
                    self.crawler.stats.inc_value("tiswatch/browser_contexts_recycled")
        except Exception as e:  # a browser that is going away: nothing left to free
            log.debug("closing browser context %s: %s", name, e)

    def _spider_closed(self, spider=None, reason=None):
        """Retirements still waiting stop here: the download handler closes every browser next."""
        for t in list(self._tasks):
            t.cancel()


def _is_item(x: Any) -> bool:
    return isinstance(x, dict)


class FrontierMiddleware:
    """Spider middleware next to the engine: sees every request and item a callback yields."""

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _tracker(self):
        return context_for(self.crawler).tracker_for(self.crawler)

    def _one(self, tr, key: str, x: Any) -> Any:
        if isinstance(x, Request):
            return x if tr.record(x) else None
        if _is_item(x):
            tr.item_started(key, x)
        return x

    def process_spider_output(self, response, result: Iterable[Any], spider=None):
        tr = self._tracker()
        if tr is None:
            yield from result
            return
        key = tr.key(response.request)
        for x in result:
            x = self._one(tr, key, x)
            if x is not None:
                yield x
        tr.output_done(key, response.url)

    async def process_spider_output_async(self, response, result: AsyncIterator[Any], spider=None):
        tr = self._tracker()
        if tr is None:
            async for x in result:
                yield x
            return
        key = tr.key(response.request)
        async for x in result:
            x = self._one(tr, key, x)
            if x is not None:
                yield x
        tr.output_done(key, response.url)

    def process_spider_exception(self, response, exception, spider=None):
        tr = self._tracker()
        if tr is not None and not isinstance(exception, CloseSpider):
            # a page the spider cannot handle is not fetched again on resume; a block page is
            tr.mark(tr.key(response.request), response.url, "failed")
        return None


def _cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class CrawlReport:
    """Signals of one crawl: frontier bookkeeping, revisits, status, delisting, last_run.json."""

    def __init__(self, crawler):
        self.crawler = crawler
        self._revisited = False
        self._responses = 0  # pages: responses to the crawl's own requests (not pictures, not robots.txt)
        self.max_pages = crawler.settings.getint("TISWATCH_MAX_PAGES", 0)
        # (responses, tree RSS, tree PSS, the tree by role) every MEMORY_EVERY responses, the last MEMORY_WINDOW
        self._memory: list[tuple[int, float, float, dict]] = []
        for handler, sig in ((self.spider_opened, signals.spider_opened), (self.spider_closed, signals.spider_closed),
                             (self.response_received, signals.response_received),
                             (self.request_scheduled, signals.request_scheduled), (self.item_done, signals.item_scraped),
                             (self.item_done, signals.item_dropped), (self.item_done, signals.item_error),
                             (self.spider_idle, signals.spider_idle)):
            crawler.signals.connect(handler, signal=sig)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def spider_opened(self, spider):
        self._cpu0 = _cpu_s()
        ctx = context_for(self.crawler)
        ctx.tracker_for(self.crawler)
        run = ctx.frontier.run
        if run.resumed:
            log.info("%s: resuming the crawl begun %s (%d requests pending)", ctx.marketplace,
                     run.started.isoformat(timespec="seconds"), len(ctx.tracker.recorded))
        self.crawler.stats.set_value("tiswatch/resumed", int(run.resumed))
        ctx.write_status("running", pid=os.getpid(), run=run.id, resumed=run.resumed,
                         run_started=run.started.isoformat(timespec="seconds"))

    RSS_AT = (1, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000)
    MEMORY_EVERY = 10  # responses between the samples behind tiswatch/rss_mb_median/<n>
    MEMORY_WINDOW = 20  # samples (the last 200 responses) in each median
    TRIM_EVERY = 50  # pages between two returns of malloc's free memory to the system (procmem.release_free_heap)

    def response_received(self, response, request, spider):
        """Resident memory of the crawl (this process, Playwright, Chromium) after so many pages:
        stats tiswatch/rss_mb/<n> and tiswatch/pss_mb/<n>; a long crawl's memory must stay flat.
        Pages are the responses to the crawl's own requests: the pictures the image stage fetches
        (two or three a listing) and robots.txt are not counted, so that n pages means n pages in
        any crawl. The same count stops the crawl at TISWATCH_MAX_PAGES ([crawl] max_pages; Scrapy's
        CLOSESPIDER_PAGECOUNT counts every response, so a crawl with pictures on got fewer listings),
        with the same reason, closespider_pagecount; the responses already on their way are still
        handled.

        One reading of a process tree with Chromium in it rises and falls by hundreds of MB with the
        renderers alive at that instant (a page open is a renderer, and RSS counts the pages they
        share once per renderer), so the tree is also read every MEMORY_EVERY responses and
        tiswatch/rss_mb_median/<n> (and pss_) is the median of the readings over the last 200;
        tiswatch/rss_mb_median_one_browser/<n> (and pss_) is that of those with one Chromium alive
        (procmem.window_medians says why), tiswatch/memory_readings/<n> how many there were."""
        if _made_by_pipeline(request):
            return
        self._responses += 1
        n = self._responses
        if n == self.max_pages:
            from scrapy.utils.defer import _schedule_coro

            log.info("%d pages fetched ([crawl] max_pages): stopping", n)
            _schedule_coro(self.crawler.engine.close_spider_async(reason="closespider_pagecount"))
        if n % self.TRIM_EVERY == 0:
            from crawlers.procmem import release_free_heap

            t = time.perf_counter()
            if release_free_heap():
                self.crawler.stats.inc_value("tiswatch/malloc_trims")
                self.crawler.stats.inc_value("tiswatch/malloc_trim_ms", round(1000 * (time.perf_counter() - t), 2))
        if n % self.MEMORY_EVERY == 0 and self._browser_pages_open() is not None:
            from crawlers.procmem import tree_by_role

            roles = tree_by_role()
            self._memory.append((n, round(sum(r["rss"] for r in roles.values()), 1),
                                 round(sum(r["pss"] for r in roles.values()), 1), roles))
            del self._memory[:-self.MEMORY_WINDOW]
        if n in self.RSS_AT and n > 1 and self._memory:
            from crawlers.procmem import window_medians

            w = window_medians(self._memory, n - self.MEMORY_EVERY * self.MEMORY_WINDOW)
            if w:
                st = self.crawler.stats
                st.set_value(f"tiswatch/rss_mb_median/{n}", w["rss"])
                st.set_value(f"tiswatch/pss_mb_median/{n}", w["pss"])
                # the same medians per kind of process (crawlers/procmem.py role_of): where the memory is
                st.set_value(f"tiswatch/roles_mb_median/{n}", w["roles"])
                one = w["one_browser"]
                st.set_value(f"tiswatch/memory_readings/{n}", f"{w['readings']} ({one.get('readings', 0)} with one Chromium)")
                if one:
                    st.set_value(f"tiswatch/rss_mb_median_one_browser/{n}", one["rss"])
                    st.set_value(f"tiswatch/pss_mb_median_one_browser/{n}", one["pss"])
        if self._responses in self.RSS_AT:
            from crawlers.procmem import tree_memory

            m = tree_memory()
            self.crawler.stats.set_value(f"tiswatch/rss_mb/{n}", m["rss"])
            self.crawler.stats.set_value(f"tiswatch/pss_mb/{n}", m["pss"])
            # the Python side alone, and how many processes (Chromium renderers come and go)
            self.crawler.stats.set_value(f"tiswatch/python_rss_mb/{n}", m["self_rss"])
            self.crawler.stats.set_value(f"tiswatch/processes/{n}", m["processes"])

    def request_scheduled(self, request, spider):
        tr = context_for(self.crawler).tracker_for(self.crawler)
        if not tr.record(request):
            self.crawler.stats.inc_value("tiswatch/frontier/skipped_done")
            raise IgnoreRequest("handled earlier in this crawl run")

    def item_done(self, item, response=None, spider=None, **kw):
        tr = context_for(self.crawler).tracker
        if tr is not None:
            tr.item_finished(item)

    def spider_idle(self, spider):
        """Once the searches are done: fetch due listings that no search showed (is it still there?)."""
        ctx = context_for(self.crawler)
        if ctx._batch is not None:
            from crawlers.storeworker import StoreWorkerFailed

            try:
                ctx._batch.flush()  # nothing is waiting: what is stored counts as stored
            except StoreWorkerFailed:
                return  # the crawl is stopping (crawlers/storeworker.py)
        if self._revisited:
            return
        self._revisited = True
        make = getattr(spider, "revisit_request", None)
        limit = ctx.settings.crawl.revisit_limit
        if make is None or limit <= 0 or ctx.blocked or not getattr(spider, "revisits", True):
            return
        now = datetime.now(UTC)
        p = ctx.policy
        rows = ctx.store.due_refetch(ctx.marketplace, before=now - p.every, flagged_before=now - p.flagged_every,
                                     unseen_since=ctx.started, limit=limit)
        n = 0
        for row in rows:
            req = make(row)
            if req is not None:
                self.crawler.engine.crawl(req)
                n += 1
        if n:
            self.crawler.stats.inc_value("tiswatch/revisits", n)
            log.info("%s: revisiting %d due listings no search showed", ctx.marketplace, n)
            raise DontCloseSpider

    def _browser_pages_open(self) -> int | None:
        """Playwright pages still open (every callback and errback closes its page: this must be 0)."""
        from crawlers.browser import playwright_handlers

        handlers = playwright_handlers(self.crawler)
        return sum(len(w.context.pages) for h in handlers for w in h.context_wrappers.values()) if handlers else None

    def spider_closed(self, spider, reason):
        ctx = context_for(self.crawler)
        if ctx._batch is not None:
            ctx._batch.stop()  # the store pipeline has (close_spider); from here writes go through at once
            stats_batch = ctx._batch.commits
            self.crawler.stats.set_value("tiswatch/store_commits", stats_batch)
            if getattr(ctx._batch, "failed", None):  # the store worker died: its last writes are lost,
                reason = "store_worker_failed"      # so the run is not finished (the next one resumes)
                ctx.complete = False
        stats = self.crawler.stats
        # CPU seconds of the crawl from spider open to close: this process and its store worker
        # (crawlers/storeworker.py), not Chromium's; start-up (imports) is before it
        worker = (stats.get_value("tiswatch/store_worker/cpu_ms") or 0) / 1000
        stats.set_value("tiswatch/cpu_s", round(_cpu_s() - getattr(self, "_cpu0", 0.0) + worker, 2))
        stats.set_value("tiswatch/pages", self._responses)  # what [crawl] max_pages counts
        pages = self._browser_pages_open()
        if pages is not None:
            stats.set_value("tiswatch/browser_pages_open_at_end", pages)
            from crawlers.procmem import browser_processes

            # the Chromium processes alive now, all closed next with the download handler: none may
            # outlive the crawl (tests look for them after it)
            stats.set_value("tiswatch/chromium_pids_at_close", sorted(browser_processes()))
            from crawlers.browser import playwright_handlers

            stats.set_value("tiswatch/browsers_open_at_close",
                            sum(h.browsers_open() for h in playwright_handlers(self.crawler) if hasattr(h, "browsers_open")))
        delisted: list[str] = []
        now = datetime.now(UTC)
        extra: dict[str, Any] = {"listings": len(ctx.seen), "run": ctx.frontier.run.id}
        if ctx.tracker is not None:
            ctx.tracker.flush()  # requests not yet on disk (a shutdown): the next crawl resumes with them
        if ctx.blocked:
            until = now + timedelta(minutes=ctx.settings.crawl.block_pause_minutes)
            ctx.blocked.setdefault("at", now.isoformat(timespec="seconds"))
            ctx.frontier.note("blocked")
            state = "blocked"
            extra.update(blocked=ctx.blocked, paused_until=until.isoformat(timespec="seconds"))
            log.error("%s: crawl paused until %s: blocked at %s (%s)", ctx.marketplace, extra["paused_until"],
                      ctx.blocked.get("url"), ctx.blocked.get("why"))
        elif reason == "finished":
            if ctx.complete and getattr(spider, "complete_coverage", False) and (ctx.seen or stats.get_value("tiswatch/skipped_unchanged")):
                delisted = ctx.store.mark_delisted(ctx.marketplace, ctx.seen, ctx.started)
                for k in delisted:
                    d = ctx.store.get(k) or {}
                    ctx.events.append("delisted", k, {"marketplace": ctx.marketplace, "last_seen": d.get("last_seen")})
                stats.inc_value("tiswatch/delisted", len(delisted))
            ctx.frontier.finish_run(reason)
            state = "ok"
        else:
            ctx.frontier.note(reason)  # shutdown, time limit, page cap: the next crawl resumes
            state = "stopped"
        ctx.write_status(state, reason="blocked" if ctx.blocked else reason, delisted=len(delisted)
                         + int(stats.get_value("tiswatch/delisted_gone") or 0), **extra)
        report = {
            "marketplace": ctx.marketplace, "reason": "blocked" if ctx.blocked else reason, "state": state,
            "run": ctx.frontier.run.id, "resumed": ctx.frontier.run.resumed,
            "run_started": ctx.started.isoformat(timespec="seconds"),
            "started": (stats.get_value("start_time") or now).isoformat(timespec="seconds"),
            "finished": now.isoformat(timespec="seconds"),
            "listings": len(ctx.seen), "delisted": len(delisted) + int(stats.get_value("tiswatch/delisted_gone") or 0),
            "blocked": ctx.blocked, "paused_until": extra.get("paused_until"),
            "complete": bool(ctx.complete and reason == "finished" and not ctx.blocked),
            "stats": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in stats.get_stats().items()},
        }
        path = ctx.crawl_dir / "last_run.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str), "utf-8")
        os.replace(tmp, path)
        ctx.close()
