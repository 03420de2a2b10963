"""The review page in real Chromium: flagged listings by risk, hostile listing text shown as text."""

from datetime import UTC, datetime

import pytest

from listings.model import Listing
from listings.store import open_store
from matching import check
from review.app import create_app
from tests.browser.conftest import LiveServer, shot

pytestmark = pytest.mark.browser
HOSTILE = ['<script>window.__pwned = 1; alert(1)</script>พาวเวอร์แบงค์ 10000mAh',
           '"><img src=x onerror="window.__pwned = 2">ปลั๊กพ่วง 4 ช่อง']


@pytest.fixture
def app_with_data(home, world, world_registry):
    st = open_store(home)
    at = datetime(2026, 11, 22, 3, tzinfo=UTC)
    for w in world.listings:
        x = Listing(**w.listing)
        st.ingest(x, check(x, world_registry), at)
    for i, t in enumerate(HOSTILE):
        x = Listing(marketplace="shopee", item_id=f"x{i}", title=t, description=t, seller=t, brand=t)
        st.ingest(x, check(x, world_registry), at)
    st.close()
    return create_app(home)


def test_queue_orders_by_risk_and_escapes_hostile_text(app_with_data, page):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    with LiveServer(app_with_data) as srv:
        page.goto(srv.url + "/")
        risks = [int(x) for x in page.locator("td.risk").all_inner_texts()]
        assert risks and risks == sorted(risks, reverse=True)
        page.goto(srv.url + "/?q=" + "ปลั๊กพ่วง")
        assert page.get_by_text(HOSTILE[1], exact=False).count() >= 1
        page.goto(srv.url + "/?q=" + "พาวเวอร์แบงค์")
        titles = page.locator("td.title a").all_inner_texts()
        assert any("<script>" in t for t in titles)
        shot(page, "queue")
        page.locator("td.title a", has_text="<script>").first.click()
        page.wait_for_selector("h1.ltitle")
        assert "<script>" in page.locator("h1.ltitle").inner_text()
        shot(page, "listing")
        assert page.evaluate("window.__pwned === undefined")
    assert dialogs == []
