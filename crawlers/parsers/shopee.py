"""Shopee: search_items (classic items[].item_basic and 2026 centralize_item_card), pdp/get_pc, JSON-LD.

Prices in the API are ×100000; ids come as itemid/shopid or item_id/shop_id; product URLs are
<slug>-i.<shopid>.<itemid> or /product/<shopid>/<itemid>. error 90309999 is the anti-bot block.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from crawlers.parsers.common import Blocked, ParseError, drop_empty, parse_count, parse_money

PRICE_SCALE = 100_000
BLOCK_ERROR = 90309999
_IDS_SLUG = re.compile(r"-i\.(\d+)\.(\d+)")
_IDS_SHORT = re.compile(r"/product/(\d+)/(\d+)")


def ids_from_url(url: str) -> tuple[str, str] | None:
    """(shop_id, item_id) from a Shopee product URL, or None."""
    m = _IDS_SLUG.search(url) or _IDS_SHORT.search(url)
    return (m.group(1), m.group(2)) if m else None


def _slug(title: str) -> str:
    s = re.sub(r"[\s/\\?#%&+\[\]【】()\"'<>|,:;!*]+", "-", title)
    return re.sub(r"-{2,}", "-", s).strip("-")[:120] or "item"


def product_url(base: str, title: str, shop_id: Any, item_id: Any) -> str:
    return f"{base.rstrip('/')}/{quote(_slug(title))}-i.{shop_id}.{item_id}"


def image_url(base_img: str, h: str | None) -> str | None:
    return f"{base_img.rstrip('/')}/{h}" if h else None


def check_block(data: Any, url: str) -> None:
    if isinstance(data, dict) and data.get("error") == BLOCK_ERROR:
        raise Blocked("shopee", url, f"error {BLOCK_ERROR} (anti-bot), tracking_id={data.get('tracking_id')}")


def _price(v: Any) -> float | None:
    if v in (None, "", -1):
        return None
    try:
        return round(float(v) / PRICE_SCALE, 2)
    except (TypeError, ValueError):
        return None


def parse_search_items(data: Any, base_url: str = "https://shopee.co.th", url: str = "",
                       img_base: str = "https://down-th.img.susercontent.com/file") -> list[dict[str, Any]]:
    """Search cards as partial listings (title, price, sold, ids, url); both response shapes."""
    check_block(data, url)
    if not isinstance(data, dict):
        raise ParseError(f"{url or 'search_items'}: not a JSON object")
    out: list[dict[str, Any]] = []
    if isinstance(data.get("items"), list):
        for it in data["items"]:
            b = (it or {}).get("item_basic") or it or {}
            if not b.get("itemid") or not b.get("name"):
                continue
            out.append(drop_empty({
                "marketplace": "shopee", "item_id": str(b["itemid"]), "shop_id": str(b.get("shopid") or ""),
                "title": b["name"], "url": product_url(base_url, b["name"], b.get("shopid"), b["itemid"]),
                "brand": b.get("brand") or None, "price": _price(b.get("price") or b.get("price_min")),
                "currency": b.get("currency") or "THB",
                "sold": b.get("historical_sold") if b.get("historical_sold") is not None else b.get("sold"),
                "location": b.get("shop_location"),
                "images": [u for u in (image_url(img_base, h) for h in (b.get("images") or [b.get("image")])) if u],
            }))
        return out
    cards = ((data.get("centralize_item_card") or {}).get("item_cards"))
    if isinstance(cards, list):
        for c in cards:
            asset = c.get("item_card_displayed_asset") or {}
            name = asset.get("name")
            if not c.get("itemid") or not name:
                continue
            price = (c.get("item_card_display_price") or {}).get("price") or (asset.get("display_price") or {}).get("price")
            sold = c.get("item_card_display_sold_count") or {}
            shop = c.get("shop_data") or {}
            out.append(drop_empty({
                "marketplace": "shopee", "item_id": str(c["itemid"]), "shop_id": str(c.get("shopid") or ""),
                "title": name, "url": product_url(base_url, name, c.get("shopid"), c["itemid"]),
                "price": _price(price), "currency": "THB",
                "sold": sold.get("historical_sold_count") or parse_count(sold.get("historical_sold_count_text")
                                                                         or (asset.get("sold_count") or {}).get("text")),
                "seller": shop.get("shop_name"), "location": shop.get("shop_location"),
                "images": [u for u in (image_url(img_base, h) for h in (asset.get("images") or [asset.get("image")])) if u],
            }))
        return out
    if data.get("error") not in (None, 0):
        raise ParseError(f"{url or 'search_items'}: API error {data.get('error')}: {data.get('error_msg')}")
    return out


def search_has_more(data: dict[str, Any]) -> bool:
    return not data.get("nomore", True)


def parse_get_pc(data: Any, base_url: str = "https://shopee.co.th", url: str = "",
                 img_base: str = "https://down-th.img.susercontent.com/file") -> dict[str, Any] | None:
    """A product detail response to a listing; None when the item no longer exists."""
    check_block(data, url)
    if not isinstance(data, dict):
        raise ParseError(f"{url or 'get_pc'}: not a JSON object")
    d = data.get("data")
    if d is None:
        if data.get("error"):
            return None  # item gone (error 4 "item not found") or hidden
        raise ParseError(f"{url or 'get_pc'}: no 'data' in the response")
    it = d.get("item") or {}
    if not it.get("item_id") or not it.get("title"):
        raise ParseError(f"{url or 'get_pc'}: data.item has no item_id or title")
    shop = d.get("shop_detailed") or {}
    price = (d.get("product_price") or {}).get("price") or {}
    p = price.get("single_value")
    if p in (None, -1):
        p = price.get("range_min")
    if p in (None, -1):
        p = it.get("price_min") or it.get("price")
    review = d.get("product_review") or {}
    attrs = {a["name"]: str(a.get("value") or "") for a in (it.get("attributes") or []) if isinstance(a, dict) and a.get("name")}
    images = (d.get("product_images") or {}).get("images") or [it.get("image")]
    return drop_empty({
        "marketplace": "shopee", "item_id": str(it["item_id"]), "shop_id": str(it.get("shop_id") or shop.get("shopid") or ""),
        "url": product_url(base_url, it["title"], it.get("shop_id"), it["item_id"]),
        "title": it["title"], "description": it.get("description"), "brand": it.get("brand") or attrs.get("ยี่ห้อ"),
        "seller": shop.get("name"), "seller_id": str(shop.get("userid") or shop.get("shopid") or "") or None,
        "price": _price(p), "currency": it.get("currency") or "THB",
        "sold": review.get("historical_sold") if review.get("historical_sold") is not None else it.get("historical_sold"),
        "location": it.get("shop_location") or shop.get("shop_location"),
        "category": [c.get("display_name") for c in (it.get("categories") or []) if c.get("display_name")],
        "attributes": attrs,
        "images": [u for u in (image_url(img_base, h) for h in images) if u],
    })


def parse_jsonld(product: dict[str, Any], url: str = "") -> dict[str, Any] | None:
    """A schema.org Product from a Shopee product page (the steadiest fallback)."""
    ids = ids_from_url(product.get("url") or url or "")
    item_id = str(product.get("productID") or (ids[1] if ids else "") or "")
    if not item_id or not product.get("name"):
        return None
    offers = product.get("offers") or {}
    if isinstance(offers, list):
        offers = offers[0] if offers else {}
    brand = product.get("brand")
    if isinstance(brand, dict):
        brand = brand.get("name")
    seller = (offers.get("seller") or {}).get("name") if isinstance(offers.get("seller"), dict) else None
    img = product.get("image")
    return drop_empty({
        "marketplace": "shopee", "item_id": item_id, "shop_id": ids[0] if ids else None,
        "url": product.get("url") or url, "title": product["name"], "description": product.get("description"),
        "brand": brand or None, "seller": seller, "price": parse_money(offers.get("price") or offers.get("lowPrice")),
        "currency": offers.get("priceCurrency") or "THB", "images": img if isinstance(img, list) else [img] if img else [],
    })


def parse_dom_row(row: dict[str, str]) -> dict[str, Any] | None:
    """A row of a search-page DOM scrape (link, price '฿59 - ฿71', sold 'ขายแล้ว 1.4พัน ชิ้น', name)."""
    link = row.get("link") or row.get("url") or ""
    ids = ids_from_url(link)
    if not ids:
        return None
    title = row.get("title") or ""
    if not title:
        name = row.get("name") or ""
        if name.startswith("["):  # a PyThaiNLP token list, as the scraper saved it
            import ast

            try:
                title = "".join(ast.literal_eval(name))
            except (ValueError, SyntaxError):
                title = name
        else:
            title = name
    if not title:
        from urllib.parse import unquote

        title = unquote(link.split("/")[-1].split("-i.")[0]).replace("-", " ")
    return drop_empty({"marketplace": "shopee", "item_id": ids[1], "shop_id": ids[0], "url": link.split("?")[0],
                       "title": title, "price": parse_money(row.get("price")), "currency": "THB",
                       "sold": parse_count(row.get("sold")), "images": [row["image"]] if row.get("image") else []})
