"""Webhook delivery against real local receivers: failures, timeouts, recovery, dead letters, replay,
rotation, independence of partners, and signatures checked by the standard verifier."""

import asyncio
import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from alerts_helpers import ROOT_README, Receiver, verdict
from standardwebhooks import Webhook

from alerts.backoff import RetryPolicy
from alerts.clock import FakeClock, run_async
from alerts.delivery import AlertWorker
from alerts.notify import WebhookNotifier
from alerts.service import open_service

pytestmark = pytest.mark.server


@pytest.fixture
def home(home):
    home.alerts.webhook_allow_networks = ["127.0.0.1/32"]  # the receivers are on this machine
    return home


def make(home, clock, timeout=1.0, policy=None, **kw):
    svc = open_service(home, clock=clock)
    worker = AlertWorker(svc.store, svc.publisher, WebhookNotifier(timeout, clock, policy=svc.store.policy),
                         engine=svc.engine, clock=clock,
                         policy=policy or RetryPolicy(), timeout=timeout, poll=0.05, stop_grace=0.5, **kw)
    return svc, worker


def drain(worker):
    async def go():
        try:
            return await worker.drain()
        finally:
            await worker.notifier.aclose()
    return run_async(go)


def feed_ids(svc, pid):
    rows, _, _ = svc.store.feed(pid, 0, 100_000)
    return [r["msg_id"] for r in rows]


def test_fails_then_times_out_then_recovers_every_alert_arrives_once(home):
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    svc, worker = make(home, clock, timeout=0.5)
    with Receiver(fail_first=7, hang_next=3, hang=1.5, now=clock.now) as rx:
        c = svc.store.add_partner("etda", "ETDA", clock.now(), webhook_url=rx.url)
        rx.secret = c.webhook_secret
        for i in range(40):
            verdict(svc.events, f"shopee:{i}", "unlicensed", 90)
        for i in range(0, 40, 5):  # a few are cleared again: their retraction must come after their alert
            verdict(svc.events, f"shopee:{i}", "licensed", 2, reasons=["licence_match:ท1-1/1"])
        for _ in range(200):
            drain(worker)
            if not svc.store.pending_count("etda"):
                break
            clock.advance(minutes=10)
        want = feed_ids(svc, "etda")
        assert len(want) == 48 and svc.store.pending_count("etda") == 0
        assert set(rx.processed) == set(want)  # every alert arrived …
        assert not rx.bad_signatures  # … signed
        assert rx.duplicates, "the hung requests were processed, timed out, and came again with the same webhook-id"
        for mid, bodies in rx.bodies_by_id.items():  # a retry is the same message, byte for byte
            assert len(set(bodies)) == 1, mid
        order = [json.loads(r.body) for r in rx.processed.values()]
        seen_open = set()
        for m in order:
            if m["type"] == "alert.opened":
                seen_open.add(m["data"]["alert_id"])
            else:
                assert m["data"]["alert_id"] in seen_open, "a retraction arrived before its alert"
        statuses = [r["status"] for r in svc.store.db.execute("SELECT status FROM attempts ORDER BY id")]
        assert statuses[:7] == [500] * 7 and None in statuses and statuses[-1] == 204
        errors = [r[0] for r in svc.store.db.execute("SELECT error FROM attempts WHERE status IS NULL")]
        assert errors and all("timed out" in e for e in errors)
        st = svc.store.delivery_stats("etda")
        assert st["delivered"] == 48 and st["dead"] == 0 and st["latency_p95_ms"] is not None
    svc.close()


def test_a_dead_endpoint_goes_to_dead_letters_after_72_hours_and_replays(home):
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    svc, worker = make(home, clock)
    with Receiver(down=True, now=clock.now) as rx:
        c = svc.store.add_partner("etda", "ETDA", clock.now(), webhook_url=rx.url)
        rx.secret = c.webhook_secret
        for i in range(30):
            verdict(svc.events, f"lazada:{i}", "mislabeled", 95)
        hours = 0
        while hours <= 73:
            drain(worker)
            assert svc.store.delivery_stats("etda")["delivered"] == 0
            clock.advance(minutes=30)
            hours += 0.5
        st = svc.store.delivery_stats("etda")
        assert st["dead"] == 30 and st["pending"] == 0
        # the circuit breaker: a dead partner is probed, not hammered with every message at every retry
        assert rx.requests < 60, rx.requests
        rx.down = False
        assert svc.store.replay("etda", clock.now()) == 30
        drain(worker)
        assert set(rx.processed) == set(feed_ids(svc, "etda"))  # the same webhook-ids as before the outage
        assert svc.store.delivery_stats("etda")["delivered"] == 30
    svc.close()


def test_a_dead_partner_never_delays_the_others(home):
    clock = FakeClock(datetime.now(UTC))
    svc, worker = make(home, clock, timeout=30.0)
    with Receiver(hang_next=10**6, hang=60, now=clock.now) as slow, Receiver(now=clock.now) as fast:
        a = svc.store.add_partner("slow", "Slow", clock.now(), webhook_url=slow.url)
        b = svc.store.add_partner("fast", "Fast", clock.now(), webhook_url=fast.url)
        slow.secret, fast.secret = a.webhook_secret, b.webhook_secret
        for i in range(60):
            verdict(svc.events, f"shopee:{i}", "unlicensed", 90)
        stop = asyncio.Event()

        async def go():
            task = asyncio.create_task(worker.run(stop))
            for _ in range(600):
                if len(fast.processed) == 60:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await task
            await worker.notifier.aclose()

        run_async(go)
        assert len(fast.processed) == 60  # everything reached the healthy partner …
        assert slow.requests == 4  # … while the slow one held only its own 4 slots, not one answered
        assert svc.store.delivery_stats("slow")["delivered"] == 0
        assert svc.store.pending_count("slow") == 60  # nothing lost: the unanswered ones are given back
    svc.close()


def test_standard_verifier_and_secret_rotation(home):
    clock = FakeClock(datetime.now(UTC))
    svc, worker = make(home, clock)
    with Receiver() as rx:
        c = svc.store.add_partner("etda", "ETDA", clock.now(), webhook_url=rx.url)
        rx.verifier = Webhook(c.webhook_secret).verify  # the standardwebhooks package's own verifier
        verdict(svc.events, "shopee:1", "unlicensed", 90)
        drain(worker)
        assert len(rx.processed) == 1 and not rx.bad_signatures
        new = svc.store.rotate_secret("etda", clock.now(), timedelta(hours=24))
        verdict(svc.events, "shopee:2", "unlicensed", 90)
        drain(worker)  # in the grace period: signed with both, the old secret still verifies
        assert len(rx.processed) == 2 and not rx.bad_signatures
        last = list(rx.processed.values())[-1]
        assert len(last.headers["webhook-signature"].split()) == 2
        Webhook(new).verify(last.body, last.headers)
        clock.advance(hours=25)
        rx.verifier, rx.now = None, clock.now
        rx.secret = c.webhook_secret  # a receiver still on the old secret now refuses …
        verdict(svc.events, "shopee:3", "unlicensed", 90)
        drain(worker)
        assert len(rx.bad_signatures) == 1
        rx.secret = new  # … and accepts once switched; the refused message is retried with the same id
        clock.advance(minutes=5)
        drain(worker)
        assert len(rx.processed) == 3 and len(list(rx.processed.values())[-1].headers["webhook-signature"].split()) == 1
    svc.close()


def test_the_readme_example_verifies_a_real_delivery(home):
    """The partner-facing verification example in README.md, run as written against a delivery."""
    text = ROOT_README.read_text("utf-8")
    m = re.search(r"<!-- webhook-verify-example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md lost its webhook verification example"
    ns: dict = {}
    exec(compile(m.group(1), "README.md", "exec"), ns)
    clock = FakeClock(datetime.now(UTC))
    svc, worker = make(home, clock)
    with Receiver() as rx:
        c = svc.store.add_partner("etda", "ETDA", clock.now(), webhook_url=rx.url)
        verdict(svc.events, "shopee:1", "unlicensed", 90)
        drain(worker)
        got = next(iter(rx.processed.values()))
        event = ns["verify_webhook"](c.webhook_secret, got.headers, got.body)
        assert event["type"] == "alert.opened" and event["data"]["listing"]["key"] == "shopee:1"
        with pytest.raises(ValueError):
            ns["verify_webhook"](c.webhook_secret, got.headers, got.body.replace(b"shopee:1", b"shopee:2"))
        with pytest.raises(ValueError):
            ns["verify_webhook"](c.webhook_secret, {**got.headers, "webhook-timestamp": str(int(time.time()) - 3600)},
                                 got.body)
    svc.close()


def test_two_workers_never_send_the_same_message_at_once(home):
    clock = FakeClock(datetime.now(UTC))
    svc, w1 = make(home, clock)
    svc2, w2 = make(home, clock)
    with Receiver(delay=0.01) as rx:
        c = svc.store.add_partner("etda", "ETDA", clock.now(), webhook_url=rx.url)
        rx.secret, rx.now = c.webhook_secret, clock.now
        for i in range(80):
            verdict(svc.events, f"shopee:{i}", "unlicensed", 90)
        svc.engine.process_all()
        results = []

        def run(w):
            results.append(drain(w))

        ts = [threading.Thread(target=run, args=(w,)) for w in (w1, w2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert len(rx.processed) == 80 and rx.duplicates == []
        assert sum(r.delivered for r in results) == 80
    svc.close()
    svc2.close()


def test_a_worker_killed_mid_delivery_loses_nothing(home, tmp_path):
    """`tiswatch partners deliver --loop` killed with SIGKILL while it sends (results not yet written, claims
    leased): the next worker sends every message not recorded as delivered, with its webhook-id and the
    very same body, and the partners end up with every message of their feeds."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from settings import ROOT

    svc = open_service(home)
    with Receiver(delay=0.03) as a, Receiver(delay=0.03) as b:
        ca = svc.store.add_partner("pa", "A", datetime.now(UTC), webhook_url=a.url)
        cb = svc.store.add_partner("pb", "B", datetime.now(UTC), webhook_url=b.url)
        a.secret, b.secret = ca.webhook_secret, cb.webhook_secret
        for i in range(150):
            verdict(svc.events, f"shopee:{i}", "unlicensed", 90)
        exe = Path(sys.executable).with_name("tiswatch")
        env = {**os.environ, "TISWATCH_CONFIG": "", "TISWATCH_ALERTS__WEBHOOK_ALLOW_NETWORKS": '["127.0.0.1/32"]'}
        proc = subprocess.Popen([str(exe), "--home", str(home.home), "partners", "deliver", "--loop"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while len(a.processed) + len(b.processed) < 60 and time.time() < deadline and proc.poll() is None:
                time.sleep(0.01)
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()  # its engine process
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            deadline = time.time() + 30  # the engine process sees the pipe close and ends too
            while any(Path(f"/proc/{k}").exists() and "zombie" not in Path(f"/proc/{k}/status").read_text()
                      for k in kids) and time.time() < deadline:
                time.sleep(0.05)
            assert kids and not any(Path(f"/proc/{k}/cmdline").exists() and b"alerts.engine_proc" in
                                    Path(f"/proc/{k}/cmdline").read_bytes() for k in kids), kids
        finally:
            if proc.poll() is None:
                proc.kill()
        sent_before = len(a.processed) + len(b.processed)
        assert 60 <= sent_before < 300, sent_before  # killed in the middle
        assert svc.store.pending_count() > 0
        # later (the killed worker's leases have run out), another worker takes over
        clock = FakeClock(datetime.now(UTC) + timedelta(minutes=10))
        a.now = b.now = clock.now
        svc2, worker = make(home, clock)
        drain(worker)
        assert svc2.store.pending_count() == 0
        for rx, pid in ((a, "pa"), (b, "pb")):
            assert set(rx.processed) == set(feed_ids(svc2, pid)) and len(rx.processed) == 150
            assert not rx.bad_signatures
            for mid, bodies in rx.bodies_by_id.items():  # sent again after the kill: the same bytes
                assert len(set(bodies)) == 1, mid
        svc2.close()
    svc.close()


class RebindingDNS:
    """An aiohttp resolver for a partner's DNS that answers with an address of our own network."""

    def __init__(self, address="127.0.0.1"):
        self.address, self.asked = address, []

    async def resolve(self, host, port=0, family=0):
        import socket

        self.asked.append(host)
        return [{"hostname": host, "host": self.address, "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self):
        return None


def test_webhooks_never_reach_internal_addresses_even_after_dns_rebinding(tmp_path):
    """The URL resolved to a public address when it was configured; at delivery the partner's DNS answers
    127.0.0.1. The worker refuses, says why, keeps the message; only an allowed network gets through."""
    from alerts.netguard import AddressPolicy, parse_networks
    from settings import load_settings

    strict = load_settings(home=tmp_path / "home", environ={})  # no internal network allowed
    clock = FakeClock(datetime.now(UTC))
    svc = open_service(strict, clock=clock)
    with Receiver(now=clock.now) as rx:
        svc.store.resolve = lambda host: ["93.184.216.34"]  # at configuration: a public address
        c = svc.store.add_partner("etda", "ETDA", clock.now(), webhook_url=f"https://hooks.partner.test:{rx.port}/hook")
        rx.secret = c.webhook_secret
        verdict(svc.events, "shopee:1", "unlicensed", 90)
        dns = RebindingDNS()
        worker = AlertWorker(svc.store, svc.publisher, WebhookNotifier(1.0, clock, policy=svc.store.policy, dns=dns),
                             engine=svc.engine, clock=clock, poll=0.05)
        drain(worker)
        assert dns.asked == ["hooks.partner.test"] and rx.requests == 0  # resolved, then refused: nothing sent
        d = svc.store.deliveries("etda")[0]
        assert d["state"] == "pending" and d["last_status"] is None
        assert d["last_error"] == ("refused: hooks.partner.test resolves to 127.0.0.1, which is a loopback address; "
                                   "webhooks may not reach internal networks (an administrator can allow a network "
                                   "with [alerts] webhook_allow_networks)")
        # an address written into the URL is judged without DNS: an http URL that an administrator allowed
        # once, after the allowance was taken back
        svc.store.policy = AddressPolicy(parse_networks(["127.0.0.1/32"]))
        svc.store.add_partner("relay", "Relay", clock.now(), webhook_url=rx.url)
        svc.store.policy = AddressPolicy()
        verdict(svc.events, "shopee:2", "unlicensed", 90)
        drain(worker)
        errors = [r["last_error"] for r in svc.store.deliveries("relay")]
        assert errors and all(e.startswith("refused: 127.0.0.1 is a loopback address") for e in errors)
        assert rx.requests == 0
        # the control: the same resolver, with the administrator allowing 127.0.0.1, reaches the receiver,
        # so the refusals above were the policy's, after resolution, and not a broken test resolver
        allowed = AddressPolicy(parse_networks(["127.0.0.1/32"]))
        for pid in ("etda", "relay"):
            svc.store.update_partner(pid, clock.now(), enabled=False)
        svc.store.policy, svc.store.resolve = allowed, (lambda host: ["127.0.0.1"])
        ctl = svc.store.add_partner("control", "Control", clock.now(), webhook_url=f"http://hooks.partner.test:{rx.port}/hook")
        rx.secret = ctl.webhook_secret
        verdict(svc.events, "shopee:3", "unlicensed", 90)
        dns2 = RebindingDNS()
        worker2 = AlertWorker(svc.store, svc.publisher, WebhookNotifier(1.0, clock, policy=allowed, dns=dns2),
                              engine=svc.engine, clock=clock, poll=0.05)
        drain(worker2)
        assert dns2.asked == ["hooks.partner.test"] and not rx.bad_signatures
        assert [json.loads(r.body)["data"]["listing"]["key"] for r in rx.processed.values()] == ["shopee:3"]
        assert svc.store.delivery_stats("control")["delivered"] == 1
    svc.close()
