"""`tiswatch parse`: saved responses of every kind to listings, and clear errors for bad files."""

import base64
import json

import pytest
from typer.testing import CliRunner

from cli import app
from crawlers.parsers.common import Blocked, ParseError
from crawlers.parsers.detect import parse_file
from tests.conftest import MARKETPLACES

GET_PC = MARKETPLACES / "shopee" / "shopee_th_pdp_get_pc_camping_chair.json"
CARDS = MARKETPLACES / "shopee" / "shopee_vn_shop_search_items_item_cards_2026.json"
CATALOG = MARKETPLACES / "lazada" / "lazada_th_catalog_ajax_shop-tablet_p1.json"


def har(entries):
    return {"log": {"version": "1.2", "entries": [
        {"request": {"method": "GET", "url": url},
         "response": {"status": 200, "content": {"mimeType": mime, "text": text, **({"encoding": "base64"} if b64 else {})}}}
        for url, mime, text, b64 in entries]}}


def test_har_capture_of_a_browser_session(tmp_path):
    body = GET_PC.read_text()
    h = har([
        ("https://shopee.co.th/api/v4/search/search_items?keyword=x", "application/json", CARDS.read_text(), False),
        ("https://shopee.co.th/api/v4/pdp/get_pc?item_id=13189532526&shop_id=147517486", "application/json",
         base64.b64encode(body.encode()).decode(), True),
        ("https://shopee.co.th/static/app.js", "application/javascript", "var x = 1;", False),
        ("https://shopee.co.th/api/v4/broken", "application/json", '{"cut off', False),
    ])
    p = tmp_path / "session.har"
    p.write_text(json.dumps(h))
    kind, items = parse_file(p)
    assert kind == "har" and len(items) == 31
    assert items[-1]["item_id"] == "13189532526" and items[-1]["price"] == 120.0


@pytest.mark.parametrize("content, message", [
    ('{"mods": {"listItems": [', r"bad\.json: invalid JSON at line 1 column \d+"),
    ("", r"bad\.json: empty file"),
    ('{"hello": "world"}', r"bad\.json: JSON of a kind tiswatch does not know \(keys: hello\)"),
])
def test_bad_files_name_the_file_and_why(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ParseError, match=message):
        parse_file(p)


def test_truncated_recording_names_line_and_column(tmp_path):
    p = tmp_path / "cut.json"
    p.write_bytes(CATALOG.read_bytes()[:50_000])
    with pytest.raises(ParseError, match=r"cut\.json: invalid JSON at line \d+ column \d+"):
        parse_file(p)


def test_non_utf8_page_and_url_hint(tmp_path):
    html = ('<html><head><meta charset="windows-874"><script type="application/ld+json">{"@type":"Product",'
            '"name":"ปลั๊กพ่วง 4 ช่อง","offers":{"price":"199.00","priceCurrency":"THB"}}</script></head></html>')
    p = tmp_path / "page.html"
    p.write_bytes(html.encode("cp874"))
    kind, items = parse_file(p, url="https://shopee.co.th/x-i.111.222")
    assert kind == "schema.org" and items[0]["title"] == "ปลั๊กพ่วง 4 ช่อง"
    assert (items[0]["marketplace"], items[0]["item_id"], items[0]["shop_id"]) == ("shopee", "222", "111")


def test_block_page_is_not_data(tmp_path):
    p = tmp_path / "blocked.json"
    p.write_text('{"error":90309999,"action_type":2,"tracking_id":"t","is_login":false,"data":null}')
    with pytest.raises(Blocked, match="90309999"):
        parse_file(p)


def test_cli_writes_json_lines_and_reports(tmp_path):
    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(app, ["parse", str(CATALOG), "--out", str(out)])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert len(lines) == 40 and lines[0]["marketplace"] == "lazada"
    assert "lazada:catalog, 40 listings" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    r = CliRunner().invoke(app, ["parse", str(bad)])
    # rich wraps a long temporary path anywhere, inside a word too: compare without whitespace
    assert r.exit_code == 1 and "bad.json:invalidJSON" in "".join(r.output.split())
