"""The partner API through the real app: keys and scopes, the pull feed and its cursor under concurrent
writes, JSON/Atom/CSV, feedback, signed evidence links."""

import csv
import hashlib
import io
import threading
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from alerts_helpers import decide, ingest, listing, verdict
from fastapi.testclient import TestClient

from alerts.clock import FakeClock
from alerts.rules import Filters
from alerts.service import open_service
from review.app import create_app


@pytest.fixture
def env(home):
    app = create_app(home)
    svc = open_service(home, clock=FakeClock(), listings=app.state.store)
    app.state.alerts = svc
    with TestClient(app) as client:
        yield app, svc, client
    svc.store.close()
    svc.events.close()


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_keys_and_scopes(env):
    _, svc, c = env
    now = svc.clock.now()
    etda = svc.store.add_partner("etda", "ETDA", now).api_key
    fb_only = svc.store.add_partner("fb", "FB", now, scopes=("alerts:feedback",)).api_key
    assert c.get("/api/v1/feeds/alerts").status_code == 401
    r = c.get("/api/v1/feeds/alerts", headers=auth("twk_nothing_here"))
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]
    assert c.get("/api/v1/feeds/alerts", headers=auth(etda)).status_code == 200
    assert c.get("/api/v1/feeds/alerts", headers={"X-API-Key": etda}).status_code == 200
    assert c.get("/api/v1/feeds/alerts", headers=auth(etda[:-2] + "xx")).status_code == 401
    assert c.get("/api/v1/feeds/alerts", headers=auth(fb_only)).status_code == 403
    me = c.get("/api/v1/partner", headers=auth(etda)).json()
    assert me["id"] == "etda" and me["scopes"] == ["alerts:read", "alerts:feedback"]
    # rotation with a grace period: both keys work, then only the new one
    new = svc.store.rotate_key("etda", now, timedelta(hours=1))
    assert c.get("/api/v1/partner", headers=auth(etda)).status_code == 200
    assert c.get("/api/v1/partner", headers=auth(new)).status_code == 200
    svc.clock.advance(hours=2)
    assert c.get("/api/v1/partner", headers=auth(etda)).status_code == 401
    assert c.get("/api/v1/partner", headers=auth(new)).status_code == 200
    svc.store.update_partner("etda", svc.clock.now(), enabled=False)
    assert c.get("/api/v1/partner", headers=auth(new)).status_code == 401
    stored = " ".join(str(tuple(r)) for r in svc.store.db.execute("SELECT * FROM api_keys"))
    for plain in (new, etda):  # only hashes are kept (the secret part may itself contain '_')
        assert plain.split("_", 2)[2] not in stored


def test_feed_pages_formats_and_filters(env, world_registry):
    _, svc, c = env
    key = svc.store.add_partner("etda", "ETDA", svc.clock.now(), filters=Filters(min_risk=0)).api_key
    for i in range(7):
        item = listing(i, "=cmd|' /C calc'!A0 ปลั๊กพ่วง มอก.2432-2555", marketplace="lazada" if i % 3 == 0 else "shopee")
        ingest(svc.listings, svc.events, item, world_registry)
    svc.engine.process_all()
    got, cursor = [], "0"
    while True:
        r = c.get("/api/v1/feeds/alerts", params={"added_after": cursor, "limit": 3}, headers=auth(key))
        assert r.status_code == 200 and r.headers["x-next-cursor"] == r.json()["next"]
        page = r.json()
        got += page["items"]
        cursor = page["next"]
        assert 'rel="next"' in r.headers["link"] and f"added_after={cursor}" in r.headers["link"]
        if not page["has_more"]:
            break
    assert [m["seq"] for m in got] == list(range(1, 8))
    again = c.get("/api/v1/feeds/alerts", params={"added_after": cursor}, headers=auth(key)).json()
    assert again == {"items": [], "next": cursor, "has_more": False}
    only = c.get("/api/v1/feeds/alerts", params={"marketplace": "lazada"}, headers=auth(key)).json()
    assert {m["data"]["listing"]["marketplace"] for m in only["items"]} == {"lazada"} and only["next"] == "7"
    assert c.get("/api/v1/feeds/alerts", params={"added_after": "abc"}, headers=auth(key)).status_code == 400
    assert c.get("/api/v1/feeds/alerts", params={"limit": 100_000}, headers=auth(key)).status_code == 422
    assert c.get("/api/v1/feeds/alerts", params={"type": "alert.exploded"}, headers=auth(key)).status_code == 400

    r = c.get("/api/v1/feeds/alerts", params={"format": "csv"}, headers=auth(key))
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert len(rows) == 7 and all(row["title"].startswith("'=cmd") for row in rows)
    r = c.get("/api/v1/feeds/alerts", headers={**auth(key), "Accept": "application/atom+xml"})
    assert r.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(r.content)
    assert len(root.findall("{http://www.w3.org/2005/Atom}entry")) == 7


def test_polling_while_alerts_are_added_misses_none_and_repeats_none(env):
    _, svc, c = env
    key = svc.store.add_partner("etda", "ETDA", svc.clock.now(), filters=Filters(min_risk=0)).api_key
    done = threading.Event()
    polled = threading.Semaphore(0)  # one release per poll: the writer waits for a poll between batches

    def writer():
        for i in range(300):
            verdict(svc.events, f"shopee:{i}", "unlicensed", 50 + i % 50)
            if i % 3 == 0:
                svc.engine.process(limit=50)
            if i % 30 == 29:
                polled.acquire(timeout=30)  # interleave for sure, whatever the machine's load
        svc.engine.process_all()
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    seen, cursor, polls = [], "0", 0
    while True:
        finished = done.is_set()
        r = c.get("/api/v1/feeds/alerts", params={"added_after": cursor, "limit": 17}, headers=auth(key))
        page = r.json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next"]
        polls += 1
        polled.release()
        if finished and not page["has_more"]:
            break
    t.join()
    rows, _, _ = svc.store.feed("etda", 0, 10_000)
    assert len(seen) == len(set(seen)) == 300 and seen == [r["msg_id"] for r in rows]
    assert polls >= 18  # 300 alerts in pages of at most 17


def test_feedback(env, world_registry):
    _, svc, c = env
    k1 = svc.store.add_partner("etda", "ETDA", svc.clock.now()).api_key
    k2 = svc.store.add_partner("other", "Other", svc.clock.now()).api_key
    ingest(svc.listings, svc.events, listing(1, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), world_registry)
    decide(svc.events, "shopee:1", "confirmed")
    svc.engine.process_all()
    aid = c.get("/api/v1/feeds/alerts", headers=auth(k1)).json()["items"][0]["data"]["alert_id"]
    other_aid = c.get("/api/v1/feeds/alerts", headers=auth(k2)).json()["items"][0]["data"]["alert_id"]
    url = f"/api/v1/alerts/{aid}/status"
    r = c.post(url, json={"status": "removed"}, headers=auth(k1))
    assert r.status_code == 201 and r.json()["verification"] == "pending"
    assert c.post(url, json={"status": "removed"}, headers=auth(k1)).status_code == 200  # the same report again
    assert c.post(url, json={"status": "rejected"}, headers=auth(k1)).status_code == 422
    assert c.post(url, json={"status": "rejected", "reason": "  "}, headers=auth(k1)).status_code == 422
    assert c.post(url, json={"status": "deleted"}, headers=auth(k1)).status_code == 422
    assert c.post(url, json={"status": "removed", "by": "me"}, headers=auth(k1)).status_code == 422
    assert c.post(url, json={"status": "seller_warned"}, headers=auth(k2)).status_code == 404  # not theirs
    assert c.post(f"/api/v1/alerts/{other_aid}/status", json={"status": "seller_warned"}, headers=auth(k1)).status_code == 404
    r = c.post(url, json={"status": "rejected", "reason": "สินค้ามี มอก. ถูกต้อง <b>"}, headers=auth(k1))
    assert r.status_code == 201
    view = c.get(f"/api/v1/alerts/{aid}", headers=auth(k1)).json()
    assert [f["status"] for f in view["feedback"]] == ["removed", "rejected"]
    assert view["alert"]["alert_id"] == aid and view["alert"]["basis"] == "confirmed"
    assert c.get(f"/api/v1/alerts/{other_aid}", headers=auth(k1)).status_code == 404
    events = svc.events.read(kinds=["partner_status"])
    assert [(e.key, e.data["status"], e.data["partner"]) for e in events] == [
        ("shopee:1", "removed", "etda"), ("shopee:1", "rejected", "etda")]


def test_evidence_links(env, world_registry):
    _app, svc, c = env
    key = svc.store.add_partner("etda", "ETDA", svc.clock.now()).api_key
    item = listing(1, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง")
    ingest(svc.listings, svc.events, item, world_registry)
    folder = svc.settings.evidence_dir / "shopee" / "1" / "20261123T030000Z"
    folder.mkdir(parents=True)
    files = {"screenshot": ("screenshot.png", b"\x89PNG fake"), "html": ("page.html", b"<script>alert(1)</script>"),
             "verdict": ("verdict.json", b'{"candidates": []}')}
    for kind, (name, data) in files.items():
        (folder / name).write_bytes(data)
        svc.listings.add_evidence(item.key, kind, str((folder / name).relative_to(svc.settings.home)),
                                  hashlib.sha256(data).hexdigest(), len(data), svc.clock.now())
    svc.engine.process_all()
    ev = c.get("/api/v1/feeds/alerts", headers=auth(key)).json()["items"][0]["data"]["evidence"]
    assert {e["kind"] for e in ev} == {"screenshot", "html"}  # the matcher's working file is not for partners
    shot = next(e for e in ev if e["kind"] == "screenshot")
    path = shot["url"].split("://", 1)[1].split("/", 1)[1]
    r = c.get("/" + path)  # no API key needed: the signed link is the permission
    assert r.status_code == 200 and r.content == b"\x89PNG fake" and r.headers["content-type"] == "image/png"
    assert r.headers["x-evidence-sha256"] == shot["sha256"]
    html = c.get("/" + next(e for e in ev if e["kind"] == "html")["url"].split("/", 3)[3])
    assert html.status_code == 200 and "attachment" in html.headers["content-disposition"]
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert c.get("/" + tampered).status_code == 404
    svc.clock.advance(days=31)
    assert c.get("/" + path).status_code == 403


def test_a_webhook_body_is_the_feed_message_with_its_evidence(env, world_registry):
    """The webhook body is put together as text from the stored payload; it must say exactly what the
    feed (the models) says, also for a title that spells out the evidence key and for a retraction."""
    import json

    _app, svc, c = env
    key = svc.store.add_partner("etda", "ETDA", svc.clock.now(), filters=Filters(min_risk=0)).api_key
    hostile = 'ปลั๊กพ่วง มอก.2432-2555 "evidence":[] \\"evidence\\":[{"kind":"x"}] </script>\u2028'
    items = [listing(1, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), listing(2, hostile)]
    folder = svc.settings.evidence_dir / "shopee" / "1" / "x"
    folder.mkdir(parents=True)
    (folder / "s.png").write_bytes(b"\x89PNG")
    for it in items:
        ingest(svc.listings, svc.events, it, world_registry)
        svc.listings.add_evidence(it.key, "screenshot", str((folder / "s.png").relative_to(svc.settings.home)),
                                  hashlib.sha256(b"\x89PNG").hexdigest(), 4, svc.clock.now())
    svc.engine.process_all()
    verdict(svc.events, items[0].key, "licensed", 2, reasons=["licence_match:ท1-1/1"])  # a retraction
    svc.engine.process_all()
    rows, _, _ = svc.store.feed("etda", 0, 100)
    assert [r["type"] for r in rows].count("alert.retracted") == 1 and len(rows) == 3
    feed = c.get("/api/v1/feeds/alerts", headers=auth(key)).json()["items"]
    for row, item in zip(rows, feed, strict=True):
        body = json.loads(svc.publisher.body(row))
        assert body == svc.publisher.message(row).model_dump(mode="json")
        for m in (body, item):  # the feed's links name the host it was asked on; the token is the same
            for e in m["data"]["evidence"]:
                e["url"] = e["url"].split("/api/v1/evidence/")[1]
        assert body == item  # the pull feed and the webhook say the same, evidence links included
        assert len(body["data"]["evidence"]) == (0 if row["type"] == "alert.retracted" else 1)
    assert json.loads(svc.publisher.body(rows[1]))["data"]["listing"]["title"] == hostile
