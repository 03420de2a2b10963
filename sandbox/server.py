"""The sandbox marketplaces: one aiohttp server, three replicas of real sites, for the demo and the tests.

    /shopee/...   search and product pages rendered by JavaScript from XHR JSON (api/v4/search/search_items,
                  api/v4/pdp/get_pc). The API answers {"error":90309999} unless the request carries the
                  x-sap-sec header that the page's own script computes, as the real site does.
    /lazada/...   catalog JSON (?ajax=true, mods.listItems, mainInfo), product pages with __moduleData__.
    /shop/...     an ordinary shop site: sitemap.xml, product pages with JSON-LD or microdata.
    /_sandbox/... control: truth.jsonl (listings with expected verdicts), seeds.json, round, stats, config.

It also misbehaves as real sites do when crawled badly: pagination that ends, items that vanish (and
prices that change) in round 2, HTTP 429 above a request rate, a block page on demand (Shopee: page
navigations go to /shopee/verify/captcha and the API says error 90309999; Lazada: the "punish" page),
catalog JSON cut off in the middle, slow answers, a 20 MB page, a windows-874 page, a page robots.txt
forbids. POST /_sandbox/config switches the modes (see Modes).

Adding routes: `make_app` registers them in one place per site; a new site area (e.g. images) adds its
own `r.add_get(...)` lines there and, when it should misbehave too, its prefix to MARKETPLACES.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from matching.normalise import fold
from sandbox import shapes
from sandbox.images import ImageBook
from sandbox.world import World, WorldListing, build_world

STATIC = Path(__file__).parent / "static"
SHOPEE_SECRET = "tiswatch-sandbox-7f3a"
PAGE_SIZE = {"shopee": 60, "lazada": 40, "shop": 50}
SB: web.AppKey[Sandbox] = web.AppKey("sb", "Sandbox")  # type: ignore[type-arg]
IMAGES: web.AppKey[ImageBook] = web.AppKey("images", ImageBook)  # the listings' pictures (sandbox/images.py)


def sap_sec(path_and_query: str, token: str) -> str:
    """The signature the sandbox's Shopee page computes in JavaScript (FNV-1a over token + url)."""
    h = 0x811C9DC5
    for ch in (token + "|" + path_and_query).encode():
        h ^= ch
        h = (h * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


MARKETPLACES = ("shopee", "lazada", "shop")


@dataclass
class Modes:
    rate_limit: float = 0.0        # requests/s per marketplace above which 429 is sent; 0 = never
    block: set[str] = field(default_factory=set)  # marketplaces that answer with a block page
    slow_ms: int = 0                # added latency per request
    huge_page_mb: int = 0           # /shop/huge.html size
    truncate_json: int = 0          # the next N Lazada catalog JSON answers are cut off in the middle
    slow_get_pc_ms: int = 0         # Shopee's first get_pc answer for each item comes this late (a slow page)


class Sandbox:
    def __init__(self, world: World, base_url: str = ""):
        self.world = world
        self.base_url = base_url.rstrip("/")
        self.round = 1
        self.modes = Modes()
        self.stats: dict[str, int] = defaultdict(int)
        self.fetched: Counter[str] = Counter()  # marketplace requests by path and query: what a crawl fetched how often
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self.slowed: set[str] = set()  # Shopee items whose first get_pc answer was held back (slow_get_pc_ms)
        self.sellers = {s.seller_id: s for s in world.sellers}
        self.by_key = {(w.marketplace, w.item_id): w for w in world.listings}
        self.group = {}
        for w in world.listings:
            std = w.expected.get("tis_no")
            s = world.catalogue.find(std) if std else None
            self.group[(w.marketplace, w.item_id)] = s.group if s else None

    # ---- helpers ---------------------------------------------------------------------------------
    def visible(self, marketplace: str) -> list[WorldListing]:
        return self.world.for_marketplace(marketplace, self.round)

    def data(self, w: WorldListing) -> dict[str, Any]:
        d = w.at(self.round)
        cat = self.cat(w)
        d["category"] = [cat[1]]
        return d

    def cat(self, w: WorldListing) -> tuple[int, str, str]:
        return shapes.category_of(w, self.group.get((w.marketplace, w.item_id)))

    def seller(self, w: WorldListing):
        return self.sellers[w.listing["seller_id"]]

    def categories(self, marketplace: str) -> list[tuple[int, str, str]]:
        seen: dict[int, tuple[int, str, str]] = {}
        for w in self.world.listings:
            if w.marketplace == marketplace:
                c = self.cat(w)
                seen[c[0]] = c
        return sorted(seen.values())

    def search(self, marketplace: str, keyword: str) -> list[WorldListing]:
        k = fold(keyword)
        words = [x for x in k.split() if x]
        return [w for w in self.visible(marketplace) if all(x in fold(w.listing["title"]) for x in words)]

    def in_category(self, marketplace: str, catid: int) -> list[WorldListing]:
        return [w for w in self.visible(marketplace) if self.cat(w)[0] == catid]

    def too_fast(self, marketplace: str) -> bool:
        if not self.modes.rate_limit:
            return False
        now = time.monotonic()
        q = self._hits[marketplace]
        q.append(now)
        while q and q[0] < now - 1.0:
            q.popleft()
        return len(q) > self.modes.rate_limit

    def truth(self) -> list[dict[str, Any]]:
        out = []
        for w in self.world.listings:
            if w.visible(self.round):
                d = self.data(w)
                d["expected"] = w.expected
                d["scenario"] = w.scenario
                out.append(d)
        return out


def _page(items: list[Any], page: int, size: int) -> tuple[list[Any], bool]:
    start = page * size
    chunk = items[start:start + size]
    return chunk, start + size >= len(items)


def make_app(world: World | None = None, base_url: str = "") -> web.Application:
    sb = Sandbox(world or build_world(), base_url)
    app = web.Application(middlewares=[_middleware])
    app[SB] = sb
    app[IMAGES] = ImageBook(sb.world)
    r = app.router
    r.add_get("/", index)
    r.add_get("/robots.txt", robots)
    r.add_get("/_sandbox/truth.jsonl", truth)
    r.add_get("/_sandbox/seeds.json", seeds)
    r.add_get("/_sandbox/stats", stats)
    r.add_post("/_sandbox/round", set_round)
    r.add_post("/_sandbox/config", set_config)
    r.add_get("/img/{name}", image)     # the marketplaces' picture CDN (sandbox/images.py draws them)
    r.add_get("/file/{name}", image)
    r.add_get("/shopee/file/{name}", image)
    r.add_get("/shop/img/{name}", image)
    # shopee-like
    r.add_get("/shopee/", shopee_home)
    r.add_get("/shopee/search", shopee_shell)
    r.add_get("/shopee/static/{name}", static)
    r.add_get("/shopee/api/v4/search/search_items", shopee_search)
    r.add_get("/shopee/api/v4/pdp/get_pc", shopee_get_pc)
    r.add_get("/shopee/{slug:.+-cat\\.\\d+(?:\\.\\d+)?}", shopee_shell)
    r.add_get("/shopee/{slug:.+-i\\.\\d+\\.\\d+}", shopee_product)
    r.add_get("/shopee/product/{shop:\\d+}/{item:\\d+}", shopee_product)
    r.add_get("/shopee/verify/captcha", shopee_captcha)
    # lazada-like
    r.add_get("/lazada/catalog/", lazada_catalog)
    r.add_get("/lazada/products/{slug}", lazada_product)
    r.add_get("/lazada/{cat}/", lazada_catalog)
    # shop site
    r.add_get("/shop/", shop_home)
    r.add_get("/shop/sitemap.xml", shop_sitemap)
    r.add_get("/shop/product/{item}.html", shop_product)
    r.add_get("/shop/huge.html", shop_huge)
    r.add_get("/shop/broken.html", shop_broken)
    r.add_get("/shop/cp874.html", shop_cp874)
    r.add_get("/shop/private/{item}.html", shop_product)
    return app


@web.middleware
async def _middleware(request: web.Request, handler):
    sb: Sandbox = request.app[SB]
    parts = request.path.strip("/").split("/")
    mp = parts[0] if parts and parts[0] in MARKETPLACES else ""
    sb.stats["requests"] += 1
    if mp:
        sb.stats[f"requests:{mp}"] += 1
        sb.fetched[str(request.rel_url)] += 1
        if sb.modes.slow_ms:
            await asyncio.sleep(sb.modes.slow_ms / 1000)
        if sb.too_fast(mp):
            sb.stats[f"429:{mp}"] += 1
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        if mp in sb.modes.block and "/verify/" not in request.path:
            sb.stats[f"blocked:{mp}"] += 1
            if mp == "shopee":
                if "/api/" in request.path:
                    return web.json_response(shapes.BLOCK)
                raise web.HTTPFound(f"/shopee/verify/captcha?anti_bot_tracking_id=sandbox&redirect={quote(str(request.rel_url))}")
            if mp == "lazada":
                return web.Response(text=shapes.PUNISH_HTML, content_type="text/html")
    return await handler(request)


def _base(request: web.Request) -> str:
    sb: Sandbox = request.app[SB]
    return sb.base_url or f"{request.scheme}://{request.host}"


async def index(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    counts = {mp: len(sb.visible(mp)) for mp in ("shopee", "lazada", "shop")}
    body = "".join(f'<li><a href="/{mp}/">{mp}</a>: {n} listings</li>' for mp, n in counts.items())
    return web.Response(text=f"<!DOCTYPE html><title>tiswatch sandbox</title><h1>tiswatch sandbox marketplaces</h1>"
                             f"<p>round {sb.round}, seed {sb.world.seed}</p><ul>{body}</ul>"
                             f'<p><a href="/_sandbox/truth.jsonl">truth.jsonl</a> · <a href="/_sandbox/seeds.json">seeds.json</a></p>',
                        content_type="text/html")


async def robots(request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nDisallow: /_sandbox/\nDisallow: /shopee/cart\nDisallow: /shop/private/\n"
                             f"Sitemap: {_base(request)}/shop/sitemap.xml\n")


async def truth(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    lines = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in sb.truth())
    return web.Response(text=lines, content_type="application/x-ndjson")


async def seeds(request: web.Request) -> web.Response:
    """Start points per marketplace, in the same URL forms as the real category seeds."""
    sb: Sandbox = request.app[SB]
    base = _base(request)
    return web.json_response({
        "shopee": {"categories": [f"{base}/shopee/{quote(c[1])}-cat.{c[0]}" for c in sb.categories("shopee")]},
        "lazada": {"categories": [f"{base}/lazada/{c[2]}/" for c in sb.categories("lazada")]},
        "shop": {"sitemap": f"{base}/shop/sitemap.xml"},
    })


async def stats(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    return web.json_response({"round": sb.round, **sb.stats})


async def set_round(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    body = await request.json()
    sb.round = int(body.get("round", sb.round + 1))
    return web.json_response({"round": sb.round})


async def set_config(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    body = await request.json()
    if "rate_limit" in body:
        sb.modes.rate_limit = float(body["rate_limit"])
    if "block" in body:
        sb.modes.block = set(body["block"])
    if "slow_ms" in body:
        sb.modes.slow_ms = int(body["slow_ms"])
    if "huge_page_mb" in body:
        sb.modes.huge_page_mb = int(body["huge_page_mb"])
    if "truncate_json" in body:
        sb.modes.truncate_json = int(body["truncate_json"])
    if "slow_get_pc_ms" in body:
        sb.modes.slow_get_pc_ms = int(body["slow_get_pc_ms"])
    return web.json_response({"rate_limit": sb.modes.rate_limit, "block": sorted(sb.modes.block), "slow_ms": sb.modes.slow_ms,
                              "huge_page_mb": sb.modes.huge_page_mb, "truncate_json": sb.modes.truncate_json,
                              "slow_get_pc_ms": sb.modes.slow_get_pc_ms})


async def image(request: web.Request) -> web.Response:
    """A listing's picture by the name its pages give it: a product photo, a label with the TIS mark,
    a licence QR code (sandbox/images.py), drawn once and kept."""
    sb = request.app[SB]
    name = request.match_info["name"].rsplit(".", 1)[0]
    sb.stats["requests:images"] += 1
    got = await asyncio.get_running_loop().run_in_executor(None, request.app[IMAGES].get, name)
    if got is None:
        raise web.HTTPNotFound(text="no such picture")
    body, ctype = got
    return web.Response(body=body, content_type=ctype, headers={"Cache-Control": "public, max-age=86400"})


# ---- shopee --------------------------------------------------------------------------------------
def _shopee_token(request: web.Request) -> str:
    return hashlib.sha256((SHOPEE_SECRET + request.host).encode()).hexdigest()[:16]


def _shopee_signed(request: web.Request) -> bool:
    token = request.cookies.get("SPC_SEC_SI", "")
    if token != _shopee_token(request):
        return False
    return request.headers.get("x-sap-sec", "") == sap_sec(request.raw_path, token)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    p = STATIC / name
    if not p.is_file() or p.parent != STATIC:
        raise web.HTTPNotFound()
    return web.Response(body=p.read_bytes(), content_type="application/javascript" if name.endswith(".js") else "text/css")


def _shopee_html(request: web.Request, title: str, head: str = "") -> web.Response:
    resp = web.Response(
        text=f'<!DOCTYPE html><html lang="th"><head><meta charset="utf-8"><title>{title}</title>{head}</head>'
             '<body><div id="main"><div class="shopee-loading">กำลังโหลด…</div></div>'
             '<script src="/shopee/static/shopee.js"></script></body></html>', content_type="text/html")
    resp.set_cookie("SPC_SEC_SI", _shopee_token(request), httponly=False, path="/")
    return resp


async def shopee_home(request: web.Request) -> web.Response:
    return _shopee_html(request, "Shopee Thailand (sandbox)")


async def shopee_shell(request: web.Request) -> web.Response:
    return _shopee_html(request, "ค้นหา | Shopee Thailand (sandbox)")


async def shopee_search(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    if not _shopee_signed(request):
        sb.stats["blocked:shopee:unsigned"] += 1
        return web.json_response(shapes.BLOCK)
    q = request.query
    limit = min(int(q.get("limit", "60") or 60), 100)
    newest = int(q.get("newest", "0") or 0)
    if q.get("scenario") == "PAGE_CATEGORY" or q.get("match_id"):
        items = sb.in_category("shopee", int(q.get("match_id", "0") or 0))
        shape = "item_cards" if int(q.get("match_id", "0") or 0) % 2 else "items"
    else:
        kw = q.get("keyword", "")
        items = sb.search("shopee", kw)
        shape = "item_cards" if sum(kw.encode()) % 2 else "items"
    chunk = items[newest:newest + limit]
    nomore = newest + limit >= len(items)
    if shape == "item_cards":
        rendered = [shapes.shopee_item_card(w, sb.data(w), sb.cat(w), sb.seller(w).name) for w in chunk]
    else:
        rendered = [shapes.shopee_item_basic(w, sb.data(w), sb.cat(w)) for w in chunk]
    return web.json_response(shapes.shopee_search(rendered, len(items), nomore, shape))


async def shopee_get_pc(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    if not _shopee_signed(request):
        sb.stats["blocked:shopee:unsigned"] += 1
        return web.json_response(shapes.BLOCK)
    w = sb.by_key.get(("shopee", request.query.get("item_id", "")))
    if w is None or not w.visible(sb.round) or w.listing["shop_id"] != request.query.get("shop_id"):
        return web.json_response({"bff_meta": None, "error": 4, "error_msg": "item not found", "data": None})
    if sb.modes.slow_get_pc_ms and w.item_id not in sb.slowed:
        sb.slowed.add(w.item_id)
        await asyncio.sleep(sb.modes.slow_get_pc_ms / 1000)
    s = sb.seller(w)
    return web.json_response(shapes.shopee_get_pc(w, sb.data(w), sb.cat(w), s.name, s.username))


async def shopee_product(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    if "item" in request.match_info:
        item = request.match_info["item"]
    else:
        item = request.match_info["slug"].rsplit(".", 1)[1]
    w = sb.by_key.get(("shopee", item))
    if w is None or not w.visible(sb.round):
        # the real site renders a shell and the API says the item is gone
        return _shopee_html(request, "ไม่พบสินค้า | Shopee Thailand (sandbox)")
    s = sb.seller(w)
    ld = json.dumps(shapes.shopee_jsonld(_base(request) + "/shopee", w, sb.data(w), s.name, s.username), ensure_ascii=False)
    return _shopee_html(request, "Shopee Thailand (sandbox)",
                        head='<script type="application/ld+json">' + ld.replace("</", "<\\/") + "</script>")


async def shopee_captcha(request: web.Request) -> web.Response:
    return web.Response(text='<!DOCTYPE html><html lang="th"><head><meta charset="utf-8"><title>Shopee | Verification</title></head>'
                             '<body><div id="captcha" class="shopee-captcha">กรุณายืนยันว่าคุณไม่ใช่โปรแกรมอัตโนมัติ</div></body></html>',
                        content_type="text/html")


# ---- lazada --------------------------------------------------------------------------------------
async def lazada_catalog(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    q = request.query
    page = max(1, int(q.get("page", "1") or 1))
    cat = request.match_info.get("cat")
    if cat and cat != "catalog":
        match = [c for c in sb.categories("lazada") if c[2] == cat]
        if not match:
            raise web.HTTPNotFound(text="category not found")
        items = sb.in_category("lazada", match[0][0])
    else:
        items = sb.search("lazada", q.get("q", ""))
    size = PAGE_SIZE["lazada"]
    chunk = items[(page - 1) * size: page * size]
    data = shapes.lazada_catalog([shapes.lazada_list_item(w, sb.data(w), sb.cat(w), sb.seller(w).name, _base(request) + "/img") for w in chunk],
                                 len(items), page, size, q.get("q", ""))
    if q.get("ajax") == "true":
        if sb.modes.truncate_json > 0:
            sb.modes.truncate_json -= 1
            sb.stats["truncated:lazada"] += 1
            body = json.dumps(data, ensure_ascii=False).encode()
            return web.Response(body=body[: len(body) // 2], content_type="application/json")
        return web.json_response(data)
    body = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return web.Response(text=f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Lazada (sandbox)</title></head>'
                             f'<body><div id="root"></div><script>window.pageData={body};</script></body></html>',
                        content_type="text/html")


async def lazada_product(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    import re

    m = re.search(r"-i(\d+)(?:-s(\d+))?\.html$", request.match_info["slug"])
    w = sb.by_key.get(("lazada", m.group(1))) if m else None
    if w is None or not w.visible(sb.round):
        raise web.HTTPNotFound(text="<html><body>ขออภัย ไม่พบหน้าที่คุณต้องการ</body></html>", content_type="text/html")
    fields = shapes.lazada_fields(w, sb.data(w), sb.cat(w), sb.seller(w).name, _base(request) + "/img")
    body = json.dumps({"data": {"root": {"fields": fields}}}, ensure_ascii=False).replace("</", "<\\/")
    title = fields["product"]["title"]
    import html as h

    d = sb.data(w)
    img = f"/img/{shapes.image_id(w)}.png"
    # what the real page renders from the module data, so that an evidence screenshot shows it
    visible = (f'<div class="pdp-block"><img class="gallery" src="{img}" alt="" width="240" height="240">'
               f'<div class="pdp-price">฿{d["price"]:,.2f}</div>'
               f'<div class="pdp-brand">แบรนด์: {h.escape(d.get("brand") or "No Brand")}</div>'
               f'<div class="seller-name">ร้านค้า: {h.escape(sb.seller(w).name)}</div>'
               f'<div class="pdp-description">{fields["product"]["desc"]}</div></div>')
    return web.Response(
        text=f'<!DOCTYPE html><html lang="th"><head><meta charset="utf-8"><title>{h.escape(title)} | Lazada.co.th</title></head>'
             f'<body><div id="container"><h1 class="pdp-mod-product-badge-title">{h.escape(title)}</h1>{visible}</div>'
             f'<script>var __moduleData__ = {body};\nvar __googleBot__ = "";</script></body></html>',
        content_type="text/html")


# ---- shop ----------------------------------------------------------------------------------------
async def shop_home(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    links = "".join(f'<li><a href="/shop/product/{w.item_id}.html">{w.listing["title"]}</a></li>'
                    .replace("<a href", "<a href") for w in sb.visible("shop")[:50])
    return web.Response(text=f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Shop</title></head><body><ul>{links}</ul></body></html>",
                        content_type="text/html")


async def shop_sitemap(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    base = _base(request)
    urls = "".join(f"<url><loc>{base}/shop/product/{w.item_id}.html</loc><lastmod>{_lastmod(w, sb.round)}</lastmod></url>"
                   for w in sb.visible("shop"))
    return web.Response(text=f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
                        content_type="application/xml")


def _lastmod(w: WorldListing, round_no: int) -> str:
    """A page changes (and its sitemap lastmod with it) in the round its price changes."""
    changed = max((r for r in w.price_by_round if r <= round_no), default=0)
    return f"2026-11-{1 + changed:02d}"


async def shop_product(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    w = sb.by_key.get(("shop", request.match_info["item"]))
    if w is None or not w.visible(sb.round):
        raise web.HTTPNotFound(text="not found")
    microdata = int(hashlib.md5(w.item_id.encode()).hexdigest(), 16) % 2 == 1
    return web.Response(text=shapes.shop_page(_base(request) + "/shop", w, sb.data(w), sb.seller(w).name, microdata),
                        content_type="text/html")


async def shop_huge(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SB]
    mb = sb.modes.huge_page_mb or 20
    filler = "<p>" + "ก" * 1000 + "</p>"
    n = math.ceil(mb * 1024 * 1024 / len(filler.encode()))
    return web.Response(text="<!DOCTYPE html><html><body>" + filler * n + "</body></html>", content_type="text/html")


async def shop_broken(request: web.Request) -> web.Response:
    return web.Response(text='<!DOCTYPE html><html><head><script type="application/ld+json">{"@type": "Product", "name": "ปลั๊กพ่วง',
                        content_type="text/html")


async def shop_cp874(request: web.Request) -> web.Response:
    text = ('<!DOCTYPE html><html><head><meta charset="windows-874"><title>ปลั๊กพ่วง</title><script type="application/ld+json">'
            '{"@context":"https://schema.org","@type":"Product","name":"ปลั๊กพ่วง 4 ช่อง มอก. 2432-2555","sku":"cp874-1",'
            '"offers":{"@type":"Offer","price":"199.00","priceCurrency":"THB"}}</script></head><body>ปลั๊กพ่วง</body></html>')
    return web.Response(body=text.encode("cp874"), headers={"Content-Type": "text/html; charset=windows-874"})


# ---- running -------------------------------------------------------------------------------------
class SandboxServer:
    """Runs the sandbox in a background thread (for tests and the demo); `url` is its address."""

    def __init__(self, world: World | None = None, host: str = "127.0.0.1", port: int = 0):
        self.world = world or build_world()
        self.host, self.port = host, port
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread = None
        self.app: web.Application | None = None

    def start(self) -> SandboxServer:
        import threading

        ready = threading.Event()
        err: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self.app = make_app(self.world)
                self._runner = web.AppRunner(self.app, access_log=None)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, self.host, self.port)
                loop.run_until_complete(site.start())
                port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                self.url = f"http://{self.host}:{port}"
            except BaseException as e:
                err.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="sandbox", daemon=True)
        self._thread.start()
        ready.wait(30)
        if err:
            raise err[0]
        return self

    @property
    def sandbox(self) -> Sandbox:
        assert self.app is not None
        return self.app[SB]

    def stop(self) -> None:
        if self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(world: World, host: str, port: int, announce=print) -> None:
    """Serve in the foreground until interrupted; `announce(url)` is told the address (with the port
    actually bound when `port` is 0)."""
    srv = SandboxServer(world, host, port).start()
    announce(srv.url)
    try:
        srv._thread.join()  # type: ignore[union-attr]
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
