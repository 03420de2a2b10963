"""Seller linking rules (review/linking.py): contacts read from listing text, shop names compared, the
operator group; the dashboard's per-standard series and its export rows; spreadsheet safety of the
new exports. Pure: tables of cases."""

import pytest

from review import charts
from review.exports import AUDIT_COLUMNS, audit_row, dashboard_rows, safe_cell, user_row
from review.linking import (
    Shop,
    contacts_in,
    emails_in,
    line_ids_in,
    link_reasons,
    listing_text,
    operator_group,
    phones_in,
    search_forms,
    shop_name_key,
)
from review.service import top_series


@pytest.mark.parametrize("text, phones", [
    ("โทร 081-234-5678", {"0812345678"}),
    ("tel:0812345678", {"0812345678"}),
    ("+66 81 234 5678", {"0812345678"}),
    ("+66(0)812345678", {"0812345678"}),
    ("66-81-234-5678", {"0812345678"}),
    ("๐๘๑๒๓๔๕๖๗๘", {"0812345678"}),                            # Thai digits
    ("０８１２３４５６７８", {"0812345678"}),                      # full-width digits
    ("สั่งเลย0812345678ด่วน", {"0812345678"}),                   # glued to Thai words
    ("02-123-4567 หรือ 053 123 456", {"021234567", "053123456"}),  # fixed lines: Bangkok, Chiang Mai
    ("081.234.5678 / 0912345678", {"0812345678", "0912345678"}),
    ("มอก. 2432-2555", set()),                                  # a standard number
    ("ท5137-2/10 ใบอนุญาต", set()),                              # a licence number
    ("EAN 8851234567890", set()),                              # a barcode: a longer number
    ("รุ่น PB0812345678", set()),                               # inside a model code
    ("ราคา 0.81 บาท ขนาด 2000 mAh", set()),
    ("เพิ่มเบอร์โทรได้", set()),                                  # the word phone, no number
    ("01-234-5678", set()),                                    # no such prefix
    (None, set()),
])
def test_phones_are_read_the_ways_thais_write_them(text, phones):
    assert phones_in(text) == phones


@pytest.mark.parametrize("text, ids", [
    ("LINE: @somchai.shop", {"@somchai.shop"}),
    ("สอบถามทางไลน์ @abc", {"@abc"}),
    ("ไลน์ไอดี somchai99", {"somchai99"}),
    ("ID line: abc_shop", {"abc_shop"}),
    ("Line ID abc123", {"abc123"}),
    ("ติดต่อ LINE=@Hello.World.", {"@hello.world"}),
    ("แอดไลน์ https://line.me/ti/p/~somchai99", {"somchai99"}),
    ("line.me/R/ti/p/%40shopxyz", {"@shopxyz"}),
    ("ขายออนไลน์ ราคาถูก", set()),                               # online
    ("ลูกขัดแฮร์ไลน์ 4 นิ้ว", set()),                               # hairline
    ("line cord 2 m / สาย line 2 เมตร", set()),                  # a line that is no LINE id
    ("Online shop: cheap", set()),
    ("LINE: @ab", set()),                                       # too short to be an id
])
def test_line_ids_only_where_named_as_line(text, ids):
    assert line_ids_in(text) == ids


def test_emails_and_all_contacts():
    assert emails_in("mail: Som.Chai@Gmail.com, not@an, x@y.z1") == {"som.chai@gmail.com"}
    text = listing_text({"title": "ปลั๊กพ่วง", "description": "โทร 081-234-5678", "attributes": {"ติดต่อ": "LINE: @volt"}})
    assert contacts_in(text) == {"phone:0812345678", "line:@volt"}
    assert contacts_in(None) == set() and listing_text({"attributes": None}) == ""


@pytest.mark.parametrize("a, b, same", [
    ("ร้านสมชายไฟฟ้า", "สมชายไฟฟ้า Official Store", True),
    ("สมชาย-ไฟฟ้า.shop", "ร้าน สมชาย ไฟฟ้า", True),
    ("สมายช็อป", "ร้านสมาย", True),
    ("SIAM Thailand", "siam_th", True),
    ("Ｓｉａｍ Mall", "SIAM store", True),                       # full-width letters
    ("สมชายไฟฟ้า", "สมศรีไฟฟ้า", False),
    ("Volt Power", "Volt Power 2", False),
])
def test_shop_names_compared_without_generic_words(a, b, same):
    ka, kb = shop_name_key(a), shop_name_key(b)
    assert ka is not None and kb is not None
    assert (ka == kb) is same


@pytest.mark.parametrize("name", ["BKK Shop", "ร้าน", "Official Store", "", None, "A1 mall"])
def test_names_that_say_too_little_link_nothing(name):
    assert shop_name_key(name) is None


def test_search_forms_of_a_contact():
    assert search_forms("phone:0812345678") == ["0812345678", "081 234 5678", "81 234 5678"]
    assert search_forms("line:@volt") == ["volt"] and search_forms("email:a@b.co") == ["a@b.co"]


def S(mp, sid, names=(), contacts=(), photos=()):
    return Shop(mp, sid, tuple(names), frozenset(contacts), frozenset(photos))


PH = "f0f0f0f0f0f0f0f0"
PH_NEAR = "f0f0f0f0f0f0f0f3"   # 2 bits away: the same photo re-encoded
PH_FAR = "0f0f0f0f0f0f0f0f"


@pytest.mark.parametrize("a, b, kinds", [
    (S("shopee", "1", contacts={"phone:0812345678"}), S("lazada", "2", contacts={"phone:0812345678"}), [("phone", "strong")]),
    (S("shopee", "1", ["ร้านสมชายไฟฟ้า"]), S("lazada", "2", ["สมชายไฟฟ้า Mall"]), [("name", "medium")]),
    (S("shopee", "1", photos={PH}), S("lazada", "2", photos={PH_NEAR}), [("photo", "weak")]),
    (S("shopee", "1", photos={PH}), S("lazada", "2", photos={PH_FAR}), []),
    (S("shopee", "1", ["BKK Shop"]), S("lazada", "2", ["BKK Mall"]), []),                 # too short a name
    (S("shopee", "1", ["x"], {"line:@a1b", "email:a@b.co"}), S("lazada", "2", ["y"], {"line:@a1b", "email:a@b.co"}),
     [("email", "strong"), ("line", "strong")]),
])
def test_link_reasons(a, b, kinds):
    assert [(r.kind, r.strength) for r in link_reasons(a, b)] == kinds
    assert all(r.via == b.key for r in link_reasons(a, b))


def test_operator_group_follows_strong_and_medium_links_not_photos():
    anchor = S("shopee", "a", ["ร้านสมชายไฟฟ้า"], {"phone:0812345678"}, {PH})
    b = S("lazada", "b", ["สมชายไฟฟ้า Official Store"])                          # name
    c = S("lazada", "c", ["Volt Power"], {"phone:0812345678", "line:@volt"})     # phone
    d = S("shopee", "d", ["Gadget Plus"], {"line:@volt"})                        # LINE, through c
    e = S("lazada", "e", ["Other"], set(), {PH_NEAR, PH_FAR})                    # a photo only: attached
    f = S("shopee", "f", ["Far"], set(), {PH_FAR})                               # shares a photo with e only: not
    g = S("shopee", "g", ["Gadget Plus"])                                        # name of d, reached through d
    out = operator_group(anchor, [b, c, d, e, f, g, anchor, c])
    got = {x.shop.key: (x.strength, sorted((r.kind, r.via) for r in x.links)) for x in out}
    assert got == {
        "lazada:c": ("strong", [("line", "shopee:d"), ("phone", "shopee:a")]),
        "shopee:d": ("strong", [("line", "lazada:c"), ("name", "shopee:g")]),
        "lazada:b": ("medium", [("name", "shopee:a")]),
        "shopee:g": ("medium", [("name", "shopee:d")]),
        "lazada:e": ("weak", [("photo", "shopee:a")]),
    }
    assert [x.shop.key for x in out] == ["lazada:c", "shopee:d", "lazada:b", "shopee:g", "lazada:e"]
    assert operator_group(anchor, []) == [] and operator_group(anchor, [S("x", "y", ["Nothing"])]) == []


def test_top_series_keeps_the_largest_and_sums_the_rest():
    s = {"a": [1, 0, 0], "b": [5, 5, 5], "c": [0, 2, 0], "d": [0, 0, 1]}
    assert top_series(s, 2) == {"b": [5, 5, 5], "c": [0, 2, 0], "other": [1, 0, 1]}
    assert top_series(s, 4) == {"b": [5, 5, 5], "c": [0, 2, 0], "a": [1, 0, 0], "d": [0, 0, 1]}
    assert top_series({}, 3) == {}


def test_line_chart_draws_each_series_and_escapes_labels():
    svg = charts.lines(["11-21", "11-22", "11-23"], {"2432-2555": [1, 0, 3], '"><script>x</script>': [0, 2, 0], "none": [0, 0, 0]},
                       "flags <by> standard")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "flags &lt;by&gt; standard" in svg
    assert "<title>11-21 · 2432-2555: 1</title>" in svg and "<title>11-23 · 2432-2555: 3</title>" in svg
    assert svg.count('<g class="series"') == 2                       # a series of zeros is not drawn
    assert "style=" not in svg and "<script" not in svg              # CSP: presentation attributes only
    assert "no data" in charts.lines(["a"], {"x": [0]}, "t")


def test_dashboard_export_rows():
    d = {"days": ["2026-11-21", "2026-11-22"], "per_marketplace": {"shopee": [0, 2]}, "per_standard": {"=1+1": [1, 1]},
         "by_standard": [("=1+1", 2)], "backlog": [(0, 3), (30, 1)], "per_officer": [("@off", 4)], "taken_down": 1, "acted": 4}
    rows = list(dashboard_rows(d, "en"))
    assert {"table": "flags_per_day_marketplace", "day": "2026-11-22", "marketplace": "shopee", "count": 2} in rows
    assert {"table": "flags_per_day_standard", "day": "2026-11-21", "standard": "=1+1", "count": 1} in rows
    assert {"table": "backlog_age", "label": "over 30 days", "count": 1} in rows
    assert {"table": "takedown", "label": "taken_down", "count": 1} in rows
    assert safe_cell(rows[1]["standard"]) == "'=1+1"


def test_audit_and_user_rows_are_spreadsheet_safe():
    r = audit_row({"id": 7, "at": "2026-11-21T17:30:00+00:00", "username": "=cmd", "action": "login.failed",
                   "target": "@SUM(A1)", "before": None, "after": {"why": "=1"}, "ip": "-1"}, "en")
    assert set(r) == set(AUDIT_COLUMNS) and r["at"] == "22 Nov 2026 00:30" and r["after"] == '{"why": "=1"}'
    assert [safe_cell(r[k]) for k in ("username", "target", "ip")] == ["'=cmd", "'@SUM(A1)", "'-1"]

    class U:
        username, display_name, role, active = "anna", "+HYPERLINK(1)", "admin", True
        locked_until = last_login = None
        created_at = "2026-11-21T17:30:00+00:00"

    u = user_row(U(), "en")
    assert safe_cell(u["display_name"]) == "'+HYPERLINK(1)" and safe_cell(u["active"]) == "yes" and u["last_login"] == ""
