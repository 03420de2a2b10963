"""`tiswatch parse`: turn a saved response (JSON, HTML, HAR, a DOM-scrape CSV) into listings,
detecting what it is from its content (and the URL when given)."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from typing import Any

from crawlers.parsers import lazada, schemaorg, shopee
from crawlers.parsers.common import ParseError


def parse_json(data: Any, url: str = "", source: str = "") -> tuple[str, list[dict[str, Any]]]:
    """(kind, listings) for a JSON document."""
    where = url or source
    if isinstance(data, dict):
        if data.get("error") == shopee.BLOCK_ERROR:
            shopee.check_block(data, where)
        if "centralize_item_card" in data or ("items" in data and isinstance(data.get("items"), list)
                                               and ("nomore" in data or "total_count" in data)):
            base = _base(url, "https://shopee.co.th")
            return "shopee:search_items", shopee.parse_search_items(data, base, where)
        if isinstance(data.get("data"), dict) and "item" in data["data"]:
            r = shopee.parse_get_pc(data, _base(url, "https://shopee.co.th"), where)
            return "shopee:get_pc", [r] if r else []
        if "mods" in data and "mainInfo" in data:
            return "lazada:catalog", lazada.parse_catalog(data, where)[0]
        if "product" in data and ("primaryKey" in data or "skuInfos" in data):
            return "lazada:pdp_fields", [lazada.parse_pdp_fields(data, url)]
        if isinstance(data.get("data"), dict) and isinstance(data["data"].get("root"), dict):
            return "lazada:pdp_fields", [lazada.parse_pdp_fields(data["data"]["root"].get("fields") or {}, url)]
        if data.get("@type") or data.get("@graph"):
            return "schema.org", [p for p in (shopee.parse_jsonld(x, url) if "shopee" in url else None for x in [data]) if p] or \
                schemaorg.products_in_page(f'<script type="application/ld+json">{json.dumps(data)}</script>', url or "file:///")
        if data.get("log", {}).get("entries") is not None:
            return "har", parse_har(data, source)
    if isinstance(data, list) and data and isinstance(data[0], dict) and ("product_name" in data[0] or "shop" in data[0]):
        return "shopee:dom_scrape", [_dom_product(x) for x in data if _dom_product(x)]  # type: ignore[misc]
    if isinstance(data, dict) and data and all(isinstance(v, dict) and set(v) & {"lazada", "shopee"} for v in data.values()):
        return "category_seeds", []  # crawl start points, no listings in them
    if isinstance(data, dict) and all(isinstance(v, dict) and "address" in v for v in data.values()) and data:
        return "shopee:dom_seller", []  # shop profiles, no listings in them
    raise ParseError(f"{where or 'input'}: JSON of a kind tiswatch does not know (keys: {', '.join(list(data)[:8]) if isinstance(data, dict) else type(data).__name__})")


def _dom_product(x: dict[str, Any]) -> dict[str, Any] | None:
    from crawlers.parsers.common import drop_empty, parse_count, parse_money

    name = x.get("product_name")
    if not name:
        return None
    import hashlib

    ident = hashlib.sha1(f"{x.get('shop')}|{name}".encode()).hexdigest()[:16]
    return drop_empty({"marketplace": "shopee", "item_id": ident, "title": name, "seller": x.get("shop"),
                       "description": x.get("desc"), "price": parse_money(x.get("price")), "currency": "THB",
                       "sold": parse_count(x.get("sold"))})


def _base(url: str, default: str) -> str:
    from urllib.parse import urlparse

    if not url:
        return default
    p = urlparse(url)
    root = f"{p.scheme}://{p.netloc}"
    return root + "/shopee" if p.path.startswith("/shopee/") else root


def parse_html(text: str, url: str = "", source: str = "") -> tuple[str, list[dict[str, Any]]]:
    where = url or source
    if lazada.is_punish(text):
        lazada.check_block(text, where)
    if "__moduleData__" in text:
        return "lazada:pdp", [lazada.parse_pdp_fields(lazada.extract_module_data(text, where), url)]
    if "window.pageData=" in text or "window.pageData =" in text:
        start = text.index("pageData") + len("pageData")
        start = text.index("=", start) + 1
        obj, _ = json.JSONDecoder().raw_decode(text[start:].lstrip())
        return "lazada:catalog_html", lazada.parse_catalog(obj, where)[0]
    items = schemaorg.products_in_page(text, url or "file:///", "shopee" if shopee.ids_from_url(url or "") else "shop")
    if items and shopee.ids_from_url(url or ""):
        ids = shopee.ids_from_url(url or "")
        for it in items:
            it["item_id"], it["shop_id"] = ids[1], ids[0]  # type: ignore[index]
    if 'data-component-type="s-search-result"' in text:
        return "amazon:search", _amazon(text, url)
    return "schema.org", items


def _amazon(text: str, url: str) -> list[dict[str, Any]]:
    from lxml import html as lh

    from crawlers.parsers.common import drop_empty, parse_money

    doc = lh.fromstring(text)
    out = []
    for card in doc.xpath('//div[@data-component-type="s-search-result"][@data-asin]'):
        title = " ".join(" ".join(card.xpath(".//h2//span//text()")).split())
        href = (card.xpath(".//h2//a/@href") or card.xpath(".//a[contains(@href,'/dp/')]/@href") or [""])[0]
        price = (card.xpath('.//span[contains(@class,"a-price")]/span[contains(@class,"a-offscreen")]/text()') or [""])[0]
        if title:
            out.append(drop_empty({"marketplace": "amazon", "item_id": card.get("data-asin"), "title": title,
                                   "url": href, "price": parse_money(price.replace(".", "").replace(",", ".")) if "R$" in price else parse_money(price),
                                   "currency": "BRL" if "R$" in price else None}))
    return out


def parse_har(har: dict[str, Any], source: str = "") -> list[dict[str, Any]]:
    """Every recognised response inside a HAR capture (the browser's own network log)."""
    out: list[dict[str, Any]] = []
    for e in har.get("log", {}).get("entries", []):
        url = e.get("request", {}).get("url", "")
        content = e.get("response", {}).get("content", {}) or {}
        body = content.get("text") or ""
        if content.get("encoding") == "base64":
            body = base64.b64decode(body).decode("utf-8", "replace")
        if not body:
            continue
        mime = content.get("mimeType", "")
        try:
            if "json" in mime or body.lstrip()[:1] in "{[":
                _, items = parse_json(json.loads(body), url, source)
            elif "html" in mime:
                _, items = parse_html(body, url, source)
            else:
                continue
        except (ParseError, json.JSONDecodeError, ValueError):
            continue
        out.extend(items)
    return out


def parse_csv(text: str, source: str = "") -> tuple[str, list[dict[str, Any]]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and "link" in rows[0] and "name" in rows[0]:
        return "shopee:search_dom_csv", [r for r in (shopee.parse_dom_row(x) for x in rows) if r]
    if rows and "Link" in rows[0] and "Brand" in rows[0]:
        return "lazada:search_csv", [r for r in (lazada.parse_search_csv_row(x) for x in rows) if r]
    # one URL per line (a list of product links)
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    items = []
    for line in lines:
        ids = shopee.ids_from_url(line)
        if ids:
            from urllib.parse import unquote

            items.append({"marketplace": "shopee", "item_id": ids[1], "shop_id": ids[0],
                          "url": ("https://shopee.co.th" + line if line.startswith("/") else line).split("?")[0],
                          "title": unquote(line.split("?")[0].rsplit("/", 1)[-1].split("-i.")[0]).replace("-", " ")})
    if items:
        return "shopee:url_list", items
    raise ParseError(f"{source or 'input'}: a CSV of a kind tiswatch does not know (columns: {', '.join(list(rows[0])[:8]) if rows else 'none'})")


def parse_file(path: str | Path, url: str = "") -> tuple[str, list[dict[str, Any]]]:
    """(kind, listings) for a saved response; raises ParseError naming the file when it is unknown."""
    p = Path(path)
    raw = p.read_bytes()
    text = None
    for enc in ("utf-8-sig", "cp874"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise ParseError(f"{p}: not text (UTF-8 or cp874)")
    s = text.lstrip()
    if not s:
        raise ParseError(f"{p}: empty file")
    if s[0] in "{[":
        try:
            data = json.loads(s)
        except json.JSONDecodeError as e:
            raise ParseError(f"{p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        return parse_json(data, url, str(p))
    if s[0] == "<":
        return parse_html(text, url, str(p))
    return parse_csv(text, str(p))
