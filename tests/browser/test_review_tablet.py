"""The review app on a tablet, upright (768x1024) and on its side (1024x768), in real Chromium with
touch: no page scrolls sideways, the navigation is on screen and works by touch, the queue's row
actions are on screen and work by touch. Screenshots go to artifacts/screenshots/ (queue-tablet-768x1024.png ...)."""

import pytest

from tests.browser.conftest import LiveServer, shot
from tests.browser.test_review_queue import PASSWORD, app_with_data, watch  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser
VIEWPORTS = [(768, 1024), (1024, 768)]

# the page is never wider than the screen; a wide table may scroll inside its own box, not the page
NO_SIDE_SCROLL = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"


def _on_screen(page, locator) -> bool:
    box = locator.bounding_box()
    vw = page.viewport_size["width"]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= vw + 0.5 and box["width"] > 0


@pytest.fixture
def tablet(browser, request):
    contexts = []

    def make(width, height):
        ctx = browser.new_context(viewport={"width": width, "height": height}, has_touch=True, is_mobile=True,
                                  device_scale_factor=1, locale="th-TH")
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for c in contexts:
        c.close()


@pytest.mark.parametrize("width, height", VIEWPORTS)
def test_tablet_layout_queue_actions_and_nav(app_with_data, tablet, width, height):  # noqa: F811
    page = tablet(width, height)
    problems = watch(page)
    size = f"{width}x{height}"
    with LiveServer(app_with_data) as srv:
        page.goto(srv.url + "/login")
        page.fill('input[name="username"]', "officer1")
        page.fill('input[name="password"]', PASSWORD)
        page.locator('button[type="submit"]').tap()
        page.wait_for_selector("table#queue")
        sw, cw = page.evaluate(NO_SIDE_SCROLL)
        assert sw <= cw, f"the queue scrolls sideways at {size}: {sw} > {cw}"
        # the navigation: every link on screen, and a tap on one goes there
        nav = page.locator("header.top nav.nav a")
        assert nav.count() >= 4
        for i in range(nav.count()):
            assert nav.nth(i).is_visible() and _on_screen(page, nav.nth(i)), nav.nth(i).inner_text()
        # the first row's actions: on screen, and a tap confirms
        row = page.locator("tr.row").first
        key = row.get_attribute("data-key")
        confirm = row.locator("button.b-confirm")
        for b in ("button.b-confirm", "button.b-dismiss", "button.b-escalate"):
            assert row.locator(b).is_visible() and _on_screen(page, row.locator(b)), (b, size)
        assert _on_screen(page, row.locator("td.title > a"))
        bulk = page.locator("#bulk button[value='confirm']")
        assert bulk.is_visible() and _on_screen(page, bulk)
        shot(page, f"queue-tablet-{size}")
        seller_href = row.locator("td.title .meta a").first.get_attribute("href")
        confirm.tap()
        page.wait_for_selector(f'tr.s-confirmed[data-key="{key}"]')
        assert app_with_data.state.store.get(key)["review_status"] == "confirmed"
        # the other pages: nothing wider than the screen
        page.locator("header.top nav.nav a[href='/search']").tap()
        page.wait_for_url("**/search")
        for path, name in (("/search?flagged=1&q=ปลั๊ก", "search"), ("/listing/" + key, "listing"),
                           (seller_href, "seller"), ("/dashboard", "dashboard"), ("/account", "account")):
            page.goto(srv.url + path)
            page.wait_for_selector("main h1")
            sw, cw = page.evaluate(NO_SIDE_SCROLL)
            assert sw <= cw, f"{path} scrolls sideways at {size}: {sw} > {cw}"
            shot(page, f"{name}-tablet-{size}")
        # the listing page's decision buttons are on screen
        page.goto(srv.url + "/listing/" + key)
        buttons = page.locator("#decide-form button").all()
        assert buttons and all(_on_screen(page, b) for b in buttons)
    assert problems == []
