"""Partner administration through the JSON API (/api/v1/partners), as a script with a personal API token
would do it, and the partners' statuses in the review API's listing endpoint."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from alerts_helpers import ingest, listing
from fastapi.testclient import TestClient

from review.app import create_app
from review.db import open_appdb

ROLES = {"padmin": "partner_admin", "boss": "admin", "off": "officer", "inv": "investigator"}


@pytest.fixture(scope="module")
def env(tmp_path_factory, world_registry):
    from listings.events import open_events
    from listings.store import open_store
    from settings import load_settings

    s = load_settings(home=tmp_path_factory.mktemp("aa") / "home", environ={})
    s.ensure_home()
    st, ev = open_store(s), open_events(s)
    for i in range(4):
        ingest(st, ev, listing(i, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง", marketplace="shopee" if i % 2 else "lazada"),
               world_registry)
    st.close()
    ev.close()
    db = open_appdb(s)
    tokens = {}
    for name, role in ROLES.items():
        u = db.add_user(name, f"{name}-password-1", role)
        tokens[name] = {"Authorization": f"Bearer {db.new_token(u, 'script')[1]}"}
    db.close()
    app = create_app(s)
    with TestClient(app) as c:
        yield app, c, tokens


def test_who_may_use_it(env):
    _app, c, t = env
    assert c.get("/api/v1/partners").status_code == 401
    assert c.get("/api/v1/partners", headers=t["inv"]).status_code == 403
    assert c.get("/api/v1/partners", headers=t["off"]).status_code == 403
    assert c.get("/api/v1/partners", headers=t["padmin"]).status_code == 200
    assert c.get("/api/v1/partners", headers=t["boss"]).status_code == 200  # an administrator passes every check
    r = c.post("/api/v1/partners", json={"id": "nope"}, headers=t["off"])
    assert r.status_code == 403
    # a partner's own key is no user: it reaches its feed, never the administration
    created = c.post("/api/v1/partners", json={"id": "pk", "backfill": False}, headers=t["padmin"]).json()
    pk = {"Authorization": f"Bearer {created['api_key']}"}
    assert c.get("/api/v1/partner", headers=pk).status_code == 200
    assert c.get("/api/v1/partners", headers=pk).status_code == 401


def test_a_session_needs_the_csrf_token(env):
    app, _, _ = env
    c = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    assert c.post("/login", data={"username": "padmin", "password": "padmin-password-1", "csrf": token, "next": "/"},
                  follow_redirects=False).status_code == 303
    csrf = re.search(r'data-csrf="([^"]+)"', c.get("/account").text).group(1)
    assert c.post("/api/v1/partners", json={"id": "sess"}).status_code == 403
    assert c.post("/api/v1/partners", json={"id": "sess"}, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_administer_a_partner_end_to_end(env):
    app, c, t = env
    h = t["padmin"]
    body = {"id": "shopee", "name": "Shopee Thailand", "kind": "platform", "operates": ["shopee"],
            "webhook_url": "https://hooks.shopee.example/tiswatch", "filters": {"min_risk": 0}}
    r = c.post("/api/v1/partners", json=body, headers=h)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["api_key"].startswith("twk_") and made["webhook_secret"].startswith("whsec_")
    assert made["alerts_opened"] == 2  # its own marketplace only: the two shopee listings
    p = made["partner"]
    assert (p["kind"], p["operates"], p["filters"]["min_risk"], p["filters"]["marketplaces"]) == ("platform", ["shopee"], 0, [])
    assert c.post("/api/v1/partners", json=body, headers=h).status_code == 409
    one = c.get("/api/v1/partners/shopee", headers=h)
    assert one.status_code == 200 and made["api_key"] not in one.text and made["webhook_secret"] not in one.text
    assert one.json()["keys"][0]["key_id"] in made["api_key"] and one.json()["open_alerts"] == 2
    assert c.get("/api/v1/partners/nobody", headers=h).status_code == 404

    # change filters: only the fields given; the change applies at once
    r = c.patch("/api/v1/partners/shopee", json={"filters": {"standards": ["166"]}}, headers=h)
    assert r.status_code == 200 and r.json()["alerts_changed"] == 2  # both retracted: outside the filters now
    f = r.json()["partner"]["filters"]
    assert f["standards"] == ["166"] and f["min_risk"] == 0  # min_risk kept
    bad = c.patch("/api/v1/partners/shopee", json={"filters": {"standards": ["plugs"]}}, headers=h)
    assert bad.status_code == 400 and "'plugs' is not a TIS number" in bad.json()["detail"]
    bad = c.patch("/api/v1/partners/shopee", json={"webhook_url": "https://169.254.169.254/latest"}, headers=h)
    assert bad.status_code == 400 and "169.254.169.254 is a link-local address" in bad.json()["detail"]
    bad = c.patch("/api/v1/partners/shopee", json={"kind": "platform", "operates": []}, headers=h)
    assert bad.status_code == 400 and "operates" in bad.json()["detail"]
    assert c.patch("/api/v1/partners/shopee", json={"colour": "red"}, headers=h).status_code == 422
    r = c.patch("/api/v1/partners/shopee", json={"filters": {"standards": []}}, headers=h)
    assert r.json()["alerts_changed"] == 2  # back in

    # keys and secrets
    r = c.post("/api/v1/partners/shopee/rotate-key", json={"grace_hours": 0}, headers=h)
    new_key = r.json()["api_key"]
    assert c.get("/api/v1/partner", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    assert c.get("/api/v1/partner", headers={"Authorization": f"Bearer {made['api_key']}"}).status_code == 401
    r = c.post("/api/v1/partners/shopee/rotate-secret", headers=h)
    assert r.status_code == 200 and r.json()["webhook_secret"].startswith("whsec_") and r.json()["grace_hours"] == 24
    # a partner of this test's own (the tests of this module may run in any worker, in any order)
    assert c.post("/api/v1/partners", json={"id": "nohook", "backfill": False}, headers=h).status_code == 201
    assert c.post("/api/v1/partners/nohook/rotate-secret", headers=h).status_code == 400  # no webhook URL

    # deliveries, dead letters, replay
    d = c.get("/api/v1/partners/shopee/deliveries", headers=h).json()
    assert d["stats"]["pending"] == 6 and len(d["items"]) == 6  # 2 opened, 2 retracted, 2 opened again
    svc = app.state.alerts
    now = datetime.now(UTC)
    assert svc.store.expire("shopee", now + timedelta(hours=100), now) == 6
    dead = c.get("/api/v1/partners/shopee/dead-letters", headers=h).json()["items"]
    assert len(dead) == 6 and {x["state"] for x in dead} == {"dead"}
    one = c.get(f"/api/v1/partners/shopee/deliveries/{dead[0]['message_id']}", headers=h).json()
    assert one["msg_id"] == dead[0]["msg_id"] and one["attempts_detail"] == []
    assert c.get(f"/api/v1/partners/nohook/deliveries/{dead[0]['message_id']}", headers=h).status_code == 404
    r = c.post("/api/v1/partners/shopee/replay", json={"message_ids": [dead[0]["msg_id"]]}, headers=h)
    assert r.json() == {"queued": 1}
    assert c.post("/api/v1/partners/shopee/replay", headers=h).json() == {"queued": 5}
    assert c.get("/api/v1/partners/shopee/deliveries?state=pending", headers=h).json()["stats"]["dead"] == 0

    # disable and enable
    assert c.post("/api/v1/partners/shopee/disable", headers=h).json()["partner"]["enabled"] is False
    assert c.get("/api/v1/partner", headers={"Authorization": f"Bearer {new_key}"}).status_code == 401
    assert c.post("/api/v1/partners/shopee/enable", headers=h).json()["partner"]["enabled"] is True

    # every change is in the audit log, by whom, as from the pages
    rows = app.state.appdb.audit_rows(target="partner:shopee")
    assert [r["action"] for r in reversed(rows)] == [
        "partner.add", "partner.update", "partner.update", "partner.rotate_key", "partner.rotate_secret",
        "partner.replay", "partner.replay", "partner.disable", "partner.enable"]
    assert {r["username"] for r in rows} == {"padmin"}
    assert all(made["api_key"] not in str(r) and made["webhook_secret"] not in str(r) for r in rows)


def test_the_listing_endpoint_shows_what_partners_were_sent_and_reported(env):
    _app, c, t = env
    made = c.post("/api/v1/partners", json={"id": "etda", "kind": "etda", "filters": {"min_risk": 0}},
                  headers=t["padmin"]).json()
    pk = {"Authorization": f"Bearer {made['api_key']}"}
    item = c.get("/api/v1/feeds/alerts", headers=pk).json()["items"][0]["data"]
    key, aid = item["listing"]["key"], item["alert_id"]
    assert c.post(f"/api/v1/alerts/{aid}/status", json={"status": "removed"}, headers=pk).status_code == 201
    r = c.get(f"/api/v1/listings/{key}", headers=t["off"])
    assert r.status_code == 200
    mine = [p for p in r.json()["partners"] if p["partner"] == "etda"]
    assert len(mine) == 1
    assert (mine[0]["alert_id"], mine[0]["state"], mine[0]["basis"], mine[0]["partner_name"]) == (aid, "open", "automatic", "etda")
    assert [(f["status"], f["verification"]) for f in mine[0]["feedback"]] == [("removed", "pending")]
    assert c.get(f"/api/v1/listings/{key}", headers=t["inv"]).json()["partners"]  # investigators see it too
    assert c.get(f"/api/v1/listings/{key}", headers=t["padmin"]).status_code == 403  # as before: internal roles
