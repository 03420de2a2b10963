"""Partner administration in the review app, and the whole loop through real officers' decisions:
an officer confirms on the listing page, the partner is alerted, reports back, the listing shows it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from alerts_helpers import ingest, listing
from fastapi.testclient import TestClient

from review.app import create_app
from review.db import open_appdb

PW = {"part": "partner-pass-1", "off": "officer-pass-1", "inv": "investig-pass-1"}


@pytest.fixture(scope="module")
def app(tmp_path_factory, world_registry):
    from listings.events import open_events
    from listings.store import open_store
    from settings import load_settings

    s = load_settings(home=tmp_path_factory.mktemp("ap") / "home", environ={})
    s.ensure_home()
    st, ev = open_store(s), open_events(s)
    for i in range(6):
        ingest(st, ev, listing(i, "<script>alert(1)</script> ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), world_registry)
    st.close()
    ev.close()
    db = open_appdb(s)
    for name, role in (("part", "partner_admin"), ("off", "officer"), ("inv", "investigator")):
        db.add_user(name, PW[name], role)
    db.close()
    return create_app(s)


_C: dict[str, tuple[TestClient, str]] = {}


def client(app, name):
    if name not in _C:
        c = TestClient(app)
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={"username": name, "password": PW[name], "csrf": token, "next": "/"}, follow_redirects=False)
        assert r.status_code == 303
        _C[name] = (c, re.search(r'data-csrf="([^"]+)"', c.get("/account").text).group(1))
    return _C[name]


def test_who_may_administer_partners(app):
    assert TestClient(app).get("/partners", follow_redirects=False).status_code == 303  # to the login page
    c, _ = client(app, "inv")
    assert c.get("/partners").status_code == 403
    c, _ = client(app, "part")
    r = c.get("/partners")
    assert r.status_code == 200 and 'id="add-partner"' in r.text
    assert c.get("/", follow_redirects=False).headers["location"] == "/partners"  # a partner admin's home


def test_add_partner_shows_secrets_once_and_the_loop_through_officers(app):
    c, csrf = client(app, "part")
    form = {"partner_id": "etda", "name": "<b>ETDA</b>", "webhook_url": "https://hooks.etda.example/t", "min_risk": "70",
            "scopes": ["alerts:read", "alerts:feedback"], "verdicts": ["unlicensed", "mislabeled"], "backfill": "true"}
    assert c.post("/partners", data=form).status_code == 403  # no CSRF token
    r = c.post("/partners", data={**form, "csrf": csrf})
    assert r.status_code == 200
    key = re.search(r'id="api-key">([^<]+)<', r.text).group(1)
    secret = re.search(r'id="webhook-secret">([^<]+)<', r.text).group(1)
    assert key.startswith("twk_") and secret.startswith("whsec_") and "&lt;b&gt;ETDA&lt;/b&gt;" in r.text
    page = c.get("/partners/etda").text
    assert key not in page and secret not in page and "api-key" not in page  # shown once only
    assert c.post("/partners", data={**form, "csrf": csrf}).status_code == 400  # the id is taken

    api = TestClient(app)
    h = {"Authorization": f"Bearer {key}"}
    items = api.get("/api/v1/feeds/alerts", headers=h).json()["items"]
    assert len(items) == 6  # the backfill: every current flag above the minimum
    assert all("<script>" in m["data"]["listing"]["title"] for m in items)  # data, as it is (JSON)

    # an officer confirms one on the listing page, with a note that must stay internal
    oc, ocsrf = client(app, "off")
    target = items[0]["data"]["listing"]["key"]
    r = oc.post("/decide", data={"key": target, "action": "confirm", "note": "INTERNAL-NOTE-991", "csrf": ocsrf,
                                 "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    svc = app.state.alerts
    svc.engine.process_all()
    new = api.get("/api/v1/feeds/alerts", params={"added_after": 6}, headers=h)
    assert [m["type"] for m in new.json()["items"]] == ["alert.updated"]
    assert new.json()["items"][0]["data"]["basis"] == "confirmed" and "INTERNAL-NOTE-991" not in new.text
    assert "off" not in re.findall(r'"by"\s*:\s*"([^"]*)"', new.text)

    # the partner reports it removed; officers see it on the listing page
    aid = new.json()["items"][0]["data"]["alert_id"]
    assert api.post(f"/api/v1/alerts/{aid}/status", json={"status": "rejected", "reason": "<i>ขายของแท้</i>"},
                    headers=h).status_code == 201
    page = oc.get(f"/listing/{target}").text
    panel = page[page.index('id="partner-panel"'):]
    assert "&lt;b&gt;ETDA&lt;/b&gt;" in panel and "&lt;i&gt;ขายของแท้&lt;/i&gt;" in panel and "<i>" not in panel


def test_edit_rotate_disable(app):
    c, csrf = client(app, "part")
    assert c.post("/partners", data={"partner_id": "p2", "name": "P2", "csrf": csrf, "min_risk": "70"}).status_code == 200
    r = c.post("/partners/p2", data={"csrf": csrf, "name": "P2", "marketplaces": "lazada, shopee", "standards": "2432",
                                     "min_risk": "90", "concurrency": "2"})
    assert r.status_code == 200
    p = app.state.alerts.store.partner("p2")
    assert p.filters.marketplaces == ("lazada", "shopee") and p.filters.standards == ("2432",) and p.filters.min_risk == 90
    bad = c.post("/partners/p2", data={"csrf": csrf, "standards": "not-a-standard", "min_risk": "10"})
    assert bad.status_code == 400 and "not a TIS number" in bad.text
    old_key = app.state.alerts.store.rotate_key("p2", app.state.alerts.clock.now())  # a key we know
    r = c.post("/partners/p2/rotate-key", data={"csrf": csrf, "grace_hours": "1"})
    new_key = re.search(r'id="api-key">([^<]+)<', r.text).group(1)
    api = TestClient(app)
    for k in (old_key, new_key):
        assert api.get("/api/v1/partner", headers={"Authorization": f"Bearer {k}"}).status_code == 200
    assert c.post("/partners/p2/enabled", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert api.get("/api/v1/partner", headers={"Authorization": f"Bearer {new_key}"}).status_code == 401
    assert "id=\"enable\"" in c.get("/partners/p2").text


def test_dead_letters_are_listed_and_replayed(app):
    c, csrf = client(app, "part")
    assert c.post("/partners", data={"partner_id": "dl", "name": "DL", "csrf": csrf, "min_risk": "0", "backfill": "true",
                                     "webhook_url": "https://dl.example/hook"}).status_code == 200
    svc = app.state.alerts
    now = datetime.now(UTC)
    n = svc.store.expire("dl", now + timedelta(hours=100), now)  # the retry window is over for all of them
    assert n == 6
    page = c.get("/partners/deliveries?state=dead").text
    dead = re.findall(r"<code>(msg_[0-9a-f]+)</code>", page)
    assert len(dead) == n  # (only this partner's are dead)
    r = c.post("/partners/dl/replay", data={"csrf": csrf, "msg_id": dead[0], "back": "deliveries"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/partners/deliveries?state=dead")
    assert svc.store.pending_count("dl") == 1
    c.post("/partners/dl/replay", data={"csrf": csrf})
    assert svc.store.pending_count("dl") == n and svc.store.delivery_stats("dl")["dead"] == 0
    mid = svc.store.deliveries("dl", None, 1)[0]["message_id"]
    assert c.get(f"/partners/deliveries/{mid}").status_code == 200
    assert c.get("/partners/deliveries/999999").status_code == 404


def test_kind_and_marketplaces_operated_on_the_pages(app):
    c, csrf = client(app, "part")
    page = c.get("/partners").text
    assert 'name="kind"' in page and 'value="platform"' in page and 'name="operates"' in page
    bad = c.post("/partners", data={"partner_id": "lz", "csrf": csrf, "min_risk": "70", "kind": "platform"})
    assert bad.status_code == 400 and "needs the marketplaces it operates" in bad.text
    assert c.post("/partners", data={"partner_id": "lz", "csrf": csrf, "min_risk": "70", "kind": "platform",
                                     "operates": "lazada, lazmall"}).status_code == 200
    p = app.state.alerts.store.partner("lz")
    assert (p.kind, p.operates) == ("platform", ("lazada", "lazmall"))
    r = c.post("/partners/lz", data={"csrf": csrf, "name": "LZ", "min_risk": "70", "kind": "etda", "operates": "lazada"})
    assert r.status_code == 200 and app.state.alerts.store.partner("lz").kind == "etda"
    assert app.state.alerts.store.partner("lz").operates == ()  # only a platform operates marketplaces
    assert "selected>" in r.text and "kind.etda" not in r.text
    audit = app.state.appdb.audit_rows(target="partner:lz")
    assert audit[0]["action"] == "partner.update" and audit[0]["after"]["kind"] == "etda" and audit[0]["before"]["kind"] == "platform"


def test_partner_and_delivery_lists_export_as_csv_and_xlsx(app):
    """Every list of the app has CSV and XLSX: the partners table and the deliveries under the page's filters.
    A partner named like a formula is written as text; no key or secret is ever in the export."""
    import csv
    import io

    from openpyxl import load_workbook

    c, csrf = client(app, "part")
    r = c.post("/partners", data={"partner_id": "xl", "name": "=HYPERLINK(\"http://x\")", "csrf": csrf, "min_risk": "0",
                                  "backfill": "true", "webhook_url": "https://xl.example/hook"})
    assert r.status_code == 200
    key = re.search(r"(twk_[A-Za-z0-9_\-]+)", r.text)
    page = c.get("/partners").text
    assert 'href="/partners/export.csv"' in page and 'href="/partners/export.xlsx"' in page
    r = c.get("/partners/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
    assert rows["xl"]["name"] == "'=HYPERLINK(\"http://x\")" and rows["xl"]["open_alerts"] == "6"
    assert rows["xl"]["pending"] == "6" and rows["xl"]["min_risk"] == "0"
    assert key and key.group(1) not in r.text and "whsec_" not in r.text  # shown once on the page, never exported
    wb = load_workbook(io.BytesIO(c.get("/partners/export.xlsx").content))
    ws = wb.active
    head = [x.value for x in ws[1]]
    ids = [row[head.index("id")] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert "xl" in ids and len(ids) == len(rows)

    page = c.get("/partners/deliveries?state=pending&partner=xl").text
    assert "/partners/deliveries/export.csv?state=pending&amp;partner=xl" in page
    r = c.get("/partners/deliveries/export.csv?state=pending&partner=xl")
    got = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(got) == 6 and {g["partner_id"] for g in got} == {"xl"} and {g["state"] for g in got} == {"pending"}
    assert all(g["msg_id"].startswith("msg_") for g in got)
    assert len(list(load_workbook(io.BytesIO(c.get("/partners/deliveries/export.xlsx?state=pending&partner=xl").content))
                    .active.iter_rows(min_row=2))) == 6
    assert c.get("/partners/deliveries/export.csv?state=nonsense").status_code == 400
    assert c.get("/partners/export.pdf").status_code == 404
    inv, _ = client(app, "inv")
    assert inv.get("/partners/export.csv").status_code == 403
    assert inv.get("/partners/deliveries/export.csv").status_code == 403
