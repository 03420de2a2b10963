"""The pure parts of ops/, with tables of cases: crawl reports to rows and job results, the re-check's
provenance reasons and targets, the registry source's change detection, structured log lines, lock
files and the job history's roll-up."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from ops.history import History, crawl_row
from ops.jobs import crawl_outcome
from ops.locks import Busy, FileLock, is_locked
from ops.logs import JsonFormatter, TextFormatter, log_context
from ops.recheck import dedupe_key, group_changes, provenance, touched
from ops.registry_source import (
    Seen,
    conditional_headers,
    download_name,
    file_may_have_changed,
    is_new_content,
)


def _report(blocked=None, reason="finished", **stats):
    return {"marketplace": "shopee", "started": "2026-11-24T01:00:00+00:00", "finished": "2026-11-24T01:10:00+00:00",
            "reason": reason, "listings": 7, "blocked": blocked,
            "stats": {"response_received_count": 40, "downloader/request_count": 44, **stats}}


@pytest.mark.parametrize("blocked, is_block, is_captcha", [
    (None, 0, 0),
    ({"url": "u", "why": "captcha / traffic verification page"}, 1, 1),
    ({"url": "u", "why": "error 90309999 (anti-bot), tracking_id=x"}, 1, 0),
    ({"url": "u", "why": "captcha/punish page (RGV587_ERROR)"}, 1, 1),
    ({"url": "u", "why": ""}, 1, 0),
])
def test_crawl_rows_count_blocks_and_captchas(blocked, is_block, is_captcha):
    row = crawl_row(_report(blocked, "blocked" if blocked else "finished", **{"tiswatch/page_errors": 2,
                                                                              "tiswatch/parse_errors": 1}))
    assert (row["blocked"], row["captcha"]) == (is_block, is_captcha)
    assert (row["pages"], row["requests"], row["errors"], row["listings"], row["seconds"]) == (40, 44, 3, 7, 600.0)


def test_crawl_row_needs_marketplace_and_start():
    assert crawl_row({"marketplace": "x"}) is None and crawl_row({}) is None


def _result(returncode=0, report=None, timed_out=False, stopped=False, reason=None):
    from crawlers.runner import CrawlResult

    rep = report if report is not None else ({"reason": reason, "listings": 5, "stats": {"response_received_count": 9}}
                                             if reason else {})
    return CrawlResult("lazada", returncode, 12.3, Path("/h/logs/crawl-lazada.log"), timed_out, rep, stopped)


@pytest.mark.parametrize("result, status, says", [
    (_result(0, reason="finished"), "ok", None),
    (_result(4), "skipped", "another crawl of lazada is running"),
    (_result(-9, timed_out=True), "timed_out", "time limit (3600s)"),
    (_result(3, report={"reason": "blocked", "blocked": {"url": "http://x/verify", "why": "captcha"}}), "blocked",
     "blocked at http://x/verify: captcha"),
    (_result(1, reason="shutdown", stopped=True), "stopped", "shutting down"),
    (_result(-15, stopped=True), "stopped", "shutting down"),
    (_result(1), "failed", "exit status 1"),
    (_result(0, reason="closespider_pagecount"), "failed", "closespider_pagecount"),
])
def test_crawl_outcome(result, status, says):
    st, res, err = crawl_outcome(result, 3600)
    assert st == status and res["marketplace"] == "lazada" and res["log"].endswith("crawl-lazada.log")
    assert (err is None) if says is None else (says in err)


def _ch(no, field, old=None, new=None, tis="2879-2560"):
    return SimpleNamespace(licence_no=no, tis_no=tis, field=field, old=old, new=new)


def test_group_changes_and_touched_standards():
    changes = [_ch("ท1-1/1", "added", new="active"), _ch("ท1-1/1", "models", "[]", '["A"]'),
               _ch("ท2-1/1", "status", "active", "revoked", tis="166-2549"),
               _ch("ท3-1/1", "tis_no", "2432-2555", "685 เล่ม 1-2562", tis="685 เล่ม 1-2562")]
    deltas = group_changes(changes)
    assert deltas == [{"licence_no": "ท1-1/1", "new": True, "changes": [{"field": "models", "old": "[]", "new": '["A"]'}]},
                      {"licence_no": "ท2-1/1", "new": False, "changes": [{"field": "status", "old": "active", "new": "revoked"}]},
                      {"licence_no": "ท3-1/1", "new": False,
                       "changes": [{"field": "tis_no", "old": "2432-2555", "new": "685 เล่ม 1-2562"}]}]
    bases, nos = touched(deltas, {"ท1-1/1": "2879-2560", "ท2-1/1": "166-2549", "ท3-1/1": "685 เล่ม 1-2562"})
    assert bases == {"2879", "166", "685 เล่ม 1", "2432"}  # a licence moved standard touches both
    assert nos == {"ท1-1/1", "ท2-1/1", "ท3-1/1"}


def _v(verdict, licence_no=None, risk=5, reasons=()):
    return SimpleNamespace(verdict=verdict, licence_no=licence_no, risk=risk, tis_no="2879-2560", reasons=list(reasons))


NEW = {"licence_no": "ทN", "new": True, "changes": []}
REVOKED = {"licence_no": "ทR", "new": False, "changes": [{"field": "status", "old": "active", "new": "revoked"}]}
REACTIVATED = {"licence_no": "ทA", "new": False, "changes": [{"field": "status", "old": "suspended", "new": "active"}]}
EDITED = {"licence_no": "ทE", "new": False, "changes": [{"field": "trademarks", "old": "[]", "new": "[]"},
                                                        {"field": "models", "old": "[]", "new": "[]"}]}


@pytest.mark.parametrize("row, v, expected", [
    ({"verdict": "unlicensed", "licence_no": None}, _v("licensed", "ทN"), ["registry_granted:ทN"]),
    ({"verdict": "mislabeled", "licence_no": "ทA"}, _v("licensed", "ทA"), ["registry_granted:ทA"]),
    ({"verdict": "licensed", "licence_no": "ทR"}, _v("mislabeled", "ทR", 90), ["registry_status:ทR:revoked"]),
    ({"verdict": "licensed", "licence_no": "ทR"}, _v("unlicensed", None, 75), ["registry_status:ทR:revoked"]),
    ({"verdict": "licensed", "licence_no": "ทE"}, _v("mislabeled", "ทE", 82), ["registry_licence_changed:ทE:models, trademarks"]),
    # another licence of the brand now matches; the old one was revoked: both named, the new one first
    ({"verdict": "licensed", "licence_no": "ทR"}, _v("licensed", "ทN"), ["registry_granted:ทN", "registry_status:ทR:revoked"]),
    ({"verdict": "needs_review", "licence_no": None}, _v("needs_review", None, 55), []),
])
def test_provenance(row, v, expected):
    deltas = {d["licence_no"]: d for d in (NEW, REVOKED, REACTIVATED, EDITED)}
    assert provenance(row, v, deltas, "r7") == expected + ["registry_recheck:r7"]


def test_dedupe_key_names_one_transition():
    row = {"verdict": "licensed", "risk": 5, "tis_no": "2879-2560", "licence_no": "ทR", "reasons": ["licence_match:ทR"]}
    a = dedupe_key("r7", "shopee:1", row, _v("mislabeled", "ทR", 90, ["licence_inactive:ทR:revoked"]))
    assert a == dedupe_key("r7", "shopee:1", row, _v("mislabeled", "ทR", 90, ["licence_inactive:ทR:revoked", "registry_recheck:r7"]))
    assert a != dedupe_key("r8", "shopee:1", row, _v("mislabeled", "ทR", 90, ["licence_inactive:ทR:revoked"]))
    assert a != dedupe_key("r7", "shopee:1", row, _v("unlicensed", None, 75))
    assert a.startswith("registry:r7:shopee:1:")


# ---- the registry source -----------------------------------------------------------------------------
@pytest.mark.parametrize("prev, now, changed", [
    (None, Seen("/f", 10, 1.0), True),
    (Seen("/f", 10, 1.0, sha256="a"), Seen("/f", 10, 1.0), False),
    (Seen("/f", 10, 1.0, sha256="a"), Seen("/f", 11, 1.0), True),
    (Seen("/f", 10, 1.0, sha256="a"), Seen("/f", 10, 2.0), True),
    (Seen("/g", 10, 1.0, sha256="a"), Seen("/f", 10, 1.0), True),
])
def test_file_may_have_changed(prev, now, changed):
    assert file_may_have_changed(prev, now) is changed


@pytest.mark.parametrize("prev, sha, new", [
    (None, "a", True), (Seen("/f", sha256="a"), "a", False), (Seen("/f", sha256="a"), "b", True), (Seen("/f"), "a", True),
])
def test_is_new_content(prev, sha, new):
    assert is_new_content(prev, sha) is new


@pytest.mark.parametrize("prev, source, headers", [
    (None, "http://x/l.csv", {}),
    (Seen("http://x/l.csv", etag='"e1"'), "http://x/l.csv", {"If-None-Match": '"e1"'}),
    (Seen("http://x/l.csv", etag='"e1"', last_modified="Mon, 23 Nov 2026 10:00:00 GMT"), "http://x/l.csv",
     {"If-None-Match": '"e1"', "If-Modified-Since": "Mon, 23 Nov 2026 10:00:00 GMT"}),
    (Seen("http://x/old.csv", etag='"e1"'), "http://x/l.csv", {}),  # another source: ask afresh
])
def test_conditional_headers(prev, source, headers):
    assert conditional_headers(prev, source) == headers


@pytest.mark.parametrize("url, ctype, disp, name", [
    ("https://x/a/licences.xlsx", "", "", "licences.xlsx"),
    ("https://x/download?id=3", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "", "download.xlsx"),
    ("https://x/download?id=3", "text/csv", 'attachment; filename="ใบอนุญาต 2569.csv"', "ใบอนุญาต_2569.csv"),
    ("https://x/", "text/csv", "", "licences.csv"),
    ("https://x/../../etc/passwd", "", "", "passwd.csv"),
])
def test_download_name(url, ctype, disp, name):
    assert download_name(url, ctype, disp) == name


# ---- logs --------------------------------------------------------------------------------------------
def _record(msg, **extra):
    rec = logging.LogRecord("ops.jobs", logging.WARNING, __file__, 1, msg, (), None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_json_log_lines_carry_context_and_extra():
    fmt = JsonFormatter()
    with log_context(job="crawl:shopee", marketplace="shopee"), log_context(run=3):
        line = json.loads(fmt.format(_record("verdict of %s", listing="shopee:1")))
        nested = json.loads(fmt.format(_record("x", marketplace="lazada")))  # extra= wins over the context
    outside = json.loads(fmt.format(_record("y")))
    assert line["job"] == "crawl:shopee" and line["marketplace"] == "shopee" and line["run"] == 3
    assert line["listing"] == "shopee:1" and line["level"] == "WARNING" and line["logger"] == "ops.jobs"
    assert nested["marketplace"] == "lazada"
    assert "job" not in outside and "ts" in outside
    text = TextFormatter().format(_record("hello", job="registry", listing="lazada:9"))
    assert text.endswith("hello [job=registry listing=lazada:9]")


def test_json_log_line_with_thai_and_an_exception():
    fmt = JsonFormatter()
    try:
        raise ValueError("ผิด")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "ล้มเหลว %s", ("ท1-1/1",), sys.exc_info())
    d = json.loads(fmt.format(rec))
    assert d["msg"] == "ล้มเหลว ท1-1/1" and "ValueError: ผิด" in d["exc"]
    assert "ล้มเหลว" in fmt.format(rec)  # not \\u escaped


# ---- locks -------------------------------------------------------------------------------------------
def test_lock_is_exclusive_and_released_when_its_process_dies(tmp_path):
    p = tmp_path / "locks" / "crawl-shopee.lock"
    with FileLock(p, what="crawl shopee"):
        with pytest.raises(Busy) as e:
            FileLock(p).acquire()
        assert "crawl shopee" in str(e.value) and is_locked(p)["what"] == "crawl shopee"
    assert is_locked(p) is None
    holder = subprocess.Popen([sys.executable, "-c", f"import sys, time; sys.path.insert(0, {str(Path.cwd())!r});"
                               f"from ops.locks import FileLock; FileLock({str(p)!r}, 'x').acquire(); print('ok', flush=True);"
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ok"
    assert is_locked(p)["pid"] == holder.pid
    holder.kill()
    holder.wait()
    assert is_locked(p) is None  # the kernel let go: a killed crawl never blocks the next one
    FileLock(p).acquire().release()


# ---- the job history ---------------------------------------------------------------------------------
def test_history_prune_rolls_up_and_abandon_marks_stopped(tmp_path):
    h = History(tmp_path / "jobs.sqlite")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i, (status, secs) in enumerate([("ok", 2.0), ("ok", 30.0), ("failed", 400.0), ("skipped", 0.0), ("ok", 1.0)]):
        rid = h.start("crawl:x", "crawl", "schedule", None, 1, at=t0 + timedelta(days=i))
        h.finish(rid, status, secs, {}, at=t0 + timedelta(days=i))
    assert h.prune(t0 + timedelta(days=3), keep_last=1) == 3
    assert [r["status"] for r in h.runs("crawl:x")] == ["ok", "skipped"]
    assert sorted(h.rolled_up()) == [("crawl:x", "failed", 1), ("crawl:x", "ok", 2)]
    d = h.rolled_durations()["crawl:x"]
    assert d["count"] == 3 and d["sum"] == 432.0 and d["5"] == 1 and d["60"] == 2 and d["900"] == 3 and d["+Inf"] == 3
    rid = h.start("recheck", "recheck", "schedule", None, 999_999, at=t0)
    assert h.abandon_running() == 1 and h.runs("recheck")[0]["status"] == "stopped"
    assert h.runs("recheck")[0]["id"] == rid
    h.close()


def test_text_log_stream(tmp_path):
    from ops.logs import setup_logging
    from settings import load_settings

    s = load_settings(home=tmp_path, environ={}, log={"file": "logs/service.log"})
    stream = io.StringIO()
    setup_logging(s, "test", stream=stream)
    try:
        with log_context(job="alerts"):
            logging.getLogger("ops.test").info("hello")
    finally:
        for h in list(logging.getLogger().handlers):
            if getattr(h, "_tiswatch", False):
                logging.getLogger().removeHandler(h)
                h.close()
    assert stream.getvalue().rstrip().endswith("hello [job=alerts]")
    assert (tmp_path / "logs" / "service.log").read_text().rstrip().endswith("hello [job=alerts]")
