"""Running jobs as the scheduler does (ops.jobs.run): history, locks, a hanging crawl child, a stop,
the registry refresh from a file or a URL, revisits, and the jobs of other packages."""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import crawlers.runner
from ops.jobs import JobContext, UnknownJob, run
from ops.locks import FileLock, crawl_lock_path, job_lock_path
from settings import load_settings


def _ctx(tmp_path, **over):
    base = {"crawl": {"time_limit": 3}, "schedule": {"shutdown_grace": 1}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    s = load_settings(home=tmp_path / "home", environ={}, **base)
    s.ensure_home()
    return JobContext(s)


def _fake_child(monkeypatch, script: str):
    """Make the crawl child a small Python program instead of Scrapy."""
    def fake(settings, marketplace, **kw):
        return [sys.executable, "-c", script]

    monkeypatch.setattr(crawlers.runner, "crawl_command", fake)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_hanging_crawl_child_is_stopped_and_reported(tmp_path, monkeypatch):
    ctx = _ctx(tmp_path)
    pidfile = tmp_path / "child.pid"
    # ignores SIGTERM, so it has to be killed
    _fake_child(monkeypatch, f"import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                             f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(600)")
    out = run(ctx, "crawl:lazada")
    assert out.status == "timed_out"
    assert "time limit (3s)" in out.error and "stopped" in out.error
    pid = int(pidfile.read_text())
    assert not _alive(pid)
    last = ctx.history.last_runs()["crawl:lazada"]
    assert last["status"] == "timed_out" and last["trigger"] == "manual" and last["seconds"] >= 3
    assert last["result"]["reason"] == "timed_out"
    ctx.close()


def test_stop_signal_stops_a_running_crawl(tmp_path, monkeypatch):
    ctx = _ctx(tmp_path, crawl={"time_limit": 600})
    started = tmp_path / "started"
    _fake_child(monkeypatch, f"import time; open({str(started)!r}, 'w').write('1'); time.sleep(600)")
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("out", run(ctx, "crawl:shopee", trigger="schedule")))
    t.start()
    for _ in range(200):
        if started.exists():
            break
        time.sleep(0.05)
    ctx.stop.set()
    t.join(30)
    assert not t.is_alive()
    assert box["out"].status == "stopped" and "shutting down" in box["out"].error
    ctx.close()


def test_same_job_twice_is_skipped_and_unknown_job(tmp_path):
    ctx = _ctx(tmp_path)
    with FileLock(job_lock_path(ctx.settings.home, "recheck"), what="job recheck (schedule)"):
        out = run(ctx, "recheck")
    assert out.status == "skipped" and "already running" in out.error and "job recheck (schedule)" in out.error
    assert ctx.history.runs("recheck")[0]["status"] == "skipped"
    with pytest.raises(UnknownJob):
        run(ctx, "crawl:tiktok")
    ctx.close()


def test_a_crawl_of_a_marketplace_being_crawled_elsewhere_is_skipped(tmp_path):
    """The real crawl child: it finds the marketplace's lock held (a manual `tiswatch crawl`) and leaves."""
    ctx = _ctx(tmp_path, crawl={"time_limit": 120})
    report = ctx.settings.crawl_dir / "lazada" / "last_run.json"
    with FileLock(crawl_lock_path(ctx.settings.home, "lazada"), what="crawl lazada"):
        out = run(ctx, "crawl:lazada")
    assert out.status == "skipped" and "another crawl of lazada is running" in out.error
    assert out.result["returncode"] == 4 and not report.exists()
    ctx.close()


def test_jobs_of_other_packages(tmp_path):
    import importlib.util

    ctx = _ctx(tmp_path)
    out = run(ctx, "retention")  # the job history is pruned, then the store's evidence retention
    assert out.status == "ok" and out.result["job_runs_pruned"] == 0
    if importlib.util.find_spec("listings.retention") is None:
        assert "listings.retention" in out.error
    else:
        assert out.result["evidence"].startswith("retention off")
        assert out.result["observations"].startswith("retention off")  # [store] observation_retention_days = 0
    # alerts/: nothing to deliver, no digest recipients, no removals to check
    for job in ("alerts", "digest", "removals"):
        out = run(ctx, job)
        assert out.status == "ok", (job, out.error)
    assert run(ctx, "alerts").result["delivered"] == 0
    ctx.close()


# ---- registry refresh ------------------------------------------------------------------------------
def _licences(world, n=80, revoke=None):
    import dataclasses

    out = []
    for lic in world.licences[:n]:
        if lic.licence_no == revoke:
            lic = dataclasses.replace(lic, status="revoked", status_date=date(2026, 11, 20))
        out.append(lic)
    return out


def test_registry_refresh_from_a_file(tmp_path, world):
    from registry.licences import write_licence_csv

    src = tmp_path / "licences.csv"
    write_licence_csv(_licences(world), src, thai_headers=True)
    ctx = _ctx(tmp_path, registry={"source": str(src)})
    out = run(ctx, "registry")
    assert out.status == "ok", out.error
    assert out.result["changed"] and out.result["version"] == "r1" and out.result["added"] == 80
    assert out.result["recheck"]["version"] == "r1"
    # the same file again: not even hashed (size and mtime unchanged)
    out = run(ctx, "registry")
    assert out.status == "ok" and not out.result["changed"] and out.result["unchanged"] == "not modified"
    # touched, same content: hashed, not imported
    os.utime(src, (time.time() + 5, time.time() + 5))
    out = run(ctx, "registry")
    assert not out.result["changed"] and out.result["unchanged"] == "same content as an earlier import"
    # a new version: imported, and the re-check follows
    write_licence_csv(_licences(world, revoke=world.licences[3].licence_no), src, thai_headers=True)
    out = run(ctx, "registry")
    assert out.result["changed"] and out.result["version"] == "r2" and out.result["updated"] == 1
    assert out.result["recheck"]["version_from"] == "r1" and out.result["recheck"]["licences_changed"] == 1
    # a broken file: the job fails naming the file, the registry is as it was
    src.write_bytes(b"\x00\x01\x02 not a licence file")
    out = run(ctx, "registry")
    assert out.status == "failed" and str(src) in out.error
    from registry.store import RegistryStore

    rs = RegistryStore(ctx.settings.registry_db)
    assert rs.version() == "r2" and rs.count() == 80
    rs.close()
    ctx.close()


def test_registry_refresh_from_a_url_with_etag(tmp_path, world):
    from registry.licences import write_licence_csv

    body_path = tmp_path / "served.csv"
    write_licence_csv(_licences(world, 30), body_path)
    hits: list[tuple[str, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = body_path.read_bytes()
            etag = f'"{len(data)}-{hash(data) & 0xffff}"'
            hits.append((self.path, self.headers.get("If-None-Match")))
            if self.path != "/licences.csv":
                self.send_response(404)
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/licences.csv"
    try:
        ctx = _ctx(tmp_path, registry={"source": url})
        out = run(ctx, "registry")
        assert out.status == "ok" and out.result["added"] == 30 and hits[-1][1] is None
        out = run(ctx, "registry")
        assert not out.result["changed"] and out.result["unchanged"] == "not modified" and hits[-1][1] is not None
        write_licence_csv(_licences(world, 31), body_path)
        out = run(ctx, "registry")
        assert out.result["changed"] and out.result["added"] == 1
        ctx2 = _ctx(tmp_path / "b", registry={"source": url.replace("licences.csv", "gone.csv")})
        out = run(ctx2, "registry")
        assert out.status == "failed" and "gone.csv: HTTP 404" in out.error
        ctx.close()
        ctx2.close()
    finally:
        srv.shutdown()


# ---- revisits --------------------------------------------------------------------------------------
def test_revisit_passes_due_listing_urls_to_the_crawl(tmp_path, monkeypatch):
    from listings.model import Listing
    from listings.store import open_store
    from matching.verdict import Verdict

    now = datetime.now(UTC)
    ctx = _ctx(tmp_path, schedule={"revisit_max": 10})
    store = open_store(ctx.settings)
    plan = {"f-old": ("unlicensed", 30), "f-new": ("unlicensed", 2), "q-old": ("licensed", 24 * 20),
            "q-mid": ("licensed", 24 * 5), "c-mid": ("licensed", 24 * 5)}
    for item, (verdict, hours) in plan.items():
        seen = now - timedelta(hours=hours)
        lst = Listing(marketplace="lazada", item_id=item, title=f"t {item}", url=f"http://lz.example/products/{item}.html",
                      observed_at=seen)
        store.ingest(lst, Verdict("lazada", item, verdict, 70))
    # c-mid changed lately (a new price a day ago... recorded when seen)
    store.ingest(Listing(marketplace="lazada", item_id="c-mid", title="t c-mid", price=99.0,
                         url="http://lz.example/products/c-mid.html", observed_at=now - timedelta(hours=24 * 4)),
                 Verdict("lazada", "c-mid", "licensed", 70))
    store.close()
    seen_kw = {}

    def fake_run_crawl(settings, marketplace, **kw):
        seen_kw.update(kw, marketplace=marketplace, urls=Path(kw["urls_file"]).read_text().split())
        return crawlers.runner.CrawlResult(marketplace, 0, 0.1, Path("x.log"), report={"reason": "finished", "listings": 3})

    monkeypatch.setattr(crawlers.runner, "run_crawl", fake_run_crawl)
    out = run(ctx, "revisit:lazada")
    assert out.status == "ok", out.error
    assert seen_kw["marketplace"] == "lazada" and seen_kw["job"] == "revisit:lazada"
    assert seen_kw["urls"] == ["http://lz.example/products/f-old.html", "http://lz.example/products/c-mid.html",
                               "http://lz.example/products/q-old.html"]
    assert out.result["tiers"] == {"flagged": 1, "changed": 1, "quiet": 1} and out.result["due"] == 3
    ctx.close()


def test_json_logs_carry_job_and_marketplace(tmp_path, monkeypatch, capsys):
    import io

    from ops.logs import setup_logging

    ctx = _ctx(tmp_path, log={"json": True})
    stream = io.StringIO()
    setup_logging(ctx.settings, "test", stream=stream)
    _fake_child(monkeypatch, "import sys; sys.exit(1)")
    try:
        run(ctx, "crawl:lazada")
    finally:
        import logging

        for h in list(logging.getLogger().handlers):
            if getattr(h, "_tiswatch", False):
                logging.getLogger().removeHandler(h)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    done = [x for x in lines if x["msg"].startswith("job crawl:lazada failed")]
    assert done and done[0]["job"] == "crawl:lazada" and done[0]["marketplace"] == "lazada"
    assert done[0]["level"] == "ERROR" and done[0]["component"] == "test" and isinstance(done[0]["run"], int)
    ctx.close()
