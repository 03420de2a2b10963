"""Lazada: catalog JSON (?ajax=true: mods.listItems, mainInfo) and product pages (__moduleData__ fields).

Prices are baht strings (not scaled); catalog `location` is an English province name; spec keys are
Thai. A captcha/"punish" page instead of JSON is a block.
"""

from __future__ import annotations

import json
import re
from typing import Any

from crawlers.parsers.common import Blocked, ParseError, drop_empty, html_to_text, parse_count, parse_money

_IDS = re.compile(r"-i(\d+)(?:-s(\d+))?\.html")
_NO_BRAND = {"no brand", "nobrand", "oem", ""}


def ids_from_url(url: str) -> tuple[str, str | None] | None:
    m = _IDS.search(url or "")
    return (m.group(1), m.group(2)) if m else None


def absolute(url: str | None, base: str = "https://www.lazada.co.th") -> str | None:
    if not url:
        return None
    if url.startswith("//"):
        return "https:" + url
    if url.startswith("/"):
        return base.rstrip("/") + url
    return url


def is_punish(text: str) -> bool:
    t = text[:20000]
    return ("punish" in t and ("x5sec" in t or "RGV587" in t)) or "_____tmd_____" in t


def check_block(text: str, url: str) -> None:
    if is_punish(text):
        raise Blocked("lazada", url, "captcha/punish page (RGV587_ERROR)")


def parse_catalog(data: Any, url: str = "", base: str = "https://www.lazada.co.th") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Listing cards and paging ({'page', 'page_size', 'total', 'more'}) from a catalog JSON."""
    if not isinstance(data, dict) or ("mods" not in data and "mainInfo" not in data):
        raise ParseError(f"{url or 'catalog'}: not a Lazada catalog JSON (no mods/mainInfo)")
    items = (data.get("mods") or {}).get("listItems") or []
    out = []
    for it in items:
        if not it.get("itemId") or not it.get("name"):
            continue
        brand = it.get("brandName")
        m = re.search(r"shop_id:(\d+)", it.get("clickTrace") or "")
        out.append(drop_empty({
            "marketplace": "lazada", "item_id": str(it["itemId"]), "shop_id": m.group(1) if m else None,
            "url": absolute((it.get("itemUrl") or "").split("?")[0], base), "title": it["name"],
            "brand": None if (brand or "").strip().lower() in _NO_BRAND else brand,
            "seller": it.get("sellerName"), "seller_id": str(it.get("sellerId") or "") or None,
            "price": parse_money(it.get("price")), "currency": "THB", "sold": parse_count(it.get("itemSoldCntShow")),
            "location": it.get("location"), "images": [absolute(it.get("image"), base)] if it.get("image") else [],
        }))
    mi = data.get("mainInfo") or {}
    page = int(mi.get("page") or 1)
    size = int(mi.get("pageSize") or 40)
    total = int(mi.get("totalResults") or 0)
    more = not mi.get("noMorePages", False) and page * size < total
    return out, {"page": page, "page_size": size, "total": total, "more": more}


_MODULE = re.compile(r"(?:__moduleData__|window\.__moduleData__)\s*=\s*", re.S)


def extract_module_data(html: str, url: str = "") -> dict[str, Any]:
    """The `fields` object of a product page (data.root.fields of __moduleData__)."""
    check_block(html, url)
    m = _MODULE.search(html)
    if not m:
        raise ParseError(f"{url or 'product page'}: no __moduleData__ in the page")
    try:
        obj, _ = json.JSONDecoder().raw_decode(html, m.end())
    except json.JSONDecodeError as e:
        raise ParseError(f"{url or 'product page'}: __moduleData__ is not valid JSON ({e.msg} at {e.pos})") from None
    fields = (((obj.get("data") or {}).get("root") or {}).get("fields")) if isinstance(obj, dict) else None
    if not isinstance(fields, dict):
        raise ParseError(f"{url or 'product page'}: __moduleData__ has no data.root.fields")
    return fields


def parse_pdp_fields(fields: dict[str, Any], url: str = "", base: str = "https://www.lazada.co.th") -> dict[str, Any]:
    """A product page's fields to a listing."""
    product = fields.get("product") or {}
    pk = fields.get("primaryKey") or {}
    tracking = fields.get("tracking") or {}
    title = product.get("title") or tracking.get("pdt_name")
    item_id = pk.get("itemId") or tracking.get("pdt_sku") or (ids_from_url(url) or (None,))[0]
    if not title or not item_id:
        raise ParseError(f"{url or 'product page'}: no title or itemId in the page's fields")
    sku = str(pk.get("skuId") or pk.get("defaultSkuId") or "")
    skus = fields.get("skuInfos") or {}
    info = skus.get(sku) or skus.get("0") or (next(iter(skus.values())) if skus else {})
    price = ((info.get("price") or {}).get("salePrice") or {}).get("value")
    specs = fields.get("specifications") or {}
    feats = (specs.get(sku) or (next(iter(specs.values())) if specs else {}) or {}).get("features") or {}
    brand = (product.get("brand") or {}).get("name") or tracking.get("brand_name") or feats.get("แบรนด์")
    seller = fields.get("seller") or {}
    crumbs = [b.get("title") for b in (fields.get("Breadcrumb") or []) if b.get("title")]
    desc = html_to_text(product.get("desc")) or html_to_text(product.get("highlights"))
    gal = fields.get("skuGalleries") or {}
    imgs = [absolute(g.get("src"), base) for g in (gal.get(sku) or (next(iter(gal.values())) if gal else []) or []) if g.get("src")]
    return drop_empty({
        "marketplace": "lazada", "item_id": str(item_id), "shop_id": str(seller.get("shopId") or "") or None,
        "url": url or None, "title": title, "description": desc,
        "brand": None if (brand or "").strip().lower() in _NO_BRAND else brand,
        "seller": seller.get("name") or tracking.get("seller_name"), "seller_id": str(seller.get("sellerId") or pk.get("sellerId") or "") or None,
        "price": parse_money(price), "currency": "THB",
        "category": crumbs or list(tracking.get("pdt_category") or []),
        "attributes": {k: str(v) for k, v in feats.items() if k != "SKU" and v not in (None, "")},
        "images": [i for i in imgs if i],
    })


def parse_search_csv_row(row: dict[str, str]) -> dict[str, Any] | None:
    """A row of the Selenium search scrape (Product_Page, Price, Brand(=title), ..., Location, Link)."""
    link = row.get("Link") or ""
    ids = ids_from_url(link)
    title = row.get("Brand") or row.get("Title") or ""
    if not ids or not title.strip():
        return None
    return drop_empty({"marketplace": "lazada", "item_id": ids[0], "url": link, "title": title.strip(),
                       "price": parse_money(row.get("Price")), "currency": "THB", "location": row.get("Location")})
