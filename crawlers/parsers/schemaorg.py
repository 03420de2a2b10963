"""schema.org Product from any shop page: JSON-LD, microdata and OpenGraph, read with extruct."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import urlparse

from crawlers.parsers.common import ParseError, drop_empty, parse_money

_LD = re.compile(r"<script[^>]+type=[\"']application/ld\+json[\"'][^>]*>(.*?)</script>", re.S | re.I)


def jsonld_blocks(html: str) -> list[dict[str, Any]]:
    """The JSON-LD objects of a page (top-level lists and @graph flattened); blocks that are not
    valid JSON are skipped."""
    out: list[dict[str, Any]] = []
    for block in _LD.findall(html or ""):
        try:
            data = json.loads(block)
        except ValueError:
            continue
        for d in data if isinstance(data, list) else [data]:
            if isinstance(d, dict):
                out.append(d)
                out.extend(x for x in d.get("@graph") or [] if isinstance(x, dict))
    return out


def _first(v: Any) -> Any:
    if isinstance(v, list):
        return v[0] if v else None
    return v


def _name(v: Any) -> str | None:
    v = _first(v)
    if isinstance(v, dict):
        return v.get("name") or (v.get("properties") or {}).get("name")
    return v


def _is_product(t: Any) -> bool:
    types = t if isinstance(t, list) else [t]
    return any(str(x).rsplit("/", 1)[-1] in ("Product", "ProductGroup", "IndividualProduct") for x in types if x)


def _walk_jsonld(node: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(node, list):
        for x in node:
            out += _walk_jsonld(x)
    elif isinstance(node, dict):
        if _is_product(node.get("@type")):
            out.append(node)
        for k in ("@graph", "mainEntity", "itemListElement", "item"):
            if k in node:
                out += _walk_jsonld(node[k])
    return out


def products_in_page(html: str | bytes, url: str, marketplace: str = "shop") -> list[dict[str, Any]]:
    """Every schema.org Product in the page as a listing; [] when there is none."""
    import extruct

    try:
        data = extruct.extract(html, base_url=url, syntaxes=["json-ld", "microdata", "opengraph"], uniform=True, errors="log")
    except Exception as e:
        raise ParseError(f"{url}: cannot read structured data ({type(e).__name__}: {e})") from None
    out: list[dict[str, Any]] = []
    for p in _walk_jsonld(data.get("json-ld") or []) + [m for m in (data.get("microdata") or []) if _is_product(m.get("@type"))]:
        d = _product(p, url, marketplace)
        if d:
            out.append(d)
    if not out:
        for og in data.get("opengraph") or []:
            if og.get("og:type") == "product" and og.get("og:title"):
                out.append(drop_empty({"marketplace": marketplace, "item_id": _item_id(url, og.get("og:url")), "url": og.get("og:url") or url,
                                       "title": og["og:title"], "price": parse_money(og.get("product:price:amount")),
                                       "currency": og.get("product:price:currency"), "images": [og["og:image"]] if og.get("og:image") else []}))
    return out


def _item_id(url: str, *alts: Any) -> str:
    """A stable id for a shop-site product: its path (which is what identifies it on that site)."""
    u = next((a for a in alts if a), None) or url
    p = urlparse(str(u))
    path = p.path.rstrip("/") or "/"
    ident = f"{p.netloc}{path}"
    return ident if len(ident) <= 120 else hashlib.sha1(ident.encode()).hexdigest()


def _product(p: dict[str, Any], url: str, marketplace: str) -> dict[str, Any] | None:
    name = _first(p.get("name"))
    if not name:
        return None
    offers = _first(p.get("offers")) or {}
    if isinstance(offers, dict) and _first(offers.get("@type")) == "AggregateOffer":
        price = offers.get("lowPrice") or offers.get("price")
    else:
        price = offers.get("price") if isinstance(offers, dict) else None
    seller = _name(offers.get("seller")) if isinstance(offers, dict) else None
    img = p.get("image")
    images = [(_name(i) if isinstance(i, dict) else i) for i in (img if isinstance(img, list) else [img] if img else [])]
    props = {}
    for a in p.get("additionalProperty") or []:
        if isinstance(a, dict) and a.get("name"):
            props[str(a["name"])] = str(a.get("value") or "")
    return drop_empty({
        # the shop's own SKU identifies the product best; else its page path
        "marketplace": marketplace, "item_id": str(_first(p.get("sku")) or _first(p.get("productID")) or "") or _item_id(url, p.get("url")),
        "url": _first(p.get("url")) or url, "title": str(name).strip(), "description": _first(p.get("description")),
        "brand": _name(p.get("brand")), "seller": seller, "price": parse_money(price),
        "currency": offers.get("priceCurrency") if isinstance(offers, dict) else None,
        "attributes": {**({"sku": str(_first(p["sku"]))} if p.get("sku") else {}), **props},
        "images": [i for i in images if isinstance(i, str)],
    })
