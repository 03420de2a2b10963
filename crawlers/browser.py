"""One Playwright driver per crawl, and a Chromium that is replaced every [crawl] browser_retire_pages pages.

One driver: Scrapy builds one download handler per URL scheme, and scrapy-playwright's handler is not
lazy: each instance starts its own Playwright driver (a node process, ~100-150 MB resident) when the
engine starts. With DOWNLOAD_HANDLERS naming it for both "http" and "https", every crawl ran two
drivers, one of them idle for the whole crawl (or both busy, each with its own Chromium, when a crawl
met both schemes). Here the second scheme gets the first one's handler: one driver, one Chromium.

Browser generations: scrapy-playwright keeps one browser for the whole crawl (a new one only after it
disconnects). Over thousands of pages every Chromium process grows a little (renderers, the browser
process, GPU and utility processes: +32, +6, +4, +5 MB from 1,000 to 2,000 Shopee pages, README
"Benchmarks"), which closing contexts does not give back. So pages are handed out in generations
(crawlers.middlewares.BrowserRecycleMiddleware names each page's context after its generation,
`browser_slot`): the first context of a new generation launches a new Chromium, and the old one is
closed once its last page is (`retire`), as crawlee's BrowserPool does with
retireBrowserAfterPageCount. Pages in flight finish in the browser they started in; new pages go to
the new one meanwhile, so the crawl does not stop for a relaunch (two browsers are alive for the few
seconds the old one's last pages take). A browser that crashes is dropped and its generation gets a
new one on its next page; a context of a generation whose browser is gone opens in the newest."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from playwright._impl._errors import TargetClosedError
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

from crawlers.middlewares import generation_of

log = logging.getLogger(__name__)

# V8 options for Playwright's node driver, added to NODE_OPTIONS when it starts (an operator's own
# NODE_OPTIONS are kept; one that sets the young generation's size wins). Why: every screenshot, page
# HTML and response body of the crawl passes through the driver as strings, and V8 grows its young
# generation up to its default limit under that load, then shrinks it again: the driver's RSS swung
# between ~140 and ~210 MB (p10 148, median 202, p90 215, max 226 MB sampled every 0.5 s over 1,000
# Shopee pages), which was the largest part of the crawl's memory "growth" from 1,000 to 2,000 pages
# in one run (+49 of +110 MB). With 4 MB semi-spaces: p10 133, median 145, p90 156, max 166 MB at the
# same 4.13 pages/s (README "Benchmarks").
DRIVER_NODE_OPTIONS = ("--max-semi-space-size=4",)


def driver_node_options(current: str | None) -> str:
    """NODE_OPTIONS for the driver: `current` (the environment's) with DRIVER_NODE_OPTIONS added,
    except those whose flag `current` sets already. Pure."""
    have = (current or "").split()
    flags = {o.split("=", 1)[0] for o in have}
    return " ".join(have + [o for o in DRIVER_NODE_OPTIONS if o.split("=", 1)[0] not in flags])


class PlaywrightHandler(ScrapyPlaywrightDownloadHandler):
    NEW_PAGE_TIMEOUT = 30.0  # seconds (_new_page_within)

    def __init__(self, crawler) -> None:
        super().__init__(crawler)
        self.browsers: dict[int, Any] = {}  # generation -> its Chromium (a playwright Browser), while connected
        self.newest = -1  # the highest generation launched
        self.closing: set[int] = set()  # generations being retired
        self.browser_pids: dict[int, int] = {}  # generation -> pid of its browser process (Linux, else none)
        self._launch_gen = 0

    async def _launch(self) -> None:
        """scrapy-playwright's start (the driver, then the browser on demand), with the driver's
        NODE_OPTIONS (driver_node_options); the driver's own, read back from /proc, are in the stat
        tiswatch/driver_node_options."""
        before = os.environ.get("NODE_OPTIONS")
        os.environ["NODE_OPTIONS"] = driver_node_options(before)
        try:
            await super()._launch()
        finally:  # only the driver gets them: it copies the environment when it starts
            if before is None:
                os.environ.pop("NODE_OPTIONS", None)
            else:
                os.environ["NODE_OPTIONS"] = before
        from crawlers.procmem import driver_environ

        env = driver_environ()
        if env is not None:
            self.stats.set_value("tiswatch/driver_node_options", env.get("NODE_OPTIONS", ""))

    @classmethod
    def from_crawler(cls, crawler):
        h = getattr(crawler, "_tiswatch_playwright_handler", None)
        if h is None:
            h = cls(crawler)
            crawler._tiswatch_playwright_handler = h
        return h

    # ---- which browser a new context opens in ----------------------------------------------------------
    async def _create_browser_context(self, name, context_kwargs, spider=None):
        """Called under scrapy-playwright's context_launch_lock: self.browser is pointed at the browser
        of the context's generation (launching it when it is new or gone) for the base class to use."""
        if (context_kwargs or {}).get("user_data_dir"):  # a persistent context is a browser of its own
            return await super()._create_browser_context(name, context_kwargs, spider)
        gen = generation_of(name)
        if gen is None:
            gen = max(self.newest, 0)
        b = self.browsers.get(gen)
        if b is None or gen in self.closing or not b.is_connected():
            # new generation, or one whose browser crashed or is being retired: a stale name (a page
            # made again after its browser crashed) goes to the newest browser, never an old one
            gen = max(gen, self.newest)
            b = self.browsers.get(gen)
            if b is not None and (gen in self.closing or not b.is_connected()):
                b = None
        if b is not None:
            self.browser = b
        elif hasattr(self, "browser"):
            del self.browser  # the base class launches one (_maybe_launch_browser)
        self._launch_gen = gen
        w = await super()._create_browser_context(name, context_kwargs, spider)
        w.context.new_page = self._new_page_within(w.context.new_page)
        return w

    def _new_page_within(self, new_page):
        """context.new_page() that gives up after NEW_PAGE_TIMEOUT seconds. Playwright's new_page()
        never answers when the browser is killed while it opens the page (seen in the crash test:
        three requests waited for ever, and the crawl with them, SIGTERM included): it fails with
        TargetClosedError instead, which scrapy-playwright answers by making the page again, in a new
        browser since the crashed one is gone. A page opens in well under a second otherwise."""
        async def within(*a, **kw):
            try:
                return await asyncio.wait_for(new_page(*a, **kw), timeout=self.NEW_PAGE_TIMEOUT)
            except TimeoutError:
                self.stats.inc_value("tiswatch/browser_new_page_timeouts")
                raise TargetClosedError(f"no new page after {self.NEW_PAGE_TIMEOUT:.0f}s (its browser is gone?)") from None

        return within

    async def _maybe_launch_browser(self) -> None:
        async with self.browser_launch_lock:
            if hasattr(self, "browser"):
                return
            gen = self._launch_gen
            from crawlers.procmem import browser_processes

            before = set(browser_processes())
            t0 = time.monotonic()
            browser = await self.browser_provider.launch_browser()
            self.stats.inc_value("playwright/browser_count")
            self.stats.inc_value("tiswatch/browser_launch_ms", round((time.monotonic() - t0) * 1000))
            browser.on("disconnected", lambda *_: self._disconnected(gen, browser))
            self.browser = browser
            self.browsers[gen] = browser
            self.newest = max(self.newest, gen)
            new = [p for p, role in browser_processes().items() if role == "browser" and p not in before]
            if len(new) == 1:
                self.browser_pids[gen] = new[0]
            log.info("browser generation %d launched (Chromium pid %s)", gen, self.browser_pids.get(gen, "?"))

    def _disconnected(self, gen: int, browser) -> None:
        """A browser went away: retired (closed by us) or crashed. Its contexts are forgotten; a crashed
        generation gets a new browser with its next context."""
        if self.browsers.get(gen) is browser:
            del self.browsers[gen]
        if getattr(self, "browser", None) is browser:
            del self.browser
        for name, w in list(self.context_wrappers.items()):
            try:
                mine = w.context.browser is browser
            except Exception:
                mine = True
            if mine:
                self.context_wrappers.pop(name, None)
                # requests waiting for a page slot in that context would wait forever (scrapy-playwright
                # releases a slot when a page closes, through the wrapper it finds by name, gone now):
                # wake them; their new_page() fails on the closed context and is tried again in a new one
                for _ in range(self.config.max_pages_per_context + len(getattr(w.semaphore, "_waiters", None) or ())):
                    w.semaphore.release()
        if gen not in self.closing:
            self.stats.inc_value("tiswatch/browser_crashes")
            log.warning("browser generation %d disconnected (crashed or killed); the next page gets a new one", gen)

    # ---- retiring a generation ---------------------------------------------------------------------------
    def browsers_open(self) -> int:
        """Browsers neither retired (or being retired) nor crashed: closed with the crawl."""
        return sum(1 for g in self.browsers if g not in self.closing)

    def pages_in(self, gen: int) -> int:
        """Playwright pages open in generation `gen`'s browser (0 when it is gone)."""
        b = self.browsers.get(gen)
        if b is None:
            return 0
        try:
            return sum(len(c.pages) for c in b.contexts)
        except Exception:
            return 0

    async def retire(self, gen: int, busy: bool = False) -> None:
        """Close generation `gen`'s browser (all its contexts and processes). The caller makes sure its
        pages are done; `busy` says that some were not after the grace time (a page nobody closed)."""
        b = self.browsers.get(gen)
        if b is None or gen in self.closing:
            return
        self.closing.add(gen)
        self.stats.inc_value("tiswatch/browsers_retired")  # counted before the close, which the crawl's end may cut short
        if busy:
            self.stats.inc_value("tiswatch/browsers_retired_busy")
        from crawlers.procmem import alive_chromium, descendants

        pid = self.browser_pids.pop(gen, None)
        procs = descendants(pid) if pid else []
        try:
            await b.close()
        except Exception as e:  # already gone
            log.debug("closing browser generation %d: %s", gen, e)
        finally:
            if self.browsers.get(gen) is b:  # not a browser launched for this generation during the close
                del self.browsers[gen]
            if getattr(self, "browser", None) is b:
                del self.browser
        # the old browser's processes end with it; one still alive a few seconds later is an orphan
        for _ in range(20):
            alive = alive_chromium(procs)
            if not alive:
                break
            await asyncio.sleep(0.1)
        else:
            self.stats.inc_value("tiswatch/browser_processes_left", len(alive))
            log.warning("browser generation %d: %d processes still alive after closing it", gen, len(alive))
        self.closing.discard(gen)

    async def _close(self) -> None:
        """End of crawl: every browser, retired or not, then the base class (contexts, driver)."""
        current = getattr(self, "browser", None)
        self.closing.update(self.browsers)
        for gen, b in list(self.browsers.items()):
            if b is not current:
                try:
                    await b.close()
                except Exception as e:
                    log.debug("closing browser generation %d: %s", gen, e)
        await super()._close()
        self.browsers.clear()

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
