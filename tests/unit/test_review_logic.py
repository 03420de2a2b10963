"""The review app's pure rules: lock-out, decisions, spreadsheet cells, highlighting, dates, labels,
redirects, charts and the message catalogue."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from review import charts
from review.auth import safe_next
from review.db import LockPolicy, login_outcome, session_state, touch_due
from review.decisions import DecisionError, check_decision
from review.exports import expected_label, safe_cell
from review.highlight import highlight
from review.i18n import M, fmt_dt, tr

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
P = LockPolicy(max_failures=3, lock_minutes=15)


@pytest.mark.parametrize("failed, locked, ok, outcome, failed_after, locks", [
    (0, None, True, "ok", 0, False),
    (2, None, True, "ok", 0, False),                 # a success resets the count
    (0, None, False, "bad", 1, False),
    (1, None, False, "bad", 2, False),
    (2, None, False, "bad", 3, True),                # the third failure locks
    (3, (NOW + timedelta(minutes=5)).isoformat(), True, "locked", 3, True),   # even the right password is refused
    (3, (NOW - timedelta(minutes=1)).isoformat(), False, "bad", 1, False),    # an expired lock starts counting again
    (3, (NOW - timedelta(minutes=1)).isoformat(), True, "ok", 0, False),
])
def test_lockout_rule(failed, locked, ok, outcome, failed_after, locks):
    o, f, lu = login_outcome(failed, locked, ok, NOW, P)
    assert (o, f, lu is not None) == (outcome, failed_after, locks)
    if outcome == "bad" and locks:
        assert datetime.fromisoformat(lu) == NOW + timedelta(minutes=15)


def test_count_cache_keeps_for_ttl_then_recounts():
    from review.counts import CountCache, filters_key

    now = [100.0]
    c = CountCache(15, size=2, clock=lambda: now[0])
    calls = []

    def compute(v):
        return lambda: calls.append(v) or v

    assert c.get("a", compute(1)) == 1 and c.get("a", compute(2)) == 1 and calls == [1]   # kept
    now[0] += 14.9
    assert c.get("a", compute(3)) == 1
    now[0] += 0.2                                                                           # 15.1 s old: counted again
    assert c.get("a", compute(4)) == 4 and calls == [1, 4]
    c.get("b", compute(5))
    c.get("c", compute(6))                                                                  # size 2: "a" (oldest use) goes
    assert c.peek("a") is None and c.peek("b") == 5 and c.peek("c") == 6
    c.clear()
    assert c.peek("b") is None
    off = CountCache(0, clock=lambda: now[0])
    assert off.get("a", compute(7)) == 7 and off.get("a", compute(8)) == 8                 # 0: off
    # the order of the list does not change its counts; any filter does
    assert filters_key("counts", {"status": "new", "order": "risk"}) == filters_key("counts", {"order": "recent", "status": "new"})
    assert filters_key("counts", {"status": "new"}) != filters_key("counts", {"status": "new", "marketplace": "shopee"})


M30 = timedelta(minutes=30)


@pytest.mark.parametrize("expires_in, idle_for, idle, state", [
    (timedelta(hours=11), timedelta(0), M30, "live"),
    (timedelta(hours=11), timedelta(minutes=29, seconds=59), M30, "live"),
    (timedelta(hours=11), timedelta(minutes=30), M30, "live"),       # exactly the limit: still live
    (timedelta(hours=11), timedelta(minutes=30, seconds=1), M30, "idle"),
    (timedelta(hours=11), timedelta(minutes=6), timedelta(minutes=5), "idle"),  # configurable
    (timedelta(seconds=1), timedelta(0), M30, "live"),
    (timedelta(0), timedelta(0), M30, "expired"),                     # the absolute lifetime wins over activity
    (-timedelta(minutes=1), timedelta(minutes=45), M30, "expired"),
])
def test_session_state(expires_in, idle_for, idle, state):
    assert session_state((NOW + expires_in).isoformat(), (NOW - idle_for).isoformat(), NOW, idle) == state


@pytest.mark.parametrize("since, idle, due", [
    (timedelta(seconds=10), M30, False),
    (timedelta(seconds=59), M30, False),
    (timedelta(minutes=1), M30, True),               # at most one write a minute
    (timedelta(seconds=30), timedelta(minutes=1), True),  # a short idle limit: a quarter of it
    (timedelta(seconds=10), timedelta(minutes=1), False),
])
def test_session_touch_due(since, idle, due):
    assert touch_due((NOW - since).isoformat(), NOW, idle) is due


@pytest.mark.parametrize("action, status, verdict, reason, target, note, result", [
    ("confirm", "new", "unlicensed", None, None, "", "confirmed"),
    ("confirm", "dismissed", "mislabeled", None, None, "", "confirmed"),
    ("confirm", "confirmed", "unlicensed", None, None, "", DecisionError),
    ("confirm", "new", "licensed", None, None, "", DecisionError),          # not flagged
    ("dismiss", "new", "needs_review", "accessory", None, "", "dismissed"),
    ("dismiss", "new", "needs_review", None, None, "", DecisionError),      # a reason is required
    ("dismiss", "new", "needs_review", "because", None, "", DecisionError),  # from the list only
    ("dismiss", "new", "unlicensed", "other", None, "", DecisionError),     # other needs a note
    ("dismiss", "new", "unlicensed", "other", None, "sold out sample", "dismissed"),
    ("escalate", "confirmed", "unlicensed", None, "etda", "", "escalated"),
    ("escalate", "new", "unlicensed", None, "police", "", DecisionError),
    ("taken_down", "escalated", "unlicensed", None, None, "", "taken_down"),
    ("taken_down", "new", "unlicensed", None, None, "", DecisionError),
    ("reopen", "dismissed", "licensed", None, None, "", "new"),
    ("reopen", "new", "unlicensed", None, None, "", DecisionError),
    ("note", "confirmed", "unlicensed", None, None, "called the seller", None),
    ("note", "new", "unlicensed", None, None, "   ", DecisionError),
    ("delete", "new", "unlicensed", None, None, "", DecisionError),
])
def test_decision_rules(action, status, verdict, reason, target, note, result):
    if result is DecisionError:
        with pytest.raises(DecisionError):
            check_decision(action, status, verdict, reason, target, note)
    else:
        assert check_decision(action, status, verdict, reason, target, note) == result


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+66 81 234 5678", "'+66 81 234 5678"),
    ("-1+1", "'-1+1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("＝1+1", "'＝1+1"),
    ("พัดลม =1", "พัดลม =1"),
    (-12.5, -12.5),
    (3, 3),
    (None, ""),
    (True, "yes"),
])
def test_spreadsheet_cells_are_never_formulas(value, cell):
    assert safe_cell(value) == cell


@pytest.mark.parametrize("text, needles, html", [
    ("พาวเวอร์แบงค์ มอก. 2879-2560 แท้", ["มอก. 2879-2560"], 'พาวเวอร์แบงค์ <mark class="claim">มอก. 2879-2560</mark> แท้'),
    ('<script>alert(1)</script> มอก.166', ["มอก.166"], '&lt;script&gt;alert(1)&lt;/script&gt; <mark class="claim">มอก.166</mark>'),
    ('"><img src=x onerror=alert(1)>', ["img"], '&#34;&gt;&lt;<mark class="claim">img</mark> src=x onerror=alert(1)&gt;'),
    ("ปลั๊ก มอก.๑๖๖-๒๕๔๙", ["มอก.166-2549"], 'ปลั๊ก <mark class="claim">มอก.๑๖๖-๒๕๔๙</mark>'),    # Thai digits
    ("มอก.\u200b166", ["มอก.166"], '<mark class="claim">มอก.\u200b166</mark>'),                       # zero-width space
    ("TIS  2432-2555", ["TIS 2432-2555"], '<mark class="claim">TIS  2432-2555</mark>'),               # spaces collapsed
    ("no claim here", ["มอก. 1"], "no claim here"),
    ("a <b>", ["<b>"], 'a <mark class="claim">&lt;b&gt;</mark>'),
])
def test_highlight_escapes_first(text, needles, html):
    assert str(highlight(text, needles)) == html


@pytest.mark.parametrize("value, lang, shown", [
    ("2026-11-21T17:30:00+00:00", "th", "22 พ.ย. 2569 00:30"),
    ("2026-11-21T17:30:00+00:00", "en", "22 Nov 2026 00:30"),
    (datetime(2026, 1, 1, tzinfo=UTC), "th", "1 ม.ค. 2569 07:00"),
    (None, "th", "—"),
    ("not a date", "en", "not a date"),
])
def test_dates_are_shown_in_bangkok(value, lang, shown):
    assert fmt_dt(value, lang) == shown


@pytest.mark.parametrize("decision, listing, expected", [
    ({"status": "dismissed", "reason": "accessory"}, {"verdict": "needs_review"},
     {"verdict": "not_controlled", "tis_no": None, "licence_no": None}),
    ({"status": "dismissed", "reason": "licensed:ท123-4/56"}, {"verdict": "unlicensed", "tis_no": "2879-2560"},
     {"verdict": "licensed", "tis_no": "2879-2560", "licence_no": "ท123-4/56"}),
    ({"status": "dismissed", "reason": "duplicate"}, {"verdict": "unlicensed"}, None),
    ({"status": "confirmed"}, {"verdict": "unlicensed", "tis_no": "934-2558", "licence_no": None},
     {"verdict": "unlicensed", "tis_no": "934-2558", "licence_no": None}),
    ({"status": "confirmed"}, {"verdict": "needs_review", "tis_no": "934-2558", "detail": {"claims": [{"kind": "tis"}]}},
     {"verdict": "mislabeled", "tis_no": "934-2558", "licence_no": None}),
    ({"status": "taken_down"}, {"verdict": "needs_review", "tis_no": "934-2558", "detail": {"claims": [{"kind": "vague"}]}},
     {"verdict": "unlicensed", "tis_no": "934-2558", "licence_no": None}),
    ({"status": "escalated"}, {"verdict": "unlicensed"}, None),
    ({"status": "new"}, {"verdict": "unlicensed"}, None),
])
def test_decisions_become_evaluation_labels(decision, listing, expected):
    assert expected_label(decision, listing) == expected


@pytest.mark.parametrize("url, safe", [
    ("/listing/shopee:1?x=1", "/listing/shopee:1?x=1"), ("//evil.example/", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"), ("", "/"), (None, "/"), ("javascript:alert(1)", "/"),
])
def test_redirect_after_login_stays_on_the_site(url, safe):
    assert safe_next(url) == safe


def test_chart_labels_are_escaped():
    svg = charts.hbars([("<script>x</script>", 3), ("ok", 1)], "t<")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "t&lt;" in svg
    svg = charts.stacked_bars(["11-21", "11-22"], {'"><img>': [1, 2]}, "flags")
    assert "<img>" not in svg and svg.count("<rect") >= 3
    assert "no data" in charts.stacked_bars(["a"], {"x": [0]}, "t")


def test_every_message_used_by_a_template_is_in_the_catalogue():
    used = set()
    for p in (Path(__file__).resolve().parents[2] / "review" / "templates").glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_.0-9]+)'[,)]", p.read_text("utf-8")))
    assert used, "no messages found"
    assert sorted(k for k in used if k not in M) == []
    assert all(th and en for th, en in M.values())
    assert tr("common.page", "en", page=2, pages=5) == "page 2/5" and tr("nav.queue") == "คิวตรวจสอบ"
