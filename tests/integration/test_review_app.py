"""The review app's routes through HTTP (FastAPI TestClient): roles enforced on every route, CSRF,
lock-out, decisions reaching the store and the event log, the append-only audit log, exports, the API."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import zipfile
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from listings.events import open_events, verdict_event
from listings.model import Listing
from listings.store import open_store
from matching import check
from review.app import create_app
from review.db import open_appdb
from review.exports import verify_pack

PW = {"off": "officer-pass-1", "inv": "investig-pass-1", "part": "partner-pass-1", "adm": "admin-pass-12"}
HOSTILE = '=HYPERLINK("http://evil")<script>alert(1)</script> พาวเวอร์แบงค์ 20000mAh'


@pytest.fixture(scope="module")
def data(tmp_path_factory, world, world_registry):
    from settings import load_settings

    s = load_settings(home=tmp_path_factory.mktemp("rv") / "home", environ={})
    s.ensure_home()
    st, ev = open_store(s), open_events(s)
    at = datetime(2026, 11, 22, 3, tzinfo=UTC)
    for w in world.listings[:120] + [None]:
        x = Listing(**w.listing) if w else Listing(marketplace="shopee", item_id="evil", title=HOSTILE, seller="x",
                                                   seller_id="s-evil")
        v = check(x, world_registry)
        st.ingest(x, v, at)
        ev.append("verdict", x.key, verdict_event(v, None, x.marketplace, "crawl"), at=at)
    # an evidence capture for the hostile listing
    folder = s.evidence_dir / "shopee" / "evil" / "20261122T030000Z"
    folder.mkdir(parents=True)
    (folder / "page.html").write_text("<html><script>alert(1)</script></html>")
    import hashlib

    st.add_evidence("shopee:evil", "html", str((folder / "page.html").relative_to(s.home)),
                    hashlib.sha256((folder / "page.html").read_bytes()).hexdigest(), 38, at)
    st.add_evidence("shopee:evil", "raw", "../../etc/passwd", "0" * 64, 1, at)  # a hostile path: never served
    st.close()
    ev.close()
    db = open_appdb(s)
    for name, role in (("off", "officer"), ("inv", "investigator"), ("part", "partner_admin"), ("adm", "admin")):
        db.add_user(name, PW[name], role)
    db.close()
    return s


@pytest.fixture(scope="module")
def app(data):
    return create_app(data)


def login(app, name: str) -> tuple[TestClient, str]:
    c = TestClient(app)
    r = c.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
    r = c.post("/login", data={"username": name, "password": PW[name], "csrf": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303 and "error" not in r.headers["location"], r.headers.get("location")
    page = c.get("/account")
    return c, re.search(r'data-csrf="([^"]+)"', page.text).group(1)


_CLIENTS: dict[tuple[int, str], tuple[TestClient, str]] = {}


def client(app, name: str) -> tuple[TestClient, str]:
    """A logged-in client per user, reused across tests (argon2 makes each login deliberately slow)."""
    k = (id(app), name)
    if k not in _CLIENTS:
        _CLIENTS[k] = login(app, name)
    return _CLIENTS[k]


def flagged_keys(app, status="new"):
    from listings.store import SearchQuery

    return [h["key"] for h in app.state.store.search(SearchQuery(flagged_only=True, review_status=status, order="risk",
                                                                 limit=500)).hits]


# ---- who may see what ---------------------------------------------------------------------------
INTERNAL_GETS = ["/", "/queue", "/search?q=พัดลม", "/dashboard", "/listing/shopee:evil", "/seller/shopee/s-evil",
                 "/export/queue.csv", "/export/search.xlsx?q=a", "/listing/shopee:evil/evidence.zip",
                 "/export/evaluation.jsonl", "/api/v1/queue", "/api/v1/listings?q=x", "/api/v1/listings/shopee:evil",
                 "/api/v1/sellers/shopee/s-evil", "/api/v1/dashboard", "/api/v1/saved-searches"]
ADMIN_GETS = ["/audit", "/users", "/api/v1/audit", "/api/v1/users"]


@pytest.mark.parametrize("path", INTERNAL_GETS + ADMIN_GETS + ["/account", "/api/v1/me"])
def test_nothing_without_a_login(app, path):
    r = TestClient(app).get(path, follow_redirects=False)
    if path.startswith("/api/"):
        assert r.status_code == 401 and r.json()["detail"]
    else:
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", INTERNAL_GETS + ADMIN_GETS)
def test_a_partner_administrator_sees_nothing_internal(app, path):
    c, _ = client(app, "part")
    r = c.get(path, follow_redirects=False)
    if path == "/":
        assert r.status_code == 303 and r.headers["location"] in ("/partners", "/account")
    else:
        assert r.status_code == 403
        assert "HYPERLINK" not in r.text and "พาวเวอร์แบงค์" not in r.text and "mAh" not in r.text


@pytest.mark.parametrize("path", INTERNAL_GETS)
def test_officers_and_investigators_read_everything_internal(app, path):
    for who in ("off", "inv"):
        c, _ = client(app, who)
        assert c.get(path).status_code == 200, (who, path)


@pytest.mark.parametrize("path", ADMIN_GETS)
def test_only_administrators_see_users_and_the_audit_log(app, path):
    for who in ("off", "inv"):
        c, _ = client(app, who)
        assert c.get(path).status_code == 403
    c, _ = client(app, "adm")
    assert c.get(path).status_code == 200


def test_an_investigator_cannot_decide(app):
    c, csrf = client(app, "inv")
    key = flagged_keys(app)[0]
    r = c.post("/decide", data={"key": key, "action": "confirm", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 403
    r = c.post(f"/api/v1/listings/{key}/decisions", json={"action": "confirm"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    assert app.state.store.get(key)["review_status"] == "new"


def test_state_changes_need_the_csrf_token(app):
    c, csrf = login(app, "off")
    key = flagged_keys(app)[1]
    for data, headers in (({"key": key, "action": "confirm"}, {}),
                          ({"key": key, "action": "confirm", "csrf": "forged"}, {}),
                          ({"key": key, "action": "confirm", "csrf": csrf}, {"Origin": "https://evil.example"})):
        r = c.post("/decide", data=data, headers=headers, follow_redirects=False)
        assert r.status_code == 403
    assert c.post(f"/api/v1/listings/{key}/decisions", json={"action": "confirm"}).status_code == 403
    assert c.post("/logout", follow_redirects=False).status_code == 403
    assert app.state.store.get(key)["review_status"] == "new"
    r = c.post("/login", data={"username": "off", "password": PW["off"], "csrf": "x"}, follow_redirects=False)
    assert "error=csrf" in r.headers["location"]


# ---- decisions ----------------------------------------------------------------------------------
def test_a_decision_updates_the_store_the_event_log_and_the_audit_log(app):
    c, csrf = client(app, "off")
    key = flagged_keys(app)[2]
    last = app.state.events.last_id()
    r = c.post("/decide", data={"key": key, "action": "confirm", "csrf": csrf, "next": "/listing/" + key},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/listing/")
    assert app.state.store.get(key)["review_status"] == "confirmed"
    evs = app.state.events.read(after=last, kinds=["decision"])
    assert [(e.key, e.data["decision"], e.data["previous"]) for e in evs] == [(key, "confirmed", "new")]
    off = app.state.appdb.user("off")
    assert evs[0].data["by"] == off.id
    r = c.post("/decide", data={"key": key, "action": "escalate", "target": "etda", "note": "ส่ง สพธอ.", "csrf": csrf},
               follow_redirects=False)
    assert app.state.store.get(key)["review_status"] == "escalated"
    rows = app.state.appdb.audit_rows(target=f"listing:{key}")
    assert [r["action"] for r in rows] == ["decision.escalate", "decision.confirm"]
    assert rows[0]["before"]["status"] == "confirmed" and rows[0]["after"]["status"] == "escalated"
    assert rows[0]["after"]["note"] == "ส่ง สพธอ." and rows[0]["username"] == "off"
    # a decision that is not allowed changes nothing and says why
    r = c.post("/decide", data={"key": key, "action": "confirm", "csrf": csrf, "next": "/"}, follow_redirects=False)
    assert "error=" in r.headers["location"] and app.state.store.get(key)["review_status"] == "escalated"
    page = c.get("/listing/" + key).text
    assert "ส่ง สพธอ." in page and "off" in page


def test_bulk_decisions_and_dismissals_feed_the_evaluation_set(app):
    c, csrf = client(app, "off")
    keys = flagged_keys(app)[3:6]
    r = c.post("/decide", data={"key": keys, "action": "dismiss", "reason": "accessory", "csrf": csrf, "next": "/"},
               follow_redirects=False)
    assert r.status_code == 303 and "msg=" in r.headers["location"]
    assert {app.state.store.get(k)["review_status"] for k in keys} == {"dismissed"}
    lines = [json.loads(x) for x in c.get("/export/evaluation.jsonl").text.splitlines()]
    mine = {x["marketplace"] + ":" + x["item_id"]: x for x in lines}
    for k in keys:
        assert mine[k]["expected"] == {"verdict": "not_controlled", "tis_no": None, "licence_no": None}
        assert mine[k]["title"] == app.state.store.get(k)["title"]
    # each line is a valid §4.2 evaluation listing
    from listings.model import Listing

    for x in lines:
        assert Listing.model_validate(x).expected is not None


def test_htmx_decision_returns_the_updated_row(app):
    c, csrf = client(app, "off")
    key = flagged_keys(app)[6]
    r = c.post("/decide", data={"key": key, "action": "confirm"}, headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.text.lstrip().startswith("<tr") and "s-confirmed" in r.text
    r = c.post("/decide", data={"key": key, "action": "confirm"}, headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert r.status_code == 409


def test_the_audit_log_is_append_only_in_the_database(app):
    db = sqlite3.connect(app.state.settings.app_db, isolation_level=None)
    # a decision row to try to change, whichever tests ran before (inserting is what the log allows)
    db.execute("INSERT INTO decisions(at, key, action, user_id, username) VALUES ('2026-11-22T00:00:00+00:00',"
               " 'test:append-only', 'note', 0, 'test')")
    n = db.execute("SELECT count(*) FROM audit").fetchone()[0]
    assert n > 0
    for sql in ("UPDATE audit SET username='x'", "DELETE FROM audit", "UPDATE decisions SET note='x'", "DELETE FROM decisions"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)
    assert db.execute("SELECT count(*) FROM audit").fetchone()[0] == n
    db.close()
    c, _ = login(app, "adm")
    spec = TestClient(app).get("/api/openapi.json").json()["paths"]
    assert {p: list(v) for p, v in spec.items() if "audit" in p} == {"/api/v1/audit": ["get"],
                                                                    "/api/v1/export/audit.{fmt}": ["get"]}
    for method in ("put", "patch", "delete", "post"):
        assert getattr(c, method)("/api/v1/audit").status_code == 405


# ---- accounts -----------------------------------------------------------------------------------
def test_lockout_after_repeated_failures_and_unlock_by_an_administrator(app):
    db = app.state.appdb
    db.add_user("victim", "victim-pass-1", "officer")
    PW["victim"] = "victim-pass-1"
    c = TestClient(app)
    for _ in range(app.state.settings.review.max_failed_logins):
        tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={"username": "victim", "password": "wrong", "csrf": tok}, follow_redirects=False)
        assert "error=bad" in r.headers["location"]
    tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": "victim", "password": "victim-pass-1", "csrf": tok}, follow_redirects=False)
    assert "error=locked" in r.headers["location"]
    a, csrf = login(app, "adm")
    assert a.post("/users/victim/unlock", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    login(app, "victim")
    assert [r["action"] for r in db.audit_rows(target="user:victim")][:2] == ["login", "user.unlock"]


def test_sessions_cookies_logout_and_disable(app):
    c = TestClient(app)
    tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": "inv", "password": PW["inv"], "csrf": tok}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "tw_session=" in cookie
    assert app.state.appdb.db.execute("SELECT count(*) FROM sessions WHERE id=?",
                                      (re.search(r"tw_session=([^;]+)", cookie).group(1),)).fetchone()[0] == 0  # hashed
    csrf = re.search(r'data-csrf="([^"]+)"', c.get("/account").text).group(1)
    assert c.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert c.get("/", follow_redirects=False).status_code == 303
    a, acsrf = login(app, "adm")
    a.post("/users", data={"username": "temp", "password": "temp-pass-123", "role": "officer", "csrf": acsrf})
    PW["temp"] = "temp-pass-123"
    t, _ = login(app, "temp")
    a.post("/users/temp/disable", data={"csrf": acsrf})
    assert t.get("/", follow_redirects=False).status_code == 303  # the session ended


@pytest.mark.parametrize("what", ["idle", "expired"])
def test_idle_and_absolute_session_timeout(app, what):
    """A session unused for longer than [review] session_idle_minutes (30 by default), or older than
    session_hours, ends: the next page asks for a login again, says why, and the audit log has it."""
    c, _ = login(app, "inv")
    assert c.get("/", follow_redirects=False).status_code == 200
    db = app.state.appdb
    sid = db.q("SELECT id FROM sessions WHERE user_id=(SELECT id FROM users WHERE username='inv') ORDER BY last_seen DESC,"
               " created_at DESC LIMIT 1")[0]["id"]
    from datetime import timedelta

    from review.db import iso

    now = datetime.now(UTC)
    col, when = ("last_seen", now - db.session_idle - timedelta(minutes=1)) if what == "idle" else ("expires_at", now - timedelta(seconds=1))
    db.db.execute(f"UPDATE sessions SET {col}=? WHERE id=?", (iso(when), sid))
    r = c.get("/search?q=x", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?") and "msg=session_ended" in r.headers["location"]
    assert "next=%2Fsearch%3Fq%3Dx" in r.headers["location"]
    assert 'tw_session=""' in r.headers.get("set-cookie", "") or "Max-Age=0" in r.headers.get("set-cookie", "")
    assert not db.q("SELECT 1 FROM sessions WHERE id=?", (sid,))
    ended = db.audit_rows(target="user:inv", action="session.end")[0]
    assert ended["after"]["why"] == what
    page = c.get(r.headers["location"])
    assert "log in again" in page.text or "โปรดเข้าสู่ระบบอีกครั้ง" in page.text
    assert c.get("/api/v1/me").status_code == 401  # the API too


def test_session_idle_is_configurable(data, tmp_path):
    from datetime import timedelta

    from settings import load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text("[review]\nsession_idle_minutes = 5\n")
    s = load_settings(config=cfg, home=data.home, environ={})
    db = open_appdb(s)
    try:
        assert db.session_idle == timedelta(minutes=5)
    finally:
        db.close()


def _tabs(html: str) -> dict[str, int]:
    return {s: int(n.replace(",", "")) for s, n in re.findall(r'status=(\w+)"[^>]*>[^<]*<b>([\d,]+)</b>', html)}


def test_queue_counts_are_kept_briefly_and_the_list_is_always_current(data):
    """The tab and filter counts are kept [review] count_cache_seconds (review/counts.py); the rows and
    the current tab's total are read for every page; a bulk decision shows in the counts at once."""
    from review.counts import CountCache

    app = create_app(data)
    now = [0.0]
    app.state.counts = CountCache(15, clock=lambda: now[0])
    c, csrf = login(app, "off")
    before = _tabs(c.get("/?status=new").text)
    assert before["new"] == len(flagged_keys(app)) and before["all"] >= before["new"]
    k = flagged_keys(app)[-1]  # the queue's tail: other tests decide on its head
    app.state.store.set_review_status(k, "confirmed")   # a change the app did not make (another process)
    try:
        page = c.get("/?status=new").text
        kept = _tabs(page)
        assert kept["new"] == before["new"] - 1                                  # the list's own total: current
        assert kept.get("confirmed", 0) == before.get("confirmed", 0)            # the other tabs: kept
        assert f'data-key="{k}"' not in page                                     # the rows: current
        now[0] += 16
        assert _tabs(c.get("/?status=new").text).get("confirmed", 0) == before.get("confirmed", 0) + 1
        two = flagged_keys(app)[-3:-1]
        r = c.post("/decide", data={"key": two, "action": "confirm", "csrf": csrf, "next": "/?status=new"})
        assert r.status_code == 200
        after = _tabs(r.text)                                                    # no clock move: cleared by the decision
        assert after["new"] == before["new"] - 3 and after["confirmed"] == before.get("confirmed", 0) + 3
        api = c.get("/api/v1/queue?status=new").json()
        assert api["total"] == before["new"] - 3
    finally:
        for key in [k, *two]:
            app.state.store.set_review_status(key, "new")


def test_status_page_in_the_nav_for_administrators_only(app):
    a, _ = login(app, "adm")
    nav = re.search(r'<nav class="nav">(.*?)</nav>', a.get("/").text, re.S).group(1)
    assert 'href="/ops/status"' in nav and a.get("/ops/status").status_code == 200
    for who in ("off", "inv", "part"):
        c, _ = login(app, who)
        page = c.get("/account").text
        assert 'href="/ops/status"' not in page
        assert c.get("/ops/status", follow_redirects=False).status_code == 403


def test_api_does_what_the_pages_do_for_cases_sellers_and_users(app):
    a, _ = client(app, "adm")
    tok = a.post("/account/tokens", data={"name": "t", "csrf": client(app, "adm")[1]}).text
    admin_h = {"Authorization": "Bearer " + re.search(r'id="new-token">([^<]+)<', tok).group(1)}
    api = TestClient(app)
    keys = flagged_keys(app)[:2]
    r = api.post("/api/v1/export/case.zip", json={"keys": keys, "title": "case"}, headers=admin_h)
    assert r.status_code == 200 and verify_pack(r.content) == []
    assert json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("manifest.json"))["title"] == "case"
    assert api.post("/api/v1/export/case.zip", json={"keys": []}, headers=admin_h).status_code == 422
    s = app.state.store.get(keys[0])
    r = api.get(f"/api/v1/export/seller/{s['marketplace']}/{s['seller_id']}.csv", headers=admin_h)
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert r.status_code == 200 and len(rows) - 1 == app.state.store.seller(s["marketplace"], s["seller_id"])["listings"]
    api.post("/api/v1/users", json={"username": "apiuser", "password": "apiuser-pass-1", "role": "officer"}, headers=admin_h)
    assert api.patch("/api/v1/users/apiuser", json={"role": "investigator"}, headers=admin_h).json()["role"] == "investigator"
    assert api.patch("/api/v1/users/apiuser", json={"active": False}, headers=admin_h).json()["active"] is False
    assert api.patch("/api/v1/users/apiuser", json={"active": True, "unlock": True}, headers=admin_h).json()["active"] is True
    assert api.patch("/api/v1/users/nobody", json={"active": False}, headers=admin_h).status_code == 404
    assert api.patch("/api/v1/users/adm", json={"active": False}, headers=admin_h).status_code == 400
    actions = [r["action"] for r in app.state.appdb.audit_rows(target="user:apiuser")]
    assert {"user.role", "user.disable", "user.enable", "user.unlock"} <= set(actions)
    c, _ = client(app, "off")
    assert c.patch("/api/v1/users/apiuser", json={"active": False}).status_code == 403


def test_api_docs_page_and_token_scheme(app):
    c = TestClient(app)
    r = c.get("/api/docs")
    assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
    srcs = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', r.text)
    assert "/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in srcs and "/static/api-docs.js" in srcs
    assert all(s.startswith("/") and not s.startswith("//") for s in srcs)     # nothing from elsewhere
    assert "<script>" not in r.text                                              # no inline script
    for s in srcs:
        assert c.get(s).status_code == 200, s
    spec = c.get("/api/openapi.json").json()
    assert spec["components"]["securitySchemes"]["personal token"] == {**spec["components"]["securitySchemes"]["personal token"],
                                                                      "type": "http", "scheme": "bearer"}
    ops = {(m, p): op for p, v in spec["paths"].items() for m, op in v.items()}
    assert ops[("get", "/api/v1/queue")]["security"] == [{"personal token": []}]
    assert ops[("get", "/api/v1/search")]["security"] == [{"personal token": []}]       # listings/api.py too
    assert {"personal token": []} not in ops[("get", "/api/v1/feeds/alerts")].get("security", [])  # partners' own keys


def test_personal_api_tokens(app):
    c, csrf = login(app, "off")
    r = c.post("/account/tokens", data={"name": "script", "csrf": csrf})
    token = re.search(r'id="new-token">([^<]+)<', r.text).group(1)
    api = TestClient(app)
    h = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/me", headers=h).json()["username"] == "off"
    key = flagged_keys(app)[7]
    r = api.post(f"/api/v1/listings/{key}/decisions", json={"action": "dismiss", "reason": "licensed", "licence_no": "ท1-1/1"},
                 headers=h)
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    r = api.post(f"/api/v1/listings/{key}/decisions", json={"action": "dismiss", "reason": "licensed"}, headers=h)
    assert r.status_code == 409
    assert api.get("/api/v1/me", headers={"Authorization": "Bearer tw_wrong"}).status_code == 401
    tid = app.state.appdb.tokens(app.state.appdb.user("off"))[0]["id"]
    c.post(f"/account/tokens/{tid}/revoke", data={"csrf": csrf})
    assert api.get("/api/v1/me", headers=h).status_code == 401
    assert token not in app.state.settings.app_db.read_bytes().decode("latin-1")


def test_openapi_lists_the_api(app):
    spec = TestClient(app).get("/api/openapi.json").json()
    assert {"/api/v1/queue", "/api/v1/listings", "/api/v1/decisions", "/api/v1/dashboard"} <= set(spec["paths"])


# ---- pages show hostile text as text; exports are safe ------------------------------------------
def test_hostile_text_is_escaped_everywhere(app):
    c, _ = client(app, "off")
    for path in ("/listing/shopee:evil", "/seller/shopee/s-evil", "/search?q=พาวเวอร์แบงค์&flagged=0&status=all"):
        r = c.get(path)
        assert r.status_code == 200
        assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]


def test_exports_are_formula_safe(app):
    c, _ = client(app, "inv")
    r = c.get("/export/search.csv?q=HYPERLINK&flagged=0")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows and all(not x["title"].startswith("=") for x in rows) and rows[0]["title"].startswith("'=")
    from openpyxl import load_workbook

    r = c.get("/export/search.xlsx?q=HYPERLINK&flagged=0")
    ws = load_workbook(io.BytesIO(r.content)).active
    titles = [row[4] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert titles and all(t.startswith("'=") for t in titles)


def test_evidence_pack_has_a_manifest_with_sha256(app):
    c, _ = client(app, "inv")
    r = c.get("/listing/shopee:evil/evidence.zip")
    assert r.headers["content-type"] == "application/zip"
    assert verify_pack(r.content) == []
    z = zipfile.ZipFile(io.BytesIO(r.content))
    m = json.loads(z.read("manifest.json"))
    names = {f["path"] for f in m["files"]}
    assert {"shopee_evil/listing.json", "shopee_evil/verdict.json", "shopee_evil/history.json",
            "shopee_evil/decisions.json"} <= names
    assert any(n.endswith("page.html") for n in names)
    assert m["made_by"] == "inv" and m["made_at_bangkok"].endswith("+07:00")
    assert not any("passwd" in n for n in z.namelist())  # the hostile evidence path was not followed
    # the saved page is served inert
    r = c.get("/listing/shopee:evil/evidence/0")
    assert "sandbox" in r.headers["content-security-policy"] and r.status_code == 200
    assert c.get("/listing/shopee:evil/evidence/1").status_code == 404


@pytest.mark.parametrize("where", ["search", "seller"])
def test_case_pack_from_search_results_and_a_seller_page(app, where):
    """An investigator ticks listings in search results (or on a seller's page) and downloads one
    evidence pack of them: a case."""
    c, csrf = client(app, "inv")
    if where == "search":
        page = c.get("/search?flagged=1&marketplace=shopee").text
    else:
        k = flagged_keys(app)[0]
        s = app.state.store.get(k)
        page = c.get(f"/seller/{s['marketplace']}/{s['seller_id']}").text
    form = re.search(r'<form id="case" method="post" action="([^"]+)"', page)
    assert form and form.group(1) == "/export/case.zip"
    keys = re.findall(r'<input type="checkbox" name="key" value="([^"]+)" form="case"', page)
    assert keys
    pick = keys[:2]
    r = c.post("/export/case.zip", data={"key": pick, "title": "คดี <ทดสอบ>", "csrf": csrf})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert verify_pack(r.content) == []
    m = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("manifest.json"))
    assert m["title"] == "คดี <ทดสอบ>" and m["made_by"] == "inv"
    folders = {f["path"].split("/")[0] for f in m["files"] if "/" in f["path"]}
    assert len([f for f in folders if f.replace("_", ":", 1) in pick]) == len(pick)
    audit = app.state.appdb.audit_rows(action="export.evidence_pack", user="inv")[0]
    assert audit["after"]["listings"] == pick
    assert c.post("/export/case.zip", data={"title": "x", "csrf": csrf}).status_code == 400   # nothing ticked
    p, pcsrf = client(app, "part")
    assert p.post("/export/case.zip", data={"key": pick, "csrf": pcsrf}).status_code == 403


def test_dashboard_counts_flags_per_day(app):
    c, _ = client(app, "off")
    d = c.get("/api/v1/dashboard?days=366").json()
    day_total = sum(sum(v) for v in d["per_marketplace"].values())
    assert day_total == d["flagged"] and d["flagged"] > 0
    assert "<svg" in c.get("/dashboard").text


def test_saved_searches(app):
    c, csrf = client(app, "inv")
    c.post("/search/save", data={"name": "พัดลม ไม่มี มอก.", "query": "q=พัดลม&flagged=1", "csrf": csrf})
    saved = c.get("/api/v1/saved-searches").json()
    assert saved[0]["name"] == "พัดลม ไม่มี มอก." and saved[0]["query"] == {"q": "พัดลม", "flagged": "1"}
    assert "พัดลม ไม่มี มอก." in c.get("/search").text
    o, _ = client(app, "off")
    assert o.get("/api/v1/saved-searches").json() == []  # one's own


def test_language_switch(app):
    c, _ = login(app, "off")
    assert "คิวตรวจสอบ" in c.get("/").text
    c.get("/lang/en?next=/")
    page = c.get("/").text
    assert "Triage queue" in page and '<html lang="en">' in page
    assert c.get("/lang/en?next=//evil.example", follow_redirects=False).headers["location"] == "/"


def test_dashboard_backlog_age_counts_from_the_flag(home, world, world_registry):
    """A listing seen for 40 days and flagged 2 days ago is 1-7 days old in the backlog, not 30+."""
    from datetime import timedelta

    from review import service

    st, db = open_store(home), open_appdb(home)
    now = datetime(2026, 11, 22, 3, tzinfo=UTC)
    flagged = [w for w in world.listings if check(Listing(**w.listing), world_registry).flagged][:3]
    x, y, z = (Listing(**w.listing) for w in flagged)
    st.ingest(x, check(x, world_registry), now - timedelta(days=40))      # flagged 40 days ago
    st.ingest(z, check(z, world_registry), now - timedelta(hours=3))      # flagged 3 hours ago
    v = check(y, world_registry)
    from dataclasses import replace

    st.ingest(y, replace(v, verdict="licensed", risk=5), now - timedelta(days=40))  # seen 40 days ago, licensed then
    st.ingest(y, v, now - timedelta(days=2))                                           # flagged 2 days ago
    d = service.dashboard(st, db, None, now)
    assert dict(d["backlog"]) == {0: 1, 1: 1, 7: 0, 30: 1} and d["backlog_total"] == 3
    st.close()
    db.close()
