"""Every real recorded response in ../shared/data/marketplaces parses as it is."""

import json

import pytest

from crawlers.parsers import lazada, shopee
from crawlers.parsers.common import Blocked, parse_count, parse_money
from crawlers.parsers.detect import parse_file
from listings.model import Listing
from tests.conftest import MARKETPLACES

# every file under ../shared/data/marketplaces (a new recording is picked up by itself)
FILES = sorted(p for p in MARKETPLACES.rglob("*") if p.is_file() and p.suffix != ".md")
EXPECTED_KIND = {
    "amazon_br_search_result_card_galaxy_a34.html": ("amazon:search", 1),
    "lazada_shopee_th_category_seed_urls.json": ("category_seeds", 0),
    "lazada_th_catalog_ajax_shop-tablet_p1.json": ("lazada:catalog", 40),
    "lazada_th_pdp_fields_kacee_curtain.json": ("lazada:pdp_fields", 1),
    "lazada_th_search_phones_selenium.csv": ("lazada:search_csv", 1199),
    "shopee_th_pdp_dom_scrape_product.json": ("shopee:dom_scrape", 1),
    "shopee_th_pdp_dom_scrape_seller.json": ("shopee:dom_seller", 0),
    "shopee_th_pdp_get_pc_camping_chair.json": ("shopee:get_pc", 1),
    "shopee_th_product_url_slugs.csv": ("shopee:url_list", 60),
    "shopee_th_search_dom_scrape_lukchin.csv": ("shopee:search_dom_csv", 4280),
    "shopee_vn_shop_search_items_item_cards_2026.json": ("shopee:search_items", 30),
}


def test_the_recordings_are_there():
    assert len(FILES) >= len(EXPECTED_KIND)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_recorded_file_parses(path):
    kind, items = parse_file(path)
    for it in items:
        Listing.model_validate(it)  # each one a valid listing (DOMAIN.md §4.2)
        assert it["marketplace"] and it["item_id"] and it["title"].strip()
    # a recording added later must parse too; pin its kind and count here once it does
    assert (kind, len(items)) == EXPECTED_KIND.get(path.name, (kind, len(items)))


def test_get_pc_fields():
    data = json.loads((MARKETPLACES / "shopee/shopee_th_pdp_get_pc_camping_chair.json").read_text())
    d = shopee.parse_get_pc(data)
    assert d["item_id"] == "13189532526" and d["shop_id"] == "147517486"
    assert d["price"] == 120.0 and d["sold"] == 37554 and d["location"] == "จังหวัดกรุงเทพมหานคร"
    assert d["category"] == ["เครื่องใช้ในบ้าน", "เฟอร์นิเจอร์", "เก้าอี้"] and d["seller"] == "S P SHOP"
    assert d["attributes"]["ประเภทเก้าอี้"] == "เก้าอี้สนาม"


def test_item_cards_shape():
    data = json.loads((MARKETPLACES / "shopee/shopee_vn_shop_search_items_item_cards_2026.json").read_text())
    first = shopee.parse_search_items(data)[0]
    assert first["title"].startswith("SMOKE V1 BAGGY SHORT") and first["price"] == 169000.0
    assert first["sold"] == 30000 and first["seller"] == "whose.studio"


def test_lazada_catalog_paging_and_fields():
    data = json.loads((MARKETPLACES / "lazada/lazada_th_catalog_ajax_shop-tablet_p1.json").read_text())
    items, paging = lazada.parse_catalog(data)
    assert paging == {"page": 1, "page_size": 40, "total": 2241, "more": True}
    first = items[0]
    assert first["price"] == 2990.0 and first["location"] == "Phitsanulok" and first["url"].startswith("https://www.lazada.co.th/products/")


def test_lazada_pdp_fields():
    fields = json.loads((MARKETPLACES / "lazada/lazada_th_pdp_fields_kacee_curtain.json").read_text())
    d = lazada.parse_pdp_fields(fields)
    assert d["item_id"] == "881388008" and d["brand"] == "KACEE" and d["seller"] == "kaceebest"
    assert d["attributes"]["ประเภทสินค้า"] == "ผ้าม่าน" and "ผ้าม่าน" in d["category"]


def test_block_detection():
    with pytest.raises(Blocked):
        shopee.parse_search_items({"error": 90309999, "action_type": 2, "tracking_id": "x", "is_login": False})
    with pytest.raises(Blocked):
        lazada.extract_module_data("<html><script>var url='/_____tmd_____/punish?x5secdata=1'</script></html>", "u")


@pytest.mark.parametrize("text, n", [("ขายแล้ว 1.4พัน ชิ้น", 1400), ("10k+", 10000), ("1,550 sold", 1550), ("5.2พัน", 5200),
                                     ("2 หมื่น", 20000), (37554, 37554), ("Đã bán 30k+", 30000), ("", None)])
def test_counts(text, n):
    assert parse_count(text) == n


@pytest.mark.parametrize("text, v", [("฿1,234.50", 1234.5), ("฿39 - ฿69", 39.0), ("2990", 2990.0), (None, None)])
def test_money(text, v):
    assert parse_money(text) == v
