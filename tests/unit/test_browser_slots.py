"""Which context and which Chromium each browser page goes to ([crawl] browser_recycle_pages and
browser_retire_pages), and when an old Chromium is closed: only once every page handed to it is done,
or after the grace time when a page was never closed. The real crawl is in
tests/browser/test_shopee_crawl.py; here the middleware's bookkeeping runs against a stand-in handler."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.settings import Settings

from crawlers.middlewares import BrowserRecycleMiddleware, browser_slot, generation_of


@pytest.mark.parametrize("n, recycle, retire, expected", [
    (0, 200, 500, (0, "tiswatch-b0-c0")),
    (199, 200, 500, (0, "tiswatch-b0-c0")),
    (200, 200, 500, (0, "tiswatch-b0-c1")),
    (499, 200, 500, (0, "tiswatch-b0-c2")),
    (500, 200, 500, (1, "tiswatch-b1-c2")),   # a new browser starts a new context (its name has the browser)
    (600, 200, 500, (1, "tiswatch-b1-c3")),
    (10_000, 0, 500, (20, "tiswatch-b20-c0")),  # contexts never replaced: one per browser
    (10_000, 200, 0, (0, "tiswatch-b0-c50")),   # browser never replaced
    (10_000, 0, 0, (0, "tiswatch-b0-c0")),
    (7, 3, 8, (0, "tiswatch-b0-c2")),
    (8, 3, 8, (1, "tiswatch-b1-c2")),
])
def test_browser_slot(n, recycle, retire, expected):
    assert browser_slot(n, recycle, retire) == expected


@pytest.mark.parametrize("name, gen", [
    ("tiswatch-b0-c0", 0), ("tiswatch-b12-c40", 12), ("default", None), (None, None), ("tiswatch-0", None),
    ("tiswatch-b1-c2x", None), ("xtiswatch-b1-c2", None),
])
def test_generation_of(name, gen):
    assert generation_of(name) == gen


class FakePage:
    def __init__(self):
        self.listeners = []
        self.closed = False

    def once(self, event, cb):
        assert event == "close"
        self.listeners.append(cb)

    def close(self):
        self.closed = True
        for cb in self.listeners:
            cb(self)


class FakeHandler:
    """What the middleware asks of crawlers.browser.PlaywrightHandler."""

    def __init__(self):
        self.context_wrappers: dict = {}
        self.pages: dict[int, list[FakePage]] = {}
        self.retired: list[tuple[int, bool]] = []

    def pages_in(self, gen):
        return sum(not p.closed for p in self.pages.get(gen, []))

    async def retire(self, gen, busy=False):
        self.retired.append((gen, busy))


def run(coro):
    """asyncio.run in a thread of its own: a test run before this one in the same process may have left
    an event loop running in this thread (Scrapy's asyncio reactor)."""
    with ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()


def make(recycle=2, retire=3, grace=30.0):
    handler = FakeHandler()
    stats: dict = {}
    crawler = SimpleNamespace(
        settings=Settings({"TISWATCH_BROWSER_RECYCLE": recycle, "TISWATCH_BROWSER_RETIRE": retire,
                           "TISWATCH_BROWSER_RETIRE_GRACE": grace}),
        stats=SimpleNamespace(inc_value=lambda k, v=1: stats.__setitem__(k, stats.get(k, 0) + v)),
        signals=SimpleNamespace(connect=lambda *a: None),
        engine=SimpleNamespace(downloader=SimpleNamespace(handlers=SimpleNamespace(_handlers={"http": handler}))))
    mw = BrowserRecycleMiddleware(crawler)
    mw.POLL = 0.01
    return mw, handler


async def open_page(mw, handler, url="http://x/") -> tuple[Request, FakePage]:
    """A request through the middleware, then its page made (as scrapy-playwright does)."""
    req = Request(url, meta={"playwright": True, "playwright_include_page": True})
    mw.process_request(req)
    page = FakePage()
    handler.pages.setdefault(req.meta["_tiswatch_slot"].gen, []).append(page)
    await req.meta["playwright_page_init_callback"](page, req)
    req.meta["playwright_page"] = page
    return req, page


async def settle():
    for _ in range(10):
        await asyncio.sleep(0.02)


def test_an_old_browser_is_closed_once_its_last_page_is():
    async def go():
        mw, h = make(recycle=2, retire=3)
        pages = [(await open_page(mw, h))[1] for _ in range(3)]  # generation 0, all still open
        r4, p4 = await open_page(mw, h)                         # the 4th page starts generation 1
        assert r4.meta["playwright_context"] == "tiswatch-b1-c1" and r4.meta["_tiswatch_slot"].gen == 1
        await settle()
        assert h.retired == []                                   # generation 0 still has pages open
        pages[0].close()
        pages[1].close()
        await settle()
        assert h.retired == []
        pages[2].close()
        await settle()
        assert h.retired == [(0, False)]                         # closed as soon as its last page was
        assert mw.open_gen == {1: 1}
        p4.close()
        await settle()
        assert h.retired == [(0, False)]                         # the current browser is never retired

    run(go())


def test_a_request_that_fails_before_its_page_and_a_page_made_again_count_once():
    async def go():
        mw, h = make(recycle=10, retire=2)
        failed = Request("http://x/a", meta={"playwright": True})
        mw.process_request(failed)                               # generation 0, no page yet
        _, p2 = await open_page(mw, h)                           # generation 0
        assert mw.open_gen == {0: 2}
        mw.process_exception(failed, RuntimeError("connection refused"))
        mw.process_exception(failed, RuntimeError("again"))      # counted once
        assert mw.open_gen == {0: 1}
        # the page of a request is made again (its first one's target closed): one request, one count
        req, p3 = await open_page(mw, h)                         # generation 1
        p3.close()
        p3b = FakePage()
        await req.meta["playwright_page_init_callback"](p3b, req)
        assert mw.open_gen == {0: 1, 1: 1}
        p3b.close()
        p3b.close()
        assert mw.open_gen == {0: 1, 1: 0}
        p2.close()
        await settle()
        assert h.retired == [(0, False)]

    run(go())


def test_a_page_nobody_closes_does_not_keep_an_old_browser_forever():
    async def go():
        mw, h = make(recycle=0, retire=1, grace=2.0)
        await open_page(mw, h)                                   # generation 0: its page is never closed
        _, p = await open_page(mw, h)                            # generation 1
        await settle()
        assert h.retired == []                                   # still within the grace time
        await asyncio.sleep(2.0)
        await settle()
        assert h.retired == [(0, True)]                          # closed anyway, counted as busy
        p.close()

    run(go())


def test_a_request_with_its_own_page_or_without_the_browser_is_left_alone():
    mw, _ = make()
    plain = Request("http://x/")
    mw.process_request(plain)
    assert "playwright_context" not in plain.meta and mw.pages == 0


def test_a_new_page_that_never_comes_fails_as_a_closed_target():
    """Playwright's new_page() never answers when its browser is killed while the page opens: the
    handler gives up after NEW_PAGE_TIMEOUT, with the error scrapy-playwright answers by trying again."""
    from playwright._impl._errors import TargetClosedError

    from crawlers.browser import PlaywrightHandler

    h = PlaywrightHandler.__new__(PlaywrightHandler)  # no driver: only the wrapper is under test
    stats: dict = {}
    h.stats = SimpleNamespace(inc_value=lambda k, v=1: stats.__setitem__(k, stats.get(k, 0) + v))
    h.NEW_PAGE_TIMEOUT = 0.05

    async def never(**kw):
        await asyncio.Event().wait()

    async def soon(**kw):
        return ("page", kw)

    async def go():
        assert await h._new_page_within(soon)(viewport=None) == ("page", {"viewport": None})
        with pytest.raises(TargetClosedError):
            await h._new_page_within(never)()

    run(go())
    assert stats == {"tiswatch/browser_new_page_timeouts": 1}


def test_a_browser_launched_while_an_old_one_closes_stays_tracked():
    """A page made again after a crash can launch a browser for a generation whose old browser is still
    closing: retiring the old one must not drop the new one (it would then outlive the crawl)."""
    from crawlers.browser import PlaywrightHandler

    h = PlaywrightHandler.__new__(PlaywrightHandler)  # no driver: only the bookkeeping is under test
    stats: dict = {}
    h.stats = SimpleNamespace(inc_value=lambda k, v=1: stats.__setitem__(k, stats.get(k, 0) + v))
    h.closing, h.browser_pids = set(), {}
    new = SimpleNamespace(name="new")

    class Old:
        async def close(self):
            h.browsers[0] = new  # what _maybe_launch_browser does for a context of generation 0 meanwhile

    old = Old()
    h.browsers = {0: old}
    h.browser = old
    run(h.retire(0))
    assert h.browsers == {0: new}
    assert not hasattr(h, "browser") and h.closing == set()
    assert stats == {"tiswatch/browsers_retired": 1}


@pytest.mark.parametrize("current, want", [
    (None, "--max-semi-space-size=4"),
    ("", "--max-semi-space-size=4"),
    ("--max-old-space-size=512", "--max-old-space-size=512 --max-semi-space-size=4"),  # the operator's kept
    ("--max-semi-space-size=16", "--max-semi-space-size=16"),  # the operator's own size wins
    ("  --trace-gc   --max-semi-space-size=8 ", "--trace-gc --max-semi-space-size=8"),
])
def test_driver_node_options(current, want):
    from crawlers.browser import driver_node_options

    assert driver_node_options(current) == want
