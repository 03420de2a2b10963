"""World listings rendered in the shapes the real marketplaces send (see ../shared/data/marketplaces/NOTES.md).

Shopee: api/v4/search/search_items (classic items[].item_basic and the 2026 centralize_item_card shape),
api/v4/pdp/get_pc; prices ×100000; product URLs <slug>-i.<shopid>.<itemid>.
Lazada: catalog ?ajax=true JSON (mods.listItems, mainInfo), product pages with __moduleData__ fields.
Shop: schema.org Product as JSON-LD or microdata, with OpenGraph.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from typing import Any
from urllib.parse import quote

from sandbox.world import WorldListing

PRICE_SCALE = 100_000
CATEGORIES: dict[str, tuple[int, str, str]] = {
    # group -> (category id, Thai name, Lazada slug)
    "appliance": (100010, "เครื่องใช้ไฟฟ้าภายในบ้าน", "shop-home-appliances"),
    "electronics": (100011, "อุปกรณ์อิเล็กทรอนิกส์", "shop-consumer-electronics"),
    "battery": (100011, "อุปกรณ์อิเล็กทรอนิกส์", "shop-consumer-electronics"),
    "lighting": (100012, "บ้านและสวน", "shop-home-living"),
    "electrical": (100012, "บ้านและสวน", "shop-home-living"),
    "sanitary": (100012, "บ้านและสวน", "shop-home-living"),
    "construction": (100012, "บ้านและสวน", "shop-home-living"),
    "kitchen": (100012, "บ้านและสวน", "shop-home-living"),
    "toys": (100013, "แม่และเด็ก", "shop-mother-baby"),
    "baby": (100013, "แม่และเด็ก", "shop-mother-baby"),
    "vehicle": (100014, "ยานยนต์", "shop-automotive"),
}
OTHER = (100015, "สินค้าทั่วไป", "shop-general")


def category_of(wl: WorldListing, group: str | None) -> tuple[int, str, str]:
    return CATEGORIES.get(group or "", OTHER)


def slug(title: str) -> str:
    s = re.sub(r"[\s/\\?#%&+\[\]【】()\"'<>|,:;!*]+", "-", title)
    return re.sub(r"-{2,}", "-", s).strip("-")[:120] or "item"


def image_id(wl: WorldListing, i: int = 0) -> str:
    h = hashlib.sha1(f"{wl.marketplace}:{wl.item_id}:{i}".encode()).hexdigest()
    return f"th-11134207-7r98t-{h[:14]}"


# ---- Shopee ----------------------------------------------------------------------------------
def shopee_url(base: str, wl: WorldListing, d: dict[str, Any]) -> str:
    return f"{base}/{quote(slug(d['title']))}-i.{d['shop_id']}.{d['item_id']}"


def shopee_item_basic(wl: WorldListing, d: dict[str, Any], cat: tuple[int, str, str]) -> dict[str, Any]:
    price = int(round(d["price"] * PRICE_SCALE))
    return {
        "itemid": int(d["item_id"]), "shopid": int(d["shop_id"]), "name": d["title"],
        "image": image_id(wl), "images": [image_id(wl, i) for i in range(2)], "currency": "THB",
        "stock": 120, "status": 1, "ctime": 1700000000, "sold": d["sold"] // 10, "historical_sold": d["sold"],
        "liked_count": 12, "view_count": 0, "catid": cat[0], "brand": d.get("brand") or "", "cmt_count": 3,
        "price": price, "price_min": price, "price_max": price, "price_before_discount": 0, "raw_discount": 0,
        "discount": None, "item_rating": {"rating_star": 4.8, "rating_count": [10, 0, 0, 1, 2, 7]},
        "shop_location": d.get("location") or "", "is_official_shop": False, "shopee_verified": True,
        "tier_variations": [], "label_ids": [],
    }


def _sold_text(n: int) -> str:
    if n >= 10_000:
        return f"ขายแล้ว {n // 1000}k+"
    if n >= 1000:
        return f"ขายแล้ว {n / 1000:.1f}พัน ชิ้น"
    return f"ขายแล้ว {n} ชิ้น"


def shopee_item_card(wl: WorldListing, d: dict[str, Any], cat: tuple[int, str, str], seller_name: str) -> dict[str, Any]:
    price = int(round(d["price"] * PRICE_SCALE))
    return {
        "itemid": int(d["item_id"]), "shopid": int(d["shop_id"]), "catid": cat[0], "ctime": 1700000000,
        "item_status": "normal", "is_sold_out": False, "liked_count": 12, "shopee_verified": True,
        "shop_data": {"shop_name": seller_name, "shop_location": d.get("location") or ""},
        "item_rating": {"rating_star": 4.8, "rating_count": [10, 0, 0, 1, 2, 7]},
        "item_card_display_price": {"item_id": int(d["item_id"]), "price": price, "strikethrough_price": 0,
                                    "discount": 0, "original_price": price, "model_id": 0},
        "item_card_display_sold_count": {"historical_sold_count": 0, "monthly_sold_count": 0,
                                         "historical_sold_count_text": _sold_text(d["sold"]),
                                         "monthly_sold_count_text": ""},
        "item_card_displayed_asset": {"name": d["title"], "image": image_id(wl), "images": [image_id(wl, i) for i in range(2)],
                                      "sold_count": {"text": _sold_text(d["sold"])}, "display_price": {"price": price}},
        "tier_variations": [], "global_cat": {"catid": [cat[0]]}, "label_ids": [],
    }


def shopee_search(items: list[dict[str, Any]], total: int, nomore: bool, shape: str) -> dict[str, Any]:
    if shape == "item_cards":
        return {"error": 0, "error_msg": "", "total_count": total, "nomore": nomore,
                "centralize_item_card": {"item_cards": items}, "item_card_abt_data": {}, "item_version": 1}
    return {"error": None, "error_msg": None, "total_count": total, "nomore": nomore,
            "items": [{"item_basic": it, "itemid": it["itemid"], "shopid": it["shopid"], "adsid": None} for it in items]}


def shopee_get_pc(wl: WorldListing, d: dict[str, Any], cat: tuple[int, str, str], seller_name: str,
                  username: str) -> dict[str, Any]:
    price = int(round(d["price"] * PRICE_SCALE))
    attrs = [{"name": k, "value": v, "id": 100000 + i, "is_timestamp": False, "brand_option": None, "val_id": 0, "url": None}
             for i, (k, v) in enumerate((d.get("attributes") or {}).items())]
    if d.get("brand"):
        attrs.insert(0, {"name": "ยี่ห้อ", "value": d["brand"], "id": 100001, "is_timestamp": False,
                         "brand_option": None, "val_id": 0, "url": None})
    return {
        "bff_meta": None, "error": None, "error_msg": None,
        "data": {
            "item": {
                "item_id": int(d["item_id"]), "shop_id": int(d["shop_id"]), "item_status": "normal", "status": 1,
                "title": d["title"], "image": image_id(wl), "cat_id": cat[0],
                "categories": [{"catid": cat[0], "display_name": cat[1], "no_sub": True, "is_default_subcat": False}],
                "fe_categories": [], "brand": d.get("brand"), "brand_id": 0, "currency": "THB",
                "shop_location": d.get("location") or "", "description": d.get("description") or "",
                "attributes": attrs, "models": [], "tier_variations": [], "price": price, "price_min": price,
                "price_max": price, "price_before_discount": 0, "stock": 120, "ctime": 1700000000,
                "item_rating": {"rating_star": 4.8}, "label_ids": [],
            },
            "product_images": {"images": [image_id(wl, i) for i in range(2)]},
            "product_price": {"price": {"single_value": price, "range_min": -1, "range_max": -1}},
            "product_review": {"rating_star": 4.8, "historical_sold": d["sold"], "global_sold": d["sold"],
                               "liked_count": 12, "cmt_count": 3},
            "shop_detailed": {"shopid": int(d["shop_id"]), "userid": int(d["seller_id"]), "name": seller_name,
                              "place": d.get("location") or "", "shop_location": d.get("location") or "",
                              "account": {"username": username}, "is_official_shop": False, "is_shopee_verified": True},
            "product_attributes": {"attrs": []},
        },
    }


def shopee_jsonld(base: str, wl: WorldListing, d: dict[str, Any], seller_name: str, username: str) -> dict[str, Any]:
    return {
        "@context": "https://schema.org", "@type": "Product", "name": d["title"], "description": d.get("description") or "",
        "url": shopee_url(base, wl, d), "productID": str(d["item_id"]), "image": f"{base}/file/{image_id(wl)}",
        "brand": d.get("brand") or "",
        "offers": {"@type": "Offer", "price": f"{d['price']:.2f}", "priceCurrency": "THB",
                   "availability": "http://schema.org/InStock",
                   "seller": {"@type": "Organization", "name": seller_name, "url": f"{base}/{username}"}},
    }


BLOCK = {"error": 90309999, "action_type": 2, "tracking_id": "b3c0a7f1-sandbox", "is_login": False,
         "error_msg": None, "data": None}


# ---- Lazada ----------------------------------------------------------------------------------
def lazada_url(wl: WorldListing, d: dict[str, Any]) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", d["title"].lower()).strip("-")[:80] or "product"
    return f"/products/{s}-i{d['item_id']}-s{int(d['item_id']) + 7}.html"


LAZADA_IMG = "https://th-live-01.slatic.net/p"  # the real CDN; the sandbox passes its own /img


def lazada_list_item(wl: WorldListing, d: dict[str, Any], cat: tuple[int, str, str], seller_name: str,
                     img_base: str = LAZADA_IMG) -> dict[str, Any]:
    p = f"{d['price']:.0f}" if float(d["price"]).is_integer() else str(d["price"])
    item = {
        "name": d["title"], "nid": d["item_id"], "itemId": d["item_id"], "icons": [],
        "image": f"{img_base}/{image_id(wl)}.jpg", "isSmartImage": False,
        "originalPriceShow": "", "priceShow": f"฿{d['price']:,.2f}", "ratingScore": "4.8", "review": "3",
        "location": d.get("location") or "", "thumbs": [], "sellerName": seller_name, "sellerId": d["seller_id"],
        "brandName": d.get("brand") or "No Brand", "brandId": "0", "cheapest_sku": f"{d['item_id']}_TH-1",
        "skuId": str(int(d["item_id"]) + 7), "sku": f"{d['item_id']}_TH", "categories": [cat[0]],
        "showFeedBack": False, "price": p, "restrictedAge": 0, "inStock": True,
        "clickTrace": f"query:;nid:{d['item_id']};src:LazadaMainSrp;shop_id:{d['shop_id']};",
        "itemUrl": "//www.lazada.co.th" + lazada_url(wl, d), "isAD": 0, "isSponsored": False,
    }
    if d["sold"]:
        item["itemSoldCntShow"] = f"{d['sold']:,} sold"
    return item


def lazada_catalog(items: list[dict[str, Any]], total: int, page: int, page_size: int, q: str) -> dict[str, Any]:
    return {
        "templates": {}, "mods": {"listItems": items, "filter": {"filterItems": []}, "breadcrumb": [],
                                  "sortBar": {}, "resultTips": {}},
        "mainInfo": {"errorMsg": "", "bizCode": 0, "totalResults": str(total), "pageSize": str(page_size),
                     "page": str(page), "noMorePages": page * page_size >= total, "currency": "฿",
                     "venture": "TH", "pageType": "SearchListCategory", "q": q},
        "seoInfo": {},
    }


def lazada_fields(wl: WorldListing, d: dict[str, Any], cat: tuple[int, str, str], seller_name: str,
                  img_base: str = LAZADA_IMG) -> dict[str, Any]:
    sku = str(int(d["item_id"]) + 7)
    desc = "".join(f"<p>{html.escape(line)}</p>" for line in (d.get("description") or "").splitlines())
    features = {"แบรนด์": d.get("brand") or "No Brand", "SKU": f"{d['item_id']}_TH-{sku}"}
    features.update(d.get("attributes") or {})
    return {
        "product": {"title": d["title"], "desc": desc, "highlights": "", "brand": {"name": d.get("brand") or "No Brand", "url": ""},
                    "rating": {"average": 4.8}},
        "primaryKey": {"itemId": d["item_id"], "skuId": sku, "sellerId": d["seller_id"], "defaultSkuId": sku},
        "skuInfos": {sku: {"price": {"salePrice": {"text": f"฿{d['price']:,.2f}", "value": d["price"]},
                                     "originalPrice": {"text": f"฿{d['price']:,.2f}", "value": d["price"]}},
                           "stock": 120, "categoryId": str(cat[0]), "sellerId": d["seller_id"]}},
        "specifications": {sku: {"features": features}},
        "seller": {"name": seller_name, "sellerId": d["seller_id"], "shopId": d["shop_id"],
                   "url": f"//www.lazada.co.th/shop/{d['shop_id']}/"},
        "tracking": {"pdt_name": d["title"], "pdt_sku": int(d["item_id"]), "brand_name": d.get("brand") or "No Brand",
                     "seller_name": seller_name, "pdt_category": [cat[1]]},
        "Breadcrumb": [{"title": cat[1], "url": f"https://www.lazada.co.th/{cat[2]}/"}],
        "review": {"ratings": {"average": 4.8, "rateCount": 3}},
        "skuGalleries": {sku: [{"src": f"{img_base}/{image_id(wl, i)}.jpg"} for i in range(2)]},
    }


PUNISH_HTML = """<!DOCTYPE html><html><head><title>Security Verification</title></head><body>
<div id="nocaptcha" class="nc-container"></div>
<script>var url = '/_____tmd_____/punish?x5secdata=sandbox&x5step=2'; window._config_ = {"action":"captcha","HOST":"www.lazada.co.th","PAGE_ID":"RGV587_ERROR"};</script>
<p>Sorry, we have detected unusual traffic from your network.</p></body></html>"""


# ---- shop site -------------------------------------------------------------------------------
def shop_page(base: str, wl: WorldListing, d: dict[str, Any], seller_name: str, microdata: bool) -> str:
    e = html.escape
    url = f"{base}/product/{d['item_id']}.html"
    img = f"{base}/img/{image_id(wl)}.png"
    og = (f'<meta property="og:type" content="product"><meta property="og:title" content="{e(d["title"])}">'
          f'<meta property="og:url" content="{e(url)}"><meta property="og:image" content="{e(img)}">'
          f'<meta property="product:price:amount" content="{d["price"]:.2f}"><meta property="product:price:currency" content="THB">')
    if microdata:
        body = (f'<div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">{e(d["title"])}</h1>'
                f'<meta itemprop="sku" content="{e(d["item_id"])}"><img itemprop="image" src="{e(img)}">'
                + (f'<div itemprop="brand" itemscope itemtype="https://schema.org/Brand"><span itemprop="name">{e(d["brand"])}</span></div>' if d.get("brand") else "")
                + f'<div itemprop="description">{e(d.get("description") or "")}</div>'
                f'<div itemprop="offers" itemscope itemtype="https://schema.org/Offer"><span itemprop="price" content="{d["price"]:.2f}">฿{d["price"]:,.2f}</span>'
                f'<meta itemprop="priceCurrency" content="THB"><div itemprop="seller" itemscope itemtype="https://schema.org/Organization"><span itemprop="name">{e(seller_name)}</span></div></div></div>')
        ld = ""
    else:
        data = {"@context": "https://schema.org", "@type": "Product", "name": d["title"], "sku": d["item_id"],
                "description": d.get("description") or "", "image": [img], "url": url,
                "brand": {"@type": "Brand", "name": d["brand"]} if d.get("brand") else None,
                "offers": {"@type": "Offer", "price": f"{d['price']:.2f}", "priceCurrency": "THB",
                           "availability": "https://schema.org/InStock", "seller": {"@type": "Organization", "name": seller_name}}}
        data = {k: v for k, v in data.items() if v is not None}
        ld = '<script type="application/ld+json">' + json.dumps(data, ensure_ascii=False).replace("</", "<\\/") + "</script>"
        body = f'<h1>{e(d["title"])}</h1><p class="price">฿{d["price"]:,.2f}</p><div class="desc">{e(d.get("description") or "")}</div>'
    return (f'<!DOCTYPE html><html lang="th"><head><meta charset="utf-8"><title>{e(d["title"])} | {e(seller_name)}</title>'
            f'{og}{ld}</head><body><nav><a href="{base}/">{e(seller_name)}</a></nav>{body}</body></html>')
