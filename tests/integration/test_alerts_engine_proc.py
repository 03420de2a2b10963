"""`deliver --loop` with the alert engine in its own process: new messages are handed straight to the
lanes (leased, body made), an alert's later message never overtakes an earlier queued one, and when
the engine process dies the worker runs the engine itself; nothing is lost or sent twice."""

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from alerts_helpers import Receiver, verdict

from alerts.clock import run_async
from alerts.delivery import build_worker, deliver
from alerts.engine_proc import EngineProcess
from alerts.service import open_service

pytestmark = pytest.mark.server


@pytest.fixture
def home(home):
    home.alerts.webhook_allow_networks = ["127.0.0.1/32"]
    return home


def wait_for(cond, seconds=60.0):
    deadline = time.time() + seconds
    while not cond() and time.time() < deadline:
        time.sleep(0.02)
    return cond()


def test_the_engine_process_hands_new_messages_to_the_lanes(home):
    svc = open_service(home)
    with Receiver() as a, Receiver() as b:
        a.secret = svc.store.add_partner("pa", "A", svc.clock.now(), webhook_url=a.url).webhook_secret
        b.secret = svc.store.add_partner("pb", "B", svc.clock.now(), webhook_url=b.url).webhook_secret
        stop, out = threading.Event(), {}
        t = threading.Thread(target=lambda: out.update(st=deliver(home, loop=True, stop=stop)))
        t.start()
        try:
            for i in range(40):
                verdict(svc.events, f"shopee:{i}", "unlicensed", 90)
            assert wait_for(lambda: len(a.processed) == 40 and len(b.processed) == 40)
        finally:
            stop.set()
            t.join(60)
        st = out["st"]
        assert st.delivered == 80 and st.messages == 80
        assert st.engine_cpu > 0  # an engine process ran (until it was ready, the worker ran the engine itself)
        assert svc.store.pending_count() == 0 and not a.duplicates and not b.duplicates
        assert not a.bad_signatures and not b.bad_signatures
        for rx, pid in ((a, "pa"), (b, "pb")):  # the body made by the engine process is the feed's message
            rows, _, _ = svc.store.feed(pid, 0, 1000)
            assert {r["msg_id"]: svc.publisher.body(r) for r in rows} == {m: r.body for m, r in rx.processed.items()}
            for d in svc.store.deliveries(pid, limit=1000):
                assert d["state"] == "delivered" and d["attempts"] == 1 and d["last_status"] == 204
    svc.close()


def test_a_later_message_of_an_alert_waits_for_the_earlier_one(home):
    """Handed over (leased at once) only when no earlier delivery of the alert is still queued."""
    svc = open_service(home)
    with Receiver() as rx:
        svc.store.add_partner("pa", "A", svc.clock.now(), webhook_url=rx.url)
        svc.engine.handoff = timedelta(minutes=2)
        verdict(svc.events, "shopee:1", "unlicensed", 90)
        svc.engine.process()
        fresh = svc.engine.take_fresh()
        assert [(r["type"], r["key"]) for r in fresh] == [("alert.opened", "shopee:1")]
        d = svc.store.deliveries("pa")[0]
        assert d["state"] == "pending" and svc.store.db.execute(
            "SELECT lease_until FROM deliveries WHERE message_id=?", (d["message_id"],)).fetchone()[0]
        # not sent yet, and the listing turns out licensed: the retraction must not overtake the alert
        verdict(svc.events, "shopee:1", "licensed", 5, reasons=["licence_match:ท1-1/1"])
        svc.engine.process()
        assert svc.engine.take_fresh() == []
        later = svc.store.deliveries("pa")[0]
        assert later["type"] == "alert.retracted" and svc.store.db.execute(
            "SELECT lease_until FROM deliveries WHERE message_id=?", (later["message_id"],)).fetchone()[0] is None
        # a failed batch hands nothing over (its messages were rolled back)
        verdict(svc.events, "shopee:2", "unlicensed", 90)
        real, svc.engine.on_event = svc.engine.on_event, lambda ev, facts: 1 / 0
        with pytest.raises(ZeroDivisionError):
            svc.engine.process()
        assert svc.engine.take_fresh() == []
        svc.engine.on_event = real
    svc.close()


def test_when_the_engine_process_dies_the_worker_runs_the_engine_itself(home):
    svc = open_service(home)
    with Receiver() as rx:
        rx.secret = svc.store.add_partner("pa", "A", svc.clock.now(), webhook_url=rx.url).webhook_secret
        worker, wsvc = build_worker(home)
        proc = worker.engine_proc = EngineProcess(home, lease_seconds=worker.lease.total_seconds())
        stop = threading.Event()
        t = threading.Thread(target=lambda: run_async(lambda: worker.run(stop)))
        t.start()
        try:
            assert wait_for(lambda: proc.ready)
            for i in range(10):
                verdict(svc.events, f"shopee:{i}", "unlicensed", 90)
            assert wait_for(lambda: len(rx.processed) == 10)
            assert worker.stats.handed == 10  # none had to be found in the queue and claimed
            rows, _, _ = svc.store.feed("pa", 0, 1000)  # the body made by the engine process is the feed's message
            assert {r["msg_id"]: svc.publisher.body(r) for r in rows} == {m: r.body for m, r in rx.processed.items()}
            os.kill(proc.proc.pid, signal.SIGKILL)
            assert wait_for(lambda: proc.dead)
            for i in range(10, 20):
                verdict(svc.events, f"shopee:{i}", "unlicensed", 90)
            assert wait_for(lambda: len(rx.processed) == 20)
        finally:
            stop.set()
            t.join(60)
        assert svc.store.pending_count() == 0 and not rx.duplicates and not rx.bad_signatures
        assert worker.stats.delivered == 20
        wsvc.close()
    svc.close()


def test_a_lane_holding_a_long_handed_queue_keeps_its_leases(home):
    """A slow partner and many handed-over messages: the lane outlasts the leases it was given and
    extends them, so a second worker draining meanwhile never takes (and sends again) one of them."""
    svc = open_service(home)
    with Receiver(delay=0.25) as rx:
        rx.secret = svc.store.add_partner("pa", "A", svc.clock.now(), webhook_url=rx.url, concurrency=1).webhook_secret
        worker, wsvc = build_worker(home)
        worker.lease = timedelta(seconds=2)
        proc = worker.engine_proc = EngineProcess(home, lease_seconds=2)
        other, osvc = build_worker(home)
        stop = threading.Event()
        t = threading.Thread(target=lambda: run_async(lambda: worker.run(stop)))
        t.start()
        try:
            assert wait_for(lambda: proc.ready)
            for i in range(20):
                verdict(svc.events, f"shopee:{i}", "unlicensed", 90)
            assert wait_for(lambda: worker.stats.events == 20)
            taken = 0
            while len(rx.processed) < 20 and wait_for(lambda: False, 0.3) is False:
                taken += run_async(other.drain).attempts  # what it could claim: leases that ran out
        finally:
            stop.set()
            t.join(60)
        assert len(rx.processed) == 20 and rx.duplicates == [] and taken == 0
        assert worker.stats.handed == 20
        wsvc.close()
        osvc.close()
    svc.close()
