"""The review app's routes added for issue #7's gaps, through HTTP: the per-standard trend on the
dashboard from stored flags, seller pages that group one operator's shops across marketplaces (and
say why), CSV/XLSX of every list (audit log, users, dashboard, an operator's listings) with cells made
formula-safe, and the API for what the account page does (tokens, password, language), with roles."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from listings.events import open_events, verdict_event
from listings.model import Listing
from listings.store import open_store
from matching import check
from review.app import create_app
from review.db import open_appdb
from tests.integration.test_review_app import PW, login

NOW = datetime.now(UTC).replace(microsecond=0)
HOSTILE_NAME = '"><img src=x onerror=alert(1)>=cmd|calc'
PH = "f0f0f0f0f0f0f0f0"
# one operator's shops (and two that are not): marketplace, seller_id, seller name, description, attributes, photo
SHOPS = [
    ("shopee", "op-a", "ร้านสมชายไฟฟ้า", "ปลั๊กพ่วงราคาส่ง โทร 081-234-5678 อีเมล somchai.volt@example.com", {}, PH),
    ("lazada", "op-b", "สมชายไฟฟ้า Official Store", "ส่งไว", {}, None),                                   # name
    ("lazada", "op-c", "Volt Power", "สั่งซื้อ Tel: +66 81 234 5678 ไลน์ไอดี voltpower", {}, None),         # phone
    ("shopee", "op-d", "Gadget Plus", "พร้อมส่ง แอดไลน์ LINE: voltpower", {"ติดต่อ": "โทร 02-123-4567"}, None),  # LINE, via c
    ("shopee", "op-g", HOSTILE_NAME, "mail SOMCHAI.VOLT@example.com", {}, None),                          # e-mail
    ("lazada", "op-e", "Other Trader", "ของแท้", {}, "f0f0f0f0f0f0f0f3"),                                 # a photo only
    ("shopee", "op-f", "ขายออนไลน์ แฮร์ไลน์", "ขายออนไลน์ โทร 089-999-0000", {}, None),                   # nothing shared
]


@pytest.fixture(scope="module")
def data(tmp_path_factory, world, world_registry):
    from settings import load_settings

    s = load_settings(home=tmp_path_factory.mktemp("rvf") / "home", environ={})
    s.ensure_home()
    st, ev = open_store(s), open_events(s)
    flagged = [w for w in world.listings if check(Listing(**w.listing), world_registry).flagged][:90]
    # flags on three days in the last week, so that the dashboard's 30-day window holds them
    for i, w in enumerate(flagged):
        x = Listing(**w.listing)
        v = check(x, world_registry)
        at = NOW - timedelta(days=i % 3 + 1)
        st.ingest(x, v, at)
        ev.append("verdict", x.key, verdict_event(v, None, x.marketplace, "crawl"), at=at)
    base = flagged[0].listing
    for n, (mp, sid, name, desc, attrs, photo) in enumerate(SHOPS):
        for j in range(2):
            x = Listing(**{**base, "marketplace": mp, "item_id": f"{sid}-{j}", "seller": name, "seller_id": sid,
                           "shop_id": sid, "description": desc, "attributes": attrs})
            st.ingest(x, check(x, world_registry), NOW - timedelta(days=10 + n, hours=j))
            if photo and j == 0:
                st.add_images(x.key, [{"index": 0, "url": "https://img.example/1.jpg", "sha256": f"{n:064x}",
                                        "phash": photo, "width": 100, "height": 100}], NOW)
    st.close()
    ev.close()
    db = open_appdb(s)
    for name, role in (("off", "officer"), ("inv", "investigator"), ("part", "partner_admin"), ("adm", "admin")):
        db.add_user(name, PW[name], role)
    db.add_user("formula", "formula-pass-1", "officer", display_name="=HYPERLINK(\"http://evil\",\"x\")")
    db.close()
    return s


@pytest.fixture(scope="module")
def app(data):
    return create_app(data)


_C: dict[str, tuple[TestClient, str]] = {}


def client(app, name):
    if (id(app), name) not in _C:
        _C[(id(app), name)] = login(app, name)
    return _C[(id(app), name)]


def token_for(app, name) -> dict[str, str]:
    c, _ = client(app, name)
    r = c.post("/api/v1/me/tokens", json={"name": f"t-{name}"}, headers={"X-CSRF-Token": client(app, name)[1]})
    assert r.status_code == 201, r.text
    return {"Authorization": "Bearer " + r.json()["token"]}


def read_csv(r) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))


def read_xlsx(r) -> list[dict[str, object]]:
    from openpyxl import load_workbook

    assert r.status_code == 200, r.text
    rows = list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    return [dict(zip(rows[0], x, strict=True)) for x in rows[1:]]


# ---- 1. the dashboard: flags per day by standard -----------------------------------------------
def test_dashboard_trend_by_standard_is_the_stored_flags(app):
    """Per day and standard, the dashboard's series equal the flags stored (counted here from the
    listings themselves), and the chart on the page draws each of those counts."""
    from collections import Counter

    from review.i18n import BANGKOK
    from review.service import OTHER

    st = app.state.store
    expected: Counter[tuple[str, str]] = Counter()
    for e in app.state.events.read(after=0, limit=100_000, kinds=["verdict"]):
        std = st.get(e.key)["tis_no"] or "—"
        expected[(e.at.astimezone(BANGKOK).date().isoformat(), std)] += 1
    assert len({s for _, s in expected}) > 6 and len({d for d, _ in expected}) == 3  # enough to rank and sum
    c, _ = client(app, "off")
    d = c.get("/api/v1/dashboard").json()
    per = d["per_standard"]
    assert len(per) == 7 and OTHER in per                                  # the top 6 and the rest
    top = [s for s in per if s != OTHER]
    totals = Counter()
    for (_, s), n in expected.items():
        totals[s] += n
    assert sorted(totals[s] for s in top) == sorted(totals.values(), reverse=True)[:6][::-1]
    for i, day in enumerate(d["days"]):
        for s in top:
            assert per[s][i] == expected.get((day, s), 0), (day, s)
        assert per[OTHER][i] == sum(n for (dd, s), n in expected.items() if dd == day and s not in top)
    page = c.get("/dashboard").text
    trend = re.search(r'<section class="card wide" id="std-trend">(.*?)</section>', page, re.S).group(1)
    assert "<svg" in trend and "script" not in trend
    for (day, s), n in expected.items():
        if s in top:
            assert f"<title>{day[5:]} · {s}: {n}</title>" in trend, (day, s, n)
    assert trend.count('<g class="series"') == 7


def test_dashboard_trend_escapes_a_hostile_standard(data, tmp_path):
    from review import service

    db = open_appdb(data)
    try:
        day = NOW.astimezone(service.BANGKOK).date().isoformat()
        with db._lock:
            db.db.execute("INSERT INTO flag_days VALUES (?,?,?,?)", (day, "shopee", "<script>alert(1)</script>", 99))
        app = create_app(data)
        c, _ = login(app, "inv")
        page = c.get("/dashboard").text
        trend = re.search(r'id="std-trend">(.*?)</section>', page, re.S).group(1)
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in trend
    finally:
        with db._lock:
            db.db.execute("DELETE FROM flag_days WHERE tis_no LIKE '<script>%'")
        db.close()


# ---- 2. sellers: one operator's shops ----------------------------------------------------------
def test_seller_page_groups_the_operators_shops_and_says_why(app):
    c, _ = client(app, "inv")
    r = c.get("/seller/shopee/op-a")
    assert r.status_code == 200
    op = re.search(r'<section class="card" id="operator">(.*?)</section>', r.text, re.S).group(1)
    rows = dict(re.findall(r'<tr class="strength-(\w+)" data-shop="([^"]+)"', op)[i][::-1]
                for i in range(len(re.findall(r'<tr class="strength-', op))))
    assert rows == {"lazada:op-c": "strong", "shopee:op-d": "strong", "shopee:op-g": "strong", "lazada:op-b": "medium",
                    "lazada:op-e": "weak"}
    assert "0812345678" in op and "voltpower" in op and "somchai.volt@example.com" in op and "สมชายไฟฟ้า" in op
    assert "lazada:op-c" in op                                        # op-d is linked through op-c: said so
    assert HOSTILE_NAME not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in op
    # the operator: every shop but the photo-only one, their listings together
    assert re.search(r'id="operator-totals">[^<]*\b5\b', op)
    section = re.search(r'id="operator-listings">(.*?)</section>', r.text, re.S).group(1)
    listed = [unquote(k) for k in re.findall(r'data-href="/listing/([^"]+)"', section)]
    assert sorted(listed) == sorted(f"{mp}:{sid}-{j}" for mp, sid, *_ in SHOPS if sid not in ("op-e", "op-f") for j in (0, 1))


def test_seller_api_gives_the_links_and_the_operators_totals(app):
    h = token_for(app, "inv")
    d = TestClient(app).get("/api/v1/sellers/lazada/op-c", headers=h).json()
    assert d["contacts"] == ["line:voltpower", "phone:0812345678"]
    got = {f"{x['marketplace']}:{x['seller_id']}": x["strength"] for x in d["linked"]}
    assert got["shopee:op-a"] == "strong" and got["shopee:op-d"] == "strong" and "shopee:op-f" not in got
    assert "items" not in d["linked"][0]
    assert d["operator"]["listings"] == 2 * d["operator"]["shops"] and d["operator"]["marketplaces"] == ["lazada", "shopee"]
    r = TestClient(app).get("/api/v1/export/operator/lazada/op-c.csv", headers=h)
    assert len(read_csv(r)) == d["operator"]["listings"]
    # a shop with nothing in common with anyone
    page = client(app, "inv")[0].get("/seller/shopee/op-f").text
    assert 'id="no-links"' in page and 'id="operator-listings"' not in page


# ---- 3. exports of every list ------------------------------------------------------------------
def test_audit_log_export_keeps_the_pages_filters_and_is_formula_safe(app):
    db = app.state.appdb
    c, _ = client(app, "adm")
    # a failed login with a formula for a user name: the audit log keeps what was typed
    t = TestClient(app)
    tok = re.search(r'name="csrf" value="([^"]+)"', t.get("/login").text).group(1)
    t.post("/login", data={"username": "=HYPERLINK(1)", "password": "x", "csrf": tok}, follow_redirects=False)
    page = c.get("/audit?action=login.failed").text
    href = re.search(r'id="export-csv" href="([^"]+)"', page).group(1)
    assert href == "/export/audit.csv?action=login.failed"
    rows = read_csv(c.get(href))
    assert rows and {r["action"] for r in rows} == {"login.failed"}
    assert len(rows) == len(db.audit_rows(action="login.failed", limit=10_000))
    evil = [r for r in rows if "HYPERLINK" in r["target"]]
    assert evil and all(not r["target"].startswith("=") for r in rows)
    x = read_xlsx(c.get("/export/audit.xlsx?action=login.failed"))
    assert [r["id"] for r in x] == [int(r["id"]) for r in rows]
    assert db.audit_rows(action="export.csv", user="adm")[0]["target"] == "audit"
    # the whole log, past the page's 200 rows
    for i in range(210):
        db.audit("test.bulk", f"n:{i}")
    assert len(read_csv(c.get("/export/audit.csv?action=test.bulk"))) == 210


def test_users_export_and_dashboard_export(app):
    c, _ = client(app, "adm")
    page = c.get("/users").text
    assert 'href="/export/users.csv"' in page and 'href="/export/users.xlsx"' in page
    rows = {r["username"]: r for r in read_csv(c.get("/export/users.csv"))}
    assert {"off", "inv", "part", "adm", "formula"} <= set(rows) and rows["off"]["role"] == "officer"
    assert rows["formula"]["display_name"].startswith("'=HYPERLINK")
    assert "password" not in ",".join(rows["off"]) and "argon2" not in c.get("/export/users.csv").text
    x = {r["username"]: r for r in read_xlsx(c.get("/export/users.xlsx"))}
    assert x["formula"]["display_name"].startswith("'=HYPERLINK")
    o, _ = client(app, "off")
    d = o.get("/api/v1/dashboard").json()
    rows = read_csv(o.get("/export/dashboard.csv"))
    per_std = sum(int(r["count"]) for r in rows if r["table"] == "flags_per_day_standard")
    assert per_std == sum(sum(v) for v in d["per_standard"].values()) > 0
    assert {r["table"] for r in rows} >= {"flags_per_day_marketplace", "flags_per_day_standard", "flags_by_standard",
                                         "backlog_age", "takedown"}
    assert len(read_xlsx(o.get("/export/dashboard.xlsx"))) == len(rows)
    assert o.get("/export/dashboard.pdf").status_code == 404


@pytest.mark.parametrize("path", ["/export/audit.csv", "/export/users.xlsx", "/api/v1/export/audit.xlsx",
                                  "/api/v1/export/users.csv"])
def test_audit_and_user_exports_are_for_administrators_only(app, path):
    for who in ("off", "inv", "part"):
        c, _ = client(app, who)
        assert c.get(path).status_code == 403
    assert client(app, "adm")[0].get(path).status_code == 200


def test_every_list_page_links_its_csv_and_xlsx_export(app):
    """Queue, search, seller, operator, audit, users, dashboard: each page links both formats, and
    each link answers with the list under the same filters."""
    c, _ = client(app, "adm")
    pages = ["/?marketplace=shopee", "/search?q=ปลั๊ก&flagged=1", "/seller/shopee/op-a", "/audit?who=adm", "/users",
             "/dashboard"]
    for p in pages:
        html = c.get(p).text
        links = re.findall(r'href="(/export/[^"]+\.(?:csv|xlsx)[^"]*)"', html)
        assert {lk.split("?")[0].rsplit(".", 1)[1] for lk in links} == {"csv", "xlsx"}, p
        for lk in links:
            lk = lk.replace("&amp;", "&")
            assert c.get(lk).status_code == 200, lk
    q = read_csv(c.get(re.search(r'href="(/export/queue\.csv[^"]*)"', c.get("/?marketplace=shopee").text).group(1)
                       .replace("&amp;", "&")))
    assert q and {r["marketplace"] for r in q} == {"shopee"}


# ---- 4. the API: everything the account page does, with roles ----------------------------------
def test_tokens_by_the_user_and_by_an_administrator(app):
    api = TestClient(app)
    h = token_for(app, "off")
    mine = api.get("/api/v1/me/tokens", headers=h).json()
    assert mine and all("token" not in t and "token_hash" not in t for t in mine)
    r = api.post("/api/v1/me/tokens", json={"name": "script"}, headers=h)   # a token makes another
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    new = r.json()
    h2 = {"Authorization": "Bearer " + new["token"]}
    assert api.get("/api/v1/me", headers=h2).json()["username"] == "off"
    assert api.delete(f"/api/v1/me/tokens/{new['id']}", headers=h).status_code == 204
    assert api.get("/api/v1/me", headers=h2).status_code == 401
    assert api.delete(f"/api/v1/me/tokens/{new['id']}", headers=h).status_code == 404   # already revoked
    # someone else's token is not one's own to revoke
    token_for(app, "inv")
    inv_tokens = app.state.appdb.tokens(app.state.appdb.user("inv"))
    assert api.delete(f"/api/v1/me/tokens/{inv_tokens[0]['id']}", headers=h).status_code == 404
    # an administrator lists and revokes a user's tokens; the audit log says who did it
    a = token_for(app, "adm")
    listed = api.get("/api/v1/users/off/tokens", headers=a).json()
    live = [t for t in listed if not t["revoked_at"]]
    assert [t["id"] for t in live] == [t["id"] for t in mine]
    assert api.delete(f"/api/v1/users/off/tokens/{live[0]['id']}", headers=a).status_code == 204
    assert api.get("/api/v1/me", headers=h).status_code == 401
    rec = app.state.appdb.audit_rows(target="user:off", action="token.revoke")[0]
    assert rec["username"] == "adm" and rec["after"] == {"token_id": live[0]["id"]}
    assert api.get("/api/v1/users/off/tokens", headers=token_for(app, "off")).status_code == 403
    assert api.get("/api/v1/users/nobody/tokens", headers=a).status_code == 404


def test_password_change_and_reset_through_the_api(app):
    db = app.state.appdb
    db.add_user("pwuser", "pwuser-pass-1", "investigator")
    PW["pwuser"] = "pwuser-pass-1"
    c, csrf = login(app, "pwuser")
    api = TestClient(app)
    h = {"Authorization": "Bearer " + c.post("/api/v1/me/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf}).json()["token"]}
    assert api.post("/api/v1/me/password", json={"current": "wrong", "new": "pwuser-pass-2"}, headers=h).status_code == 403
    assert api.post("/api/v1/me/password", json={"current": "pwuser-pass-1", "new": "aaaaaaaaaa"}, headers=h).status_code == 400
    assert api.post("/api/v1/me/password", json={"current": "pwuser-pass-1", "new": "short"}, headers=h).status_code == 422
    assert api.post("/api/v1/me/password", json={"current": "pwuser-pass-1", "new": "pwuser-pass-2"}, headers=h).status_code == 204
    assert c.get("/api/v1/me").status_code == 401                  # the session ended
    assert api.get("/api/v1/me", headers=h).status_code == 200     # the token did not
    assert db.authenticate("pwuser", "pwuser-pass-2")[0] == "ok"
    a = token_for(app, "adm")
    assert api.put("/api/v1/users/pwuser/password", json={"password": "pwuser-pass-3"}, headers=a).status_code == 204
    assert db.authenticate("pwuser", "pwuser-pass-3")[0] == "ok"
    assert api.put("/api/v1/users/pwuser/password", json={"password": "pwuser-pass-4"}, headers=h).status_code == 403
    assert api.put("/api/v1/users/nobody/password", json={"password": "pwuser-pass-4"}, headers=a).status_code == 404
    assert [r["username"] for r in db.audit_rows(target="user:pwuser", action="user.password")] == ["adm", "pwuser"]
    # the language, as the pages' switch
    assert api.patch("/api/v1/me", json={"lang": "en"}, headers=h).json()["lang"] == "en"
    assert api.patch("/api/v1/me", json={"lang": "fr"}, headers=h).status_code == 422


def test_evidence_file_through_the_api(app, data):
    import hashlib

    st = app.state.store
    folder = data.evidence_dir / "shopee" / "op-a-0" / "x"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "page.html").write_text("<html><script>alert(1)</script></html>")
    st.add_evidence("shopee:op-a-0", "html", str((folder / "page.html").relative_to(data.home)),
                    hashlib.sha256((folder / "page.html").read_bytes()).hexdigest(), 38, NOW)
    h = token_for(app, "inv")
    n = len(st.evidence("shopee:op-a-0")) - 1
    r = TestClient(app).get(f"/api/v1/listings/shopee:op-a-0/evidence/{n}", headers=h)
    assert r.status_code == 200 and "sandbox" in r.headers["content-security-policy"] and "alert(1)" in r.text
    assert TestClient(app).get(f"/api/v1/listings/shopee:op-a-0/evidence/{n + 1}", headers=h).status_code == 404
    assert TestClient(app).get(f"/api/v1/listings/shopee:op-a-0/evidence/{n}",
                               headers=token_for(app, "part")).status_code == 403


# every page route (method, path) and the API operation that does the same; a new page without its
# API counterpart fails here
PAGE_TO_API = {
    ("GET", "/"): ("GET", "/api/v1/queue"), ("GET", "/queue"): ("GET", "/api/v1/queue"),
    ("GET", "/listing/{key:path}"): ("GET", "/api/v1/listings/{key}"),
    ("GET", "/listing/{key:path}/evidence/{eid}"): ("GET", "/api/v1/listings/{key}/evidence/{eid}"),
    ("GET", "/listing/{key:path}/evidence.zip"): ("GET", "/api/v1/listings/{key}/evidence.zip"),
    ("POST", "/decide"): ("POST", "/api/v1/decisions"),
    ("GET", "/search"): ("GET", "/api/v1/listings"),
    ("POST", "/search/save"): ("POST", "/api/v1/saved-searches"),
    ("POST", "/search/saved/{sid}/delete"): ("DELETE", "/api/v1/saved-searches/{sid}"),
    ("GET", "/seller/{marketplace}/{seller_id:path}"): ("GET", "/api/v1/sellers/{marketplace}/{seller_id}"),
    ("GET", "/dashboard"): ("GET", "/api/v1/dashboard"),
    ("GET", "/audit"): ("GET", "/api/v1/audit"),
    ("GET", "/users"): ("GET", "/api/v1/users"),
    ("POST", "/users"): ("POST", "/api/v1/users"),
    ("POST", "/users/{name}/{op}"): ("PATCH", "/api/v1/users/{name}"),
    ("GET", "/account"): ("GET", "/api/v1/me/tokens"),
    ("POST", "/account/tokens"): ("POST", "/api/v1/me/tokens"),
    ("POST", "/account/tokens/{tid}/revoke"): ("DELETE", "/api/v1/me/tokens/{tid}"),
    ("POST", "/account/password"): ("POST", "/api/v1/me/password"),
    ("GET", "/lang/{code}"): ("PATCH", "/api/v1/me"),
    ("GET", "/export/queue.{fmt}"): ("GET", "/api/v1/export/queue.{fmt}"),
    ("GET", "/export/search.{fmt}"): ("GET", "/api/v1/export/search.{fmt}"),
    ("GET", "/export/seller/{marketplace}/{seller_id:path}.{fmt}"): ("GET", "/api/v1/export/seller/{marketplace}/{seller_id}.{fmt}"),
    ("GET", "/export/operator/{marketplace}/{seller_id:path}.{fmt}"):
        ("GET", "/api/v1/export/operator/{marketplace}/{seller_id}.{fmt}"),
    ("GET", "/export/audit.{fmt}"): ("GET", "/api/v1/export/audit.{fmt}"),
    ("GET", "/export/users.{fmt}"): ("GET", "/api/v1/export/users.{fmt}"),
    ("GET", "/export/dashboard.{fmt}"): ("GET", "/api/v1/export/dashboard.{fmt}"),
    ("POST", "/export/case.zip"): ("POST", "/api/v1/export/case.zip"),
    ("GET", "/export/evaluation.jsonl"): ("GET", "/api/v1/export/evaluation.jsonl"),
}
# pages that are not actions on data: signing in and out with a password (the API uses tokens), the docs
NOT_IN_API = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/api/docs")}


def test_every_page_action_has_its_api_operation_in_the_openapi_document(app):
    from review.pages import router as pages

    page_routes = {(m, r.path) for r in pages.routes for m in r.methods if m != "HEAD"}
    assert page_routes - NOT_IN_API - set(PAGE_TO_API) == set(), "a page without its API operation"
    spec = TestClient(app).get("/api/openapi.json").json()
    ops = {(m.upper(), p): op for p, v in spec["paths"].items() for m, op in v.items()}
    for page, api in PAGE_TO_API.items():
        assert api in ops, (page, api)
        assert ops[api]["security"] == [{"personal token": []}], api
        assert ops[api].get("summary"), api


NEW_INTERNAL = ["/api/v1/sellers/shopee/op-a", "/api/v1/export/operator/shopee/op-a.csv", "/api/v1/export/dashboard.csv",
                "/api/v1/listings/shopee:op-a-0/evidence/0", "/export/operator/shopee/op-a.xlsx", "/export/dashboard.xlsx"]


@pytest.mark.parametrize("path", NEW_INTERNAL)
def test_a_partner_sees_nothing_internal_on_the_new_routes(app, path):
    c, _ = client(app, "part")
    r = c.get(path)
    assert r.status_code == 403 and "สมชาย" not in r.text
    api = TestClient(app)
    assert api.get(path, headers=token_for(app, "part")).status_code == 403
    r = api.get(path, follow_redirects=False)
    assert r.status_code == (401 if path.startswith("/api/") else 303)


def test_a_partner_manages_only_their_own_account(app):
    api = TestClient(app)
    h = token_for(app, "part")
    assert api.get("/api/v1/me/tokens", headers=h).status_code == 200
    for method, path, body in (("get", "/api/v1/users/off/tokens", None), ("delete", "/api/v1/users/off/tokens/1", None),
                               ("put", "/api/v1/users/off/password", {"password": "partner-pass-9"}),
                               ("get", "/api/v1/export/users.csv", None)):
        r = getattr(api, method)(path, headers=h, **({"json": body} if body else {}))
        assert r.status_code == 403, (method, path)


def test_an_investigator_cannot_decide_through_any_way(app):
    h = token_for(app, "inv")
    key = "shopee:op-a-0"
    api = TestClient(app)
    assert api.post(f"/api/v1/listings/{key}/decisions", json={"action": "confirm"}, headers=h).status_code == 403
    assert api.post("/api/v1/decisions", json={"action": "confirm", "keys": [key]}, headers=h).status_code == 403
    c, csrf = client(app, "inv")
    assert c.post("/decide", data={"key": key, "action": "confirm", "csrf": csrf}, follow_redirects=False).status_code == 403
    assert app.state.store.get(key)["review_status"] == "new"
