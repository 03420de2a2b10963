"""The sandbox renders listings in the real shapes, and our parsers read them back to the same listing."""

import pytest

from crawlers.parsers import lazada, schemaorg, shopee
from sandbox import shapes


@pytest.fixture(scope="module")
def sample(world):
    out = {}
    for w in world.listings:
        out.setdefault(w.marketplace, w)
    return out


def test_shopee_round_trip_both_shapes(sample):
    w = sample["shopee"]
    d = w.listing
    cat = shapes.category_of(w, None)
    for shape, item in (("items", shapes.shopee_item_basic(w, d, cat)), ("item_cards", shapes.shopee_item_card(w, d, cat, "S"))):
        back = shopee.parse_search_items(shapes.shopee_search([item], 1, True, shape), "https://shopee.co.th")[0]
        assert (back["item_id"], back["title"], back["price"]) == (d["item_id"], d["title"], d["price"])
        assert shopee.ids_from_url(back["url"]) == (d["shop_id"], d["item_id"])
    pc = shopee.parse_get_pc(shapes.shopee_get_pc(w, d, cat, "S", "s1"))
    assert pc["title"] == d["title"] and pc["description"] == d["description"] and pc["price"] == d["price"]
    assert pc["sold"] == d["sold"] and pc["seller"] == "S"


def test_lazada_round_trip(sample):
    w = sample["lazada"]
    d = w.listing
    cat = shapes.category_of(w, None)
    items, paging = lazada.parse_catalog(shapes.lazada_catalog([shapes.lazada_list_item(w, d, cat, "S")], 81, 1, 40, ""))
    assert items[0]["title"] == d["title"] and items[0]["price"] == d["price"] and paging["more"]
    pdp = lazada.parse_pdp_fields(shapes.lazada_fields(w, d, cat, "S"))
    assert pdp["title"] == d["title"] and pdp["description"] == d["description"]
    assert pdp.get("brand") == d["brand"]


@pytest.mark.parametrize("microdata", [False, True])
def test_shop_round_trip(sample, microdata):
    w = sample["shop"]
    d = w.listing
    page = shapes.shop_page("http://x/shop", w, d, "S", microdata)
    got = schemaorg.products_in_page(page, "http://x/shop/product/1.html")
    assert len(got) == 1
    assert (got[0]["item_id"], got[0]["title"], got[0]["price"], got[0].get("brand")) == (d["item_id"], d["title"], d["price"], d["brand"])


def test_hostile_title_is_escaped_in_shop_page(sample):
    w = sample["shop"]
    d = {**w.listing, "title": '"><script>alert(1)</script>'}
    page = shapes.shop_page("http://x/shop", w, d, "S", True)
    assert "<script>alert(1)" not in page
