"""Retry schedule, Retry-After, the feed cursor, CSV and Atom renderings, digests."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest

from alerts.backoff import RetryPolicy, parse_retry_after
from alerts.digest import build_group_digest, build_partner_digest, day_bounds, previous_day, render
from alerts.feeds import CSV_COLUMNS, CursorError, csv_cell, page_url, parse_cursor, to_atom, to_csv
from alerts.model import AlertData, AlertMessage, PublicEvidence, PublicListing, PublicReason, PublicStandard

P = RetryPolicy()
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("attempt,u,want", [
    (1, 0.0, 5.0), (2, 0.0, 10.0), (3, 0.0, 20.0), (10, 0.0, 2560.0),
    (1, 0.99999999, 2.5), (3, 0.5, 15.0),  # jitter shortens by up to half
    (20, 0.0, 6 * 3600.0), (10_000, 0.0, 6 * 3600.0),  # capped, never overflows
    (0, 0.0, 5.0), (-4, 0.0, 5.0),
])
def test_retry_delays(attempt, u, want):
    assert P.delay(attempt, u) == pytest.approx(want)


def test_retries_go_on_for_the_whole_window_then_give_up():
    t, n = NOW, 0
    deadline = P.deadline(NOW)
    while t < deadline:
        n += 1
        t = min(P.next_attempt(t, n, 0.5), deadline)
    assert deadline - NOW == timedelta(hours=72)
    assert 15 <= n <= 30  # quick retries first, then a few a day


def test_retry_after_is_honoured_within_the_cap():
    assert P.next_attempt(NOW, 1, 0.0, retry_after=120) == NOW + timedelta(seconds=120)
    assert P.next_attempt(NOW, 1, 0.0, retry_after=1) == NOW + timedelta(seconds=5)  # never sooner than backoff
    assert P.next_attempt(NOW, 1, 0.0, retry_after=10**9) == NOW + timedelta(hours=6)
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after("Mon, 23 Nov 2026 02:01:00 GMT", NOW) == 60
    for bad in (None, "", "soon", "-5", "Mon, 99 Nov"):
        assert parse_retry_after(bad, NOW) is None


def test_circuit_opens_after_consecutive_failures():
    assert [P.circuit_pause(n, 0.0) for n in (1, 4)] == [None, None]
    assert P.circuit_pause(5, 0.0) == 5.0 and P.circuit_pause(7, 0.0) == 20.0


@pytest.mark.parametrize("raw,want", [(None, 0), ("", 0), ("0", 0), ("42", 42), (" 7 ", 7)])
def test_cursor(raw, want):
    assert parse_cursor(raw) == want


@pytest.mark.parametrize("raw", ["-1", "1.5", "abc", "1e3", "9" * 40, "' OR 1=1"])
def test_bad_cursor(raw):
    with pytest.raises(CursorError):
        parse_cursor(raw)


def test_page_url_keeps_filters_and_moves_the_cursor():
    u = page_url("https://t.example/api/v1/feeds/alerts", {"limit": 50, "format": None, "verdict": "mislabeled",
                                                             "added_after": 3}, 99)
    assert u == "https://t.example/api/v1/feeds/alerts?limit=50&verdict=mislabeled&added_after=99"


HOSTILE = "=HYPERLINK(\"http://evil\",\"x\")\x00\x1b <script>alert(1)</script> ปลั๊ก ]]>"


def _msg(seq=1, title=HOSTILE, url="https://shopee.co.th/x-i.1.2"):
    data = AlertData(
        alert_id="al_1", state="open", basis="automatic", verdict="unlicensed", risk=88, licence_no=None,
        standard=PublicStandard(tis_no="2432-2555", name_th="ชุดสายพ่วง", name_en="extension cords"),
        listing=PublicListing(key="shopee:2", marketplace="shopee", item_id="2", url=url, title=title,
                              seller="-2+3", seller_id="@s1", price=-1.0),
        reasons=[PublicReason(code="no_claim", th="ไม่มี", en="no TIS number or licence number is shown")],
        evidence=[PublicEvidence(kind="screenshot", sha256="ab" * 32, url="https://t.example/api/v1/evidence/x.y",
                                 expires_at="2026-12-23T00:00:00Z")],
        opened_at="2026-11-23T02:00:00Z")
    return AlertMessage(id=f"msg_{seq}", seq=seq, type="alert.opened", timestamp="2026-11-23T02:00:00Z", data=data)


@pytest.mark.parametrize("cell,want", [
    ("=1+1", "'=1+1"), ("+66", "'+66"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("＝1+1", "'＝1+1"), ("ปลั๊ก", "ปลั๊ก"), ("a=b", "a=b"), (None, ""), (-1.0, "-1.0"), (88, "88"), (True, "true"),
])
def test_csv_cells_are_formula_safe(cell, want):
    assert csv_cell(cell) == want


def test_csv_feed_reads_back_and_defuses_formulas():
    text = to_csv([_msg(1), _msg(2)])
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert list(rows[0].keys()) == list(CSV_COLUMNS) and [r["seq"] for r in rows] == ["1", "2"]
    assert rows[0]["title"].startswith("'=HYPERLINK") and rows[0]["seller"] == "'-2+3" and rows[0]["seller_id"] == "'@s1"
    assert rows[0]["evidence_urls"] == "https://t.example/api/v1/evidence/x.y" and rows[0]["tis_no"] == "2432-2555"


def test_atom_feed_is_well_formed_with_hostile_text():
    xml = to_atom([_msg(1), _msg(2)], feed_id="urn:tiswatch:feed:etda", title="alerts", self_url="https://t.example/f?a=1&b=2",
                  next_url="https://t.example/f?added_after=2", updated="2026-11-23T02:00:00Z")
    root = ET.fromstring(xml.encode())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert len(entries) == 2
    assert entries[0].find("a:id", ns).text == "urn:tiswatch:msg_1"
    assert "<script>" in entries[0].find("a:title", ns).text  # text, escaped in the XML, never markup
    assert "\x00" not in xml and "\x1b" not in xml
    assert root.find("a:link[@rel='next']", ns).get("href") == "https://t.example/f?added_after=2"
    assert entries[0].find("a:link[@rel='alternate']", ns).get("href") == "https://shopee.co.th/x-i.1.2"


def test_digest_day_is_a_bangkok_day():
    start, end = day_bounds(date(2026, 11, 22))
    assert start.astimezone(UTC) == datetime(2026, 11, 21, 17, 0, tzinfo=UTC) and end - start == timedelta(days=1)
    assert previous_day(datetime(2026, 11, 22, 18, 0, tzinfo=UTC)) == date(2026, 11, 22)  # 01:00 on the 23rd in Bangkok


def test_partner_digest_counts_and_escapes():
    msgs = [{"type": "alert.opened", "payload": _msg(i, title=f"<b>item {i}</b>").data.model_copy(
        update={"risk": 50 + i}).model_dump(mode="json")} for i in range(12)]
    msgs.append({"type": "alert.retracted", "payload": msgs[0]["payload"]})
    msgs.append({"type": "alert.resolved", "payload": msgs[1]["payload"]})
    d = build_partner_digest("ETDA", date(2026, 11, 22), msgs, top_n=3)
    assert d.counts == {"alert.opened": 12, "alert.updated": 0, "alert.retracted": 1, "alert.resolved": 1,
                        "alert.reopened": 0}
    assert [t.risk for t in d.top] == [61, 60, 59] and "12 new alerts" in d.subject
    text, html = render(d)
    assert "&lt;b&gt;item 11&lt;/b&gt;" in html and "<b>item" not in html
    assert "alerts opened: 12" in text and "<b>item 11</b>" in text and "alerts resolved (listing gone): 1" in text


def test_group_digest_filters_by_marketplace_and_standard_and_drops_bad_links():
    act = [{"what": "flagged", "key": "shopee:1", "marketplace": "shopee", "tis_base": "2432", "verdict": "unlicensed", "risk": 90},
           {"what": "flagged", "key": "lazada:2", "marketplace": "lazada", "tis_base": "2432", "verdict": "mislabeled", "risk": 95},
           {"what": "flagged", "key": "shopee:3", "marketplace": "shopee", "tis_base": "166", "verdict": "unlicensed", "risk": 99},
           {"what": "confirmed", "key": "shopee:1", "marketplace": "shopee", "tis_base": "2432", "verdict": "unlicensed", "risk": 90},
           {"what": "partner_removed", "key": "shopee:1", "marketplace": "shopee", "tis_base": "2432", "verdict": "unlicensed", "risk": 90}]
    details = {"shopee:1": {"title": "ปลั๊กพ่วง", "url": "javascript:alert(1)"}}
    d = build_group_digest("surveillance", date(2026, 11, 22), act, details, ["shopee"], {"2432"})
    assert d.counts["flagged"] == 1 and d.counts["confirmed"] == 1 and d.counts["partner_removed"] == 1
    assert [t.title for t in d.top] == ["ปลั๊กพ่วง"]
    _, html = render(d)
    assert "javascript:" not in html
