"""Operations around the feeds: the `tiswatch partners` commands, daily digests through a real SMTP server
(aiosmtpd), and checking that listings reported "removed" are really gone."""

from __future__ import annotations

import email
import json
import os
import re
import socket
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from alerts_helpers import Receiver, decide, ingest, listing
from typer.testing import CliRunner

from alerts.clock import FakeClock
from alerts.digest import send_digests
from alerts.rules import Filters
from alerts.service import open_service
from alerts.verify import verify_removals
from settings import ROOT, load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the command line ---------------------------------------------------------------------------------
def run_cli(home, *args):
    import alerts.cli
    import cli

    cli.state._settings = None  # the CLI caches its settings per process
    alerts.cli.console.width = 250  # rich fixed the width when the module was first imported
    r = CliRunner().invoke(cli.app, ["--home", str(home), "partners", *args],
                           env={"TISWATCH_CONFIG": "", "COLUMNS": "250", **LOCAL_HOOKS})
    return r


LOCAL_HOOKS = {"TISWATCH_ALERTS__WEBHOOK_ALLOW_NETWORKS": '["127.0.0.1/32"]'}  # the receivers are on this machine


@pytest.mark.server
def test_partner_commands(tmp_path, world_registry):
    home = tmp_path / "home"
    s = load_settings(home=home, environ={})
    svc = open_service(s)
    for i in range(3):
        ingest(svc.listings, svc.events, listing(i, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), world_registry)
    svc.close()
    with Receiver() as rx:
        # `add` in a child process, as an administrator would run it
        exe = Path(sys.executable).with_name("tiswatch")
        p = subprocess.run([str(exe), "--home", str(home), "partners", "add", "etda", "--name", "ETDA",
                            "--webhook", rx.url, "--min-risk", "80", "--marketplace", "shopee"],
                           capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, **LOCAL_HOOKS})
        assert p.returncode == 0, p.stderr
        key = re.search(r"(twk_[A-Za-z0-9_-]+)", p.stdout).group(1)
        rx.secret = re.search(r"(whsec_\S+)", p.stdout).group(1)
        assert "3 alerts opened" in p.stdout
        r = run_cli(home, "deliver")
        assert r.exit_code == 0 and "3 delivered" in r.output, r.output
        assert len(rx.processed) == 3 and not rx.bad_signatures
    r = run_cli(home, "list")
    assert "etda" in r.output and "mp=shopee" in r.output
    r = run_cli(home, "show", "etda")
    shown = json.loads(r.output)
    assert shown["filters"]["min_risk"] == 80 and shown["deliveries"]["delivered"] == 3 and key not in r.output
    r = run_cli(home, "set", "etda", "--marketplace", "lazada")
    assert r.exit_code == 0 and "3 alerts opened or retracted" in r.output  # out of the filters now
    assert run_cli(home, "set", "etda", "--verdict", "licensed").exit_code == 2
    assert run_cli(home, "add", "etda").exit_code == 2  # exists
    assert run_cli(home, "rotate-key", "etda", "--grace", "soon").exit_code == 2
    r = run_cli(home, "rotate-key", "etda", "--grace", "0")
    new_key = re.search(r"(twk_[A-Za-z0-9_-]+)", r.output).group(1)
    svc = open_service(s)
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert svc.store.authenticate(key, now) is None and svc.store.authenticate(new_key, now).id == "etda"
    svc.close()
    assert "0 deliveries queued" in run_cli(home, "replay", "--all").output
    assert run_cli(home, "replay").exit_code == 2
    r = run_cli(home, "disable", "etda")
    assert r.exit_code == 0 and "disabled" in r.output
    assert "no partner" in run_cli(home, "enable", "nobody").output
    r = run_cli(home, "deliveries", "etda")
    assert r.exit_code == 0 and "delivered" in r.output


# ---- digests through SMTP ------------------------------------------------------------------------------
class Mailbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.mark.server
def test_daily_digests_by_smtp(tmp_path, world_registry):
    from aiosmtpd.controller import Controller

    port = free_port()
    s = load_settings(home=tmp_path / "home", environ={}, alerts={
        "smtp": {"host": "127.0.0.1", "port": port, "sender": "tiswatch@tisi.example"},
        "groups": {"surveillance": {"emails": ["officers@tisi.example"], "marketplaces": ["shopee"]}}})
    clock = FakeClock(datetime(2026, 11, 22, 3, 0, tzinfo=UTC))  # 10:00 in Bangkok on the 22nd
    svc = open_service(s, clock=clock)
    svc.store.add_partner("etda", "ETDA", clock.now(), email="alerts@etda.example", digest=True, filters=Filters(min_risk=0))
    svc.store.add_partner("quiet", "Quiet", clock.now(), email="q@x.example", digest=False)
    for i in range(5):
        ingest(svc.listings, svc.events, listing(i, f"<b>ปลั๊กพ่วง</b> มอก.2432-2555 รุ่น {i}",
                                                 marketplace="shopee" if i < 4 else "lazada"), world_registry, at=clock.now())
    decide(svc.events, "shopee:1", "confirmed", at=clock.now())
    svc.engine.process_all()
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        clock.advance(days=1)
        out = send_digests(svc)  # yesterday, Bangkok time
        assert sorted((o.recipient, o.status) for o in out) == [("alerts@etda.example", "sent"),
                                                                ("officers@tisi.example", "sent")]
        by_to = {m["To"]: m for m in box.messages}
        p = by_to["alerts@etda.example"]
        assert "2026-11-22" in p["Subject"] and "5 new alerts" in p["Subject"]
        text = p.get_body(("plain",)).get_content()
        html = p.get_body(("html",)).get_content()
        assert "alerts opened: 5" in text and "alerts updated: 1" in text
        assert "&lt;b&gt;ปลั๊กพ่วง&lt;/b&gt;" in html and "<b>ปลั๊กพ่วง</b>" not in html
        g = by_to["officers@tisi.example"].get_body(("plain",)).get_content()
        assert "new flags: 4" in g and "confirmed by officers: 1" in g  # shopee only: the group's filter
        assert [o.status for o in send_digests(svc)] == ["skipped", "skipped"]  # once per day and recipient
    finally:
        ctl.stop()
    out = send_digests(svc, date(2026, 11, 23))  # the server is gone: reported, not marked as sent
    assert {o.status for o in out} == {"failed"}
    svc.close()


# ---- "removed" reports checked -------------------------------------------------------------------------
class Shop(BaseHTTPRequestHandler):
    pages: dict[str, tuple[int, str]] = {}

    def do_GET(self):
        code, body = self.pages.get(self.path, (404, "not found"))
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *a):
        pass


def test_removed_reports_are_verified(home, world_registry):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    Shop.pages = {"/p/11": (200, '<div data-sku="11">ปลั๊กพ่วง</div>'), "/p/12": (503, "busy")}
    clock = FakeClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    svc = open_service(home, clock=clock)
    svc.store.add_partner("etda", "ETDA", clock.now(), filters=Filters(min_risk=0))
    t0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    items = [listing(1), listing(2), listing(10, marketplace="shop", url=f"{base}/p/10"),
             listing(11, marketplace="shop", url=f"{base}/p/11"), listing(12, marketplace="shop", url=f"{base}/p/12")]
    for it in items:
        ingest(svc.listings, svc.events, it, world_registry, at=t0)
    svc.engine.process_all()
    rows, _, _ = svc.store.feed("etda", 0, 100)
    for r in rows:
        svc.store.add_feedback(r["alert_id"], "etda", r["key"], "removed", None, clock.now(), f"d-{r['key']}")
    # the crawl: shopee:1 no longer listed, shopee:2 seen again after the report
    svc.events.append("delisted", "shopee:1", {"marketplace": "shopee"}, at=clock.now() + timedelta(hours=1))
    svc.engine.process_all()
    ingest(svc.listings, svc.events, listing(2), world_registry, at=clock.now() + timedelta(hours=2))
    r = verify_removals(svc.store, svc.listings, clock, http_marketplaces=("shop",))
    state = {f["key"]: f["verify_state"] for f in svc.store.feedback(pid="etda")}
    assert state == {"shopee:1": "gone", "shopee:2": "still_listed", "shop:10": "gone", "shop:11": "still_listed",
                     "shop:12": "pending"}
    assert (r.gone, r.still_listed, r.undecided) == (1, 2, 1)  # shopee:1 was settled by the event already
    clock.advance(days=15)
    verify_removals(svc.store, svc.listings, clock, http_marketplaces=("shop",))
    f12 = next(f for f in svc.store.feedback(pid="etda") if f["key"] == "shop:12")
    assert f12["verify_state"] == "unverified" and "HTTP 503" in f12["verify_detail"]
    srv.shutdown()
    svc.close()


def test_removed_reports_are_revisited_by_the_crawler(home, world_registry):
    """`verify --crawl`: one revisit crawl per marketplace with just the reported listings' URLs; what the
    revisit finds (a delisted event, a fresh observation) settles the reports. The crawl itself is the
    crawler's (tested there); here a stand-in does what a revisit does to the store and event log."""
    from alerts.verify import revisit_removed

    clock = FakeClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    svc = open_service(home, clock=clock)
    svc.store.add_partner("etda", "ETDA", clock.now(), filters=Filters(min_risk=0))
    items = [listing(1), listing(2), listing(3, marketplace="lazada")]
    for it in items:
        ingest(svc.listings, svc.events, it, world_registry, at=datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    svc.engine.process_all()
    rows, _, _ = svc.store.feed("etda", 0, 100)
    for r in rows:
        svc.store.add_feedback(r["alert_id"], "etda", r["key"], "removed", None, clock.now(), f"d-{r['key']}")
    calls = []

    def revisit(settings, mp, *, urls_file, job, time_limit, config):
        urls = urls_file.read_text().split()
        calls.append((mp, urls, job))
        later = clock.now() + timedelta(minutes=5)
        for u in urls:
            it = next(i for i in items if i.url == u)
            if it.key == "shopee:1":  # its page says it is gone
                svc.listings.delist(it.key, later)
                svc.events.append("delisted", it.key, {"marketplace": mp, "url": u}, at=later)
            else:  # still there
                ingest(svc.listings, svc.events, it, world_registry, at=later)
        return "finished"

    out = revisit_removed(home, svc.store, svc.listings, run=revisit)
    assert out == {"lazada": "finished", "shopee": "finished"}
    assert sorted(calls) == [("lazada", [items[2].url], "revisit:lazada"),
                             ("shopee", [items[0].url, items[1].url], "revisit:shopee")]
    svc.engine.process_all()
    verify_removals(svc.store, svc.listings, clock)
    assert {f["key"]: f["verify_state"] for f in svc.store.feedback(pid="etda")} == {
        "shopee:1": "gone", "shopee:2": "still_listed", "lazada:3": "still_listed"}
    svc.close()
