"""Every real recorded file in ../shared/data/marketplaces, met by the spiders themselves: each
response goes through the callback a crawl would call (not only through `tiswatch parse`), with a
real Scrapy crawler, the listing store and the registry behind it. What no spider receives as a
response (other people's DOM scrapes, URL lists, category seeds) is checked for what a spider takes
from it: product URLs it must recognise, category URLs it must start from.

A recording added to the folder fails `test_every_recording_is_met_by_a_spider` until it is given a
row in MEETS below (tests/unit/test_parsers_recorded.py pins what `tiswatch parse` makes of it)."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import scrapy
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler

from crawlers.spiders.lazada import LazadaSpider
from crawlers.spiders.shop import ShopSpider
from crawlers.spiders.shopee import ShopeeSpider, _init_page
from listings.model import Listing
from tests.conftest import MARKETPLACES

FILES = sorted(p for p in MARKETPLACES.rglob("*") if p.is_file() and p.suffix != ".md")
SHOPEE = "https://shopee.co.th"
LAZADA = "https://www.lazada.co.th"


@pytest.fixture
def spider(home):
    """A spider of the given class on a real crawler whose data directory is `home` (empty store)."""
    made = []

    def make(cls, **kw):
        crawler = get_crawler(cls, {"TISWATCH_HOME": str(home.home)})
        sp = cls.from_crawler(crawler, **kw)
        crawler.spider = sp
        made.append(sp)
        return sp

    yield make
    for sp in made:
        if getattr(sp.crawler, "tiswatch", None) is not None:
            sp.crawler.tiswatch.close()


class RecordedPage:
    """The part of a Playwright page the Shopee spider uses. The spider's own `_init_page` hooks its
    request and response listeners in, and the recorded API call and answer are delivered to them as
    the browser would."""

    def __init__(self, url: str):
        self.url = url
        self.closed = False
        self.screenshots = 0
        self._listeners: dict[str, list[Callable[[Any], None]]] = {"request": [], "response": []}

    def on(self, event: str, fn: Callable[[Any], None]) -> None:
        assert event in self._listeners
        self._listeners[event].append(fn)

    def deliver(self, url: str, body: bytes, status: int = 200) -> None:
        class Resp:
            pass

        r = Resp()
        r.url, r.status = url, status

        async def read() -> bytes:
            return body

        r.body = read
        for fn in self._listeners["request"]:
            fn(r)  # the call (a request has the url too)
        for fn in self._listeners["response"]:
            fn(r)

    def is_closed(self) -> bool:
        return self.closed

    async def close(self) -> None:
        self.closed = True

    async def screenshot(self, **kw: Any) -> bytes:
        self.screenshots += 1
        return b"\x89PNG\r\n\x1a\n"


async def _collect(agen) -> list[Any]:
    return [x async for x in agen]


def _run(coro_fn: Callable[[], Any]) -> Any:
    """Run a coroutine in a thread of its own: another test in this worker may have left an event
    loop running in the main thread (asyncio.run refuses to nest)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as ex:
        return ex.submit(lambda: asyncio.run(coro_fn())).result()


def _browser_response(page_url: str, api_url: str, body: bytes, html: str = "<html><body></body></html>"):
    async def go():
        page = RecordedPage(page_url)
        await _init_page(page, None)
        page.deliver(api_url, body)
        req = scrapy.Request(page_url, meta={"playwright_page": page})
        return page, HtmlResponse(page_url, body=html.encode(), encoding="utf-8", request=req)
    return go


def _valid(item: dict[str, Any]) -> Listing:
    return Listing.model_validate({k: v for k, v in item.items() if not k.startswith("_")})


# ---- how a spider meets each recording -----------------------------------------------------------
def shopee_search_items(path: Path, spider) -> None:
    sp = spider(ShopeeSpider, max_search_pages="5")
    data = json.loads(path.read_bytes())
    cards = data["centralize_item_card"]["item_cards"] if "centralize_item_card" in data else data["items"]
    root = f"{SHOPEE}/shop/{cards[0]['shopid']}/search"
    api = f"{SHOPEE}/api/v4/search/search_items?by=pop&limit=30&match_id={cards[0]['shopid']}&newest=0&page_type=shop"

    async def run():
        page, resp = await _browser_response(root, api, path.read_bytes())()
        return page, await _collect(sp.parse_search(resp, root=root, page=0))
    page, out = _run(run)
    assert page.closed  # the callback closed its page
    products = [r for r in out if r.callback == sp.parse_product]
    more = [r for r in out if r.callback == sp.parse_search]
    assert [r.cb_kwargs["card"]["item_id"] for r in products] == [str(c["itemid"]) for c in cards]
    for r in products:
        card = r.cb_kwargs["card"]
        _valid(card)
        assert r.url == card["url"] and f".{card['item_id']}" in r.url and r.meta["playwright"]
    assert [r.url for r in more] == ([f"{root}?page=1"] if not data.get("nomore") else [])
    assert sp.crawler.stats.get_value("tiswatch/cards/new") == len(cards)
    assert not sp.crawler.stats.get_value("tiswatch/parse_errors")


def shopee_get_pc(path: Path, spider) -> None:
    sp = spider(ShopeeSpider)
    item = json.loads(path.read_bytes())["data"]["item"]
    iid, sid = str(item["item_id"]), str(item["shop_id"])
    url = f"{SHOPEE}/product/{sid}/{iid}"
    api = f"{SHOPEE}/api/v4/pdp/get_pc?item_id={iid}&shop_id={sid}&tz_offset_minutes=420&detail_level=0"
    card = {"marketplace": "shopee", "item_id": iid, "shop_id": sid, "url": url}

    async def run():
        page, resp = await _browser_response(url, api, path.read_bytes())()
        return page, await _collect(sp.parse_product(resp, card=card, card_hash="h"))
    page, out = _run(run)
    assert page.closed and len(out) == 1
    it = out[0]
    listing = _valid(it)
    assert listing.item_id == iid and listing.title == item["title"] and listing.price == 120.0
    assert listing.seller == "S P SHOP" and listing.location == "จังหวัดกรุงเทพมหานคร"
    assert it["_raw_kind"] == "json" and json.loads(it["_raw"])["data"]["item"]["item_id"] == item["item_id"]
    assert "_verdict" in it  # checked by the matcher on the way (a camping chair: no standard)
    assert page.screenshots == (1 if it["_verdict"].flagged else 0)


def lazada_catalog(path: Path, spider) -> None:
    sp = spider(LazadaSpider, max_search_pages="3")
    root = f"{LAZADA}/shop-tablet/"
    resp = TextResponse(f"{root}?ajax=true&page=1", body=path.read_bytes(), encoding="utf-8",
                        request=scrapy.Request(f"{root}?ajax=true&page=1"))
    out = list(sp.parse_catalog(resp, root=root, page=1))
    items = json.loads(path.read_bytes())["mods"]["listItems"]
    products = [r for r in out if r.callback == sp.parse_product]
    more = [r for r in out if r.callback == sp.parse_catalog]
    assert [r.cb_kwargs["card"]["item_id"] for r in products] == [str(i["itemId"]) for i in items]
    for r, raw in zip(products, items, strict=True):
        card = r.cb_kwargs["card"]
        _valid(card)
        assert r.url == "https:" + raw["itemUrl"].split("?")[0] and card["title"] == raw["name"]
    assert [r.url for r in more] == [f"{root}?ajax=true&page=2"]  # mainInfo: 2241 results, more pages


def lazada_pdp_fields(path: Path, spider) -> None:
    """The recording is the `fields` object of a product page (data.root.fields of __moduleData__):
    put back in a page the way Lazada embeds it, it goes through the spider's product callback."""
    sp = spider(LazadaSpider)
    fields = json.loads(path.read_bytes())
    iid = str(fields["primaryKey"]["itemId"])
    url = f"{LAZADA}/products/x-i{iid}.html"
    html = ("<html><head><script>window.__moduleData__ = "
            + json.dumps({"data": {"root": {"fields": fields}}}, ensure_ascii=False)
            + ";</script></head><body></body></html>")
    resp = HtmlResponse(url, body=html.encode(), encoding="utf-8", request=scrapy.Request(url))
    out = list(sp.parse_product(resp, card={"marketplace": "lazada", "item_id": iid, "url": url}))
    items = [x for x in out if isinstance(x, dict)]
    renders = [x for x in out if isinstance(x, scrapy.Request)]
    it = items[0] if items else renders[0].cb_kwargs["item"]  # a flagged listing is first rendered for evidence
    listing = _valid(it)
    assert listing.item_id == "881388008" and listing.brand == "KACEE" and listing.seller == "kaceebest"
    assert listing.attributes["ประเภทสินค้า"] == "ผ้าม่าน"
    assert not sp.crawler.stats.get_value("tiswatch/parse_errors")


def shop_page(path: Path, spider) -> None:
    """A foreign marketplace's search page: no schema.org Product on it. The shop spider stores
    nothing from it and counts it, rather than inventing a listing."""
    sp = spider(ShopSpider)
    url = "https://www.amazon.com.br/s?k=galaxy+a34"
    resp = HtmlResponse(url, body=path.read_bytes(), request=scrapy.Request(url))
    assert list(sp.parse_page(resp)) == []
    assert sp.crawler.stats.get_value("tiswatch/pages_without_product") == 1
    assert not sp.crawler.stats.get_value("tiswatch/parse_errors")


def _recognised(sp, urls: list[str], expect: Callable[[str], str]) -> None:
    assert urls
    for u in urls:
        ref = sp.ref_of_url(u)
        assert ref is not None, u
        assert ref[1] == expect(u), u


def shopee_urls_csv(path: Path, spider) -> None:
    """Product links a search page showed: each is a listing URL the spider can revisit."""
    sp = spider(ShopeeSpider)
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    first = [r[0] for r in rows if r and r[0] != "link"]
    urls = [u if u.startswith("http") else SHOPEE + u for u in first]
    _recognised(sp, urls, lambda u: u.split("?")[0].rsplit(".", 1)[1])


def lazada_urls_csv(path: Path, spider) -> None:
    sp = spider(LazadaSpider)
    with open(path, encoding="utf-8", newline="") as f:
        urls = [r["Link"] for r in csv.DictReader(f) if r.get("Link")]
    _recognised(sp, urls, lambda u: u.rsplit("-i", 1)[1].split(".")[0].split("-")[0])


def category_seeds(path: Path, spider) -> None:
    """Every real category URL is a start point: Lazada asks for its catalog JSON, Shopee opens it
    in the browser and waits for search_items."""
    seeds = json.loads(path.read_bytes())
    laz = sorted({u for v in seeds.values() for u in v.get("lazada", [])})
    sho = sorted({u for v in seeds.values() for u in v.get("shopee", [])})
    lz = spider(LazadaSpider, categories=json.dumps(laz))
    reqs = list(lz.initial_requests())
    assert len(reqs) == len(laz)
    assert all(r.url.startswith(LAZADA + "/") and r.url.endswith("ajax=true&page=1") for r in reqs)
    sh = spider(ShopeeSpider, categories=json.dumps(sho))
    reqs = list(sh.initial_requests())
    # the seed's page itself (its "?page=" dropped: page 0 is the bare URL), in the browser
    assert [r.url for r in reqs] == [scrapy.Request(u.split("?")[0]).url for u in sho]
    assert all(r.meta["playwright"] and r.callback == sh.parse_search for r in reqs)


def dom_scrape(path: Path, spider) -> None:
    """What someone's scraper copied off a rendered page (text, no ids, no URLs): nothing a spider
    receives; `tiswatch parse` reads it (tests/unit/test_parsers_recorded.py)."""
    data = json.loads(path.read_bytes())
    assert data


MEETS: dict[str, Callable[[Path, Any], None]] = {
    "amazon_br_search_result_card_galaxy_a34.html": shop_page,
    "lazada_shopee_th_category_seed_urls.json": category_seeds,
    "lazada_th_catalog_ajax_shop-tablet_p1.json": lazada_catalog,
    "lazada_th_pdp_fields_kacee_curtain.json": lazada_pdp_fields,
    "lazada_th_search_phones_selenium.csv": lazada_urls_csv,
    "shopee_th_pdp_dom_scrape_product.json": dom_scrape,
    "shopee_th_pdp_dom_scrape_seller.json": dom_scrape,
    "shopee_th_pdp_get_pc_camping_chair.json": shopee_get_pc,
    "shopee_th_product_url_slugs.csv": shopee_urls_csv,
    "shopee_th_search_dom_scrape_lukchin.csv": shopee_urls_csv,
    "shopee_vn_shop_search_items_item_cards_2026.json": shopee_search_items,
}


def test_every_recording_is_met_by_a_spider():
    assert FILES, f"no recordings under {MARKETPLACES}"
    assert sorted(p.name for p in FILES if p.name not in MEETS) == []


@pytest.mark.parametrize("path", [p for p in FILES if p.name in MEETS], ids=lambda p: p.name)
def test_recording_through_the_spider(path, spider):
    MEETS[path.name](path, spider)
