"""The operators' endpoints through HTTP: /healthz, /readyz, /metrics (and its token and separate
listener), the status page for administrators only, with hostile text escaped."""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from listings.events import open_events, verdict_event
from listings.model import Listing
from listings.store import open_store
from matching import check
from ops.history import open_history
from review.app import create_app
from review.db import open_appdb

HOSTILE = '<script>alert("x")</script>'
T = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def _report(home, marketplace, reason, listings, pages, blocked=None, started=T):
    d = home.crawl_dir / marketplace
    d.mkdir(parents=True, exist_ok=True)
    rep = {"marketplace": marketplace, "reason": reason, "started": started.isoformat(timespec="seconds"),
           "finished": (started + timedelta(minutes=5)).isoformat(timespec="seconds"), "listings": listings,
           "delisted": 0, "blocked": blocked,
           "stats": {"response_received_count": pages, "downloader/request_count": pages + 2, "tiswatch/page_errors": 1}}
    (d / "last_run.json").write_text(json.dumps(rep), "utf-8")


@pytest.fixture(scope="module")
def ops_home(tmp_path_factory, world, world_registry):
    from registry.store import RegistryStore, bulk
    from settings import load_settings

    s = load_settings(home=tmp_path_factory.mktemp("ops") / "home", environ={},
                      crawl={"browser_executable": "/usr/bin/chromium"})
    s.ensure_home()
    rs = RegistryStore(s.registry_db)
    rs.import_licences(bulk(world.licences))
    rs.close()
    st, ev = open_store(s), open_events(s)
    for w in world.listings[:60]:
        x = Listing(**w.listing)
        v = check(x, world_registry)
        st.ingest(x, v, T)
        ev.append("verdict", x.key, verdict_event(v, None, x.marketplace, "crawl"), at=T)
    st.close()
    ev.close()
    h = open_history(s)
    # two lazada crawls (one recorded by the scheduler, one by a manual crawl's report), a shopee captcha
    _report(s, "lazada", "finished", 20, 100, started=T - timedelta(hours=6))
    from ops.history import read_reports, sync_reports

    sync_reports(h, s.crawl_dir)
    _report(s, "lazada", "finished", 25, 120)
    _report(s, "shopee", "blocked", 3, 7, blocked={"url": "http://shopee/verify/x", "why": f"captcha / traffic verification page {HOSTILE}"})
    assert len(read_reports(s.crawl_dir)) == 2
    for job, status, secs in (("crawl:lazada", "ok", 300.0), ("crawl:lazada", "ok", 200.0), ("crawl:shopee", "blocked", 20.0),
                              ("registry", "failed", 1.0)):
        rid = h.start(job, job.split(":")[0], "schedule", None, 1, at=T)
        h.finish(rid, status, secs, {"listings": 5}, f"{HOSTILE} went wrong" if status == "failed" else None, at=T)
    h.close()
    db = open_appdb(s)
    tokens = {}
    for name, role in (("adm", "admin"), ("off", "officer")):
        u = db.add_user(name, f"{name}-password-123", role)
        tokens[name] = db.new_token(u if u is not None else db.user(name), "t")[1]
    db.close()
    return s, tokens


def _metrics(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            out[(smp.name, tuple(sorted(smp.labels.items())))] = smp.value
    return out


def test_health_and_readiness(ops_home):
    s, _ = ops_home
    c = TestClient(create_app(s))
    assert c.get("/healthz").json() == {"status": "ok"}
    r = c.get("/readyz")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert checks["store"]["ok"] and checks["registry"]["ok"] and "600 licences" in checks["registry"]["detail"]
    assert checks["browser"]["ok"] and "Chromium" in checks["browser"]["detail"]


def test_not_ready_says_why(tmp_path):
    from settings import load_settings

    s = load_settings(home=tmp_path / "home", environ={}, crawl={"browser_executable": "/nonexistent/chromium"})
    r = TestClient(create_app(s)).get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not ready"
    checks = r.json()["checks"]
    assert not checks["registry"]["ok"] and "tiswatch registry import" in checks["registry"]["detail"]
    assert not checks["browser"]["ok"] and "/nonexistent/chromium" in checks["browser"]["detail"]
    assert checks["store"]["ok"]
    # no browser marketplace enabled: no browser check
    s2 = load_settings(home=tmp_path / "home", environ={}, crawl={"browser_executable": "/nonexistent/chromium"},
                       marketplaces={"shopee": {"enabled": False}})
    assert "browser" not in TestClient(create_app(s2)).get("/readyz").json()["checks"]


def test_metrics(ops_home):
    s, _ = ops_home
    r = TestClient(create_app(s)).get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = _metrics(r.text)
    assert m[("tiswatch_crawl_pages_total", (("marketplace", "lazada"),))] == 220
    assert m[("tiswatch_crawl_listings_total", (("marketplace", "lazada"),))] == 45
    assert m[("tiswatch_crawl_blocks_total", (("marketplace", "shopee"),))] == 1
    assert m[("tiswatch_crawl_captchas_total", (("marketplace", "shopee"),))] == 1
    assert m[("tiswatch_crawl_blocks_total", (("marketplace", "lazada"),))] == 0
    assert m[("tiswatch_crawl_errors_total", (("marketplace", "lazada"),))] == 2
    assert m[("tiswatch_crawl_runs_total", (("marketplace", "shopee"), ("reason", "blocked")))] == 1
    st = open_store(s)
    by_verdict = st.counts()["by_verdict"]
    st.close()
    for v, n in by_verdict.items():
        assert m[("tiswatch_listings", (("verdict", v),))] == n
    flagged = sum(n for v, n in by_verdict.items() if v in ("unlicensed", "mislabeled", "needs_review"))
    assert m[("tiswatch_review_backlog", ())] == flagged > 0
    assert sum(v for (name, _), v in m.items() if name == "tiswatch_verdicts_total") == 60
    assert m[("tiswatch_registry_licences", ())] == 600 and m[("tiswatch_registry_import", ())] == 1
    assert m[("tiswatch_job_runs_total", (("job", "crawl:lazada"), ("status", "ok")))] == 2
    assert m[("tiswatch_job_runs_total", (("job", "registry"), ("status", "failed")))] == 1
    assert m[("tiswatch_job_duration_seconds_count", (("job", "crawl:lazada"),))] == 2
    assert m[("tiswatch_job_duration_seconds_sum", (("job", "crawl:lazada"),))] == 500
    assert m[("tiswatch_job_duration_seconds_bucket", (("job", "crawl:lazada"), ("le", "60.0")))] == 0
    assert m[("tiswatch_job_duration_seconds_bucket", (("job", "crawl:lazada"), ("le", "300.0")))] == 2
    assert all(v == 1 for (name, _), v in m.items() if name == "tiswatch_metrics_part_up")
    assert ("tiswatch_alert_deliveries", (("state", "dead"),)) in m


def test_metrics_survive_history_pruning(ops_home, tmp_path):
    import shutil

    from settings import load_settings

    src, _ = ops_home
    s = load_settings(home=tmp_path / "copy", environ={})
    shutil.copytree(src.home, s.home)
    before = _metrics(TestClient(create_app(s)).get("/metrics").text)
    h = open_history(s)
    assert h.prune(T + timedelta(days=1), keep_last=0) == 4
    h.close()
    after = _metrics(TestClient(create_app(s)).get("/metrics").text)
    for k in (("tiswatch_job_runs_total", (("job", "crawl:lazada"), ("status", "ok"))),
              ("tiswatch_job_duration_seconds_count", (("job", "crawl:lazada"),)),
              ("tiswatch_job_duration_seconds_bucket", (("job", "crawl:lazada"), ("le", "300.0")))):
        assert after[k] == before[k]


def test_metrics_token_and_listener(ops_home, tmp_path):
    from settings import load_settings

    s0, _ = ops_home
    s = load_settings(home=s0.home, environ={}, ops={"metrics_token": "s3cret"})
    c = TestClient(create_app(s))
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = load_settings(home=s0.home, environ={}, ops={"metrics": "listener", "metrics_listen": f"127.0.0.1:{port}"})
    assert TestClient(create_app(s)).get("/metrics").status_code == 404
    from ops.metrics import start_listener

    srv = start_listener(s)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
        assert "tiswatch_crawl_pages_total" in text
    finally:
        srv.shutdown()


def test_status_page_is_for_administrators_and_escapes(ops_home):
    s, tokens = ops_home
    app = create_app(s)
    c = TestClient(app)
    assert c.get("/ops/status", follow_redirects=False).status_code == 303  # to the login page
    assert c.get("/ops/status.json", headers={"Accept": "application/json"}).status_code == 401
    officer = {"Authorization": f"Bearer {tokens['off']}"}
    assert c.get("/ops/status", headers=officer).status_code == 403
    admin = {"Authorization": f"Bearer {tokens['adm']}"}
    r = c.get("/ops/status", headers=admin)
    assert r.status_code == 200
    html = r.text
    assert HOSTILE not in html and "&lt;script&gt;alert(" in html
    for text in ("crawl:lazada", "crawl:shopee", "registry", "captcha", "http://shopee/verify/x", "shopee", "lazada"):
        assert text in html, text
    j = c.get("/ops/status.json", headers=admin).json()
    jobs = {x["id"]: x for x in j["jobs"]}
    assert jobs["crawl:lazada"]["last"]["status"] == "ok" and jobs["registry"]["last"]["status"] == "failed"
    crawls = {x["marketplace"]: x for x in j["crawls"]}
    assert crawls["shopee"]["last_block"]["captcha"] == 1 and crawls["lazada"]["last"]["pages"] == 120
    assert crawls["lazada"]["totals"]["runs"] == 2
    assert j["listings"]["review_backlog"] > 0 and j["registry"]["licences"] == 600
