"""Alert delivery benchmark: latency from an officer's confirmation to the partner's webhook receiver,
and how fast a backlog drains after an outage. Prints a table; asserts nothing about time.

    .venv/bin/python -m tests.bench.bench_alerts [N_ALERTS] [N_PARTNERS]     # default 1000 5
    make bench                                                               # every benchmark, this one too

1. Latency. N flagged listings (real sandbox-world listings, checked and stored), P partners that take
   only officer-confirmed listings, each with its own webhook receiver in a separate process (as
   partners are). `decision: confirmed` events are appended to the event log (a) at a steady 20 per
   second, (b) all at once (a bulk confirmation); the delivery worker (`tiswatch partners deliver
   --loop`, default settings) runs in a thread of this process and starts its alert engine process as
   in production. Latency = arrival at the receiver - append time. Sender CPU = the worker thread's
   CPU time + the engine process's (all of it, its start-up included).
2. Backlog after an outage. The receivers answer 503 for one simulated hour (fake clock) while N
   alerts per partner are queued and retried; then they recover and the worker drains the backlog.
   Rate = messages delivered / wall seconds.
Baseline: the raw rate and latency of plain HTTP POSTs of the same bodies to the same receivers with
the same concurrency (P partners x 4), no signing, no database.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STEADY_RATE = 20.0  # decisions per second: an office of officers confirming, bulk actions included
sys.path.insert(0, str(ROOT))


# ---- receivers (child process) ------------------------------------------------------------------------
def serve_receivers(n: int) -> None:
    from aiohttp import web

    state = {"down": False, "got": {}}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        t = time.time()
        if state["down"]:
            return web.Response(status=503)
        mid = request.headers.get("webhook-id", "")
        if mid and mid not in state["got"]:
            d = json.loads(body)
            state["got"][mid] = (t, request.match_info["p"], d["data"]["listing"]["key"], d["type"])
        return web.Response(status=204)

    async def ctl(request: web.Request) -> web.Response:
        cmd = request.match_info["cmd"]
        if cmd == "down":
            state["down"] = True
        elif cmd == "up":
            state["down"] = False
        elif cmd == "reset":
            state["got"] = {}
        if cmd == "cpu":  # the receivers' own CPU seconds, to tell their share from the sender's
            return web.json_response({"cpu": time.process_time()})
        if cmd == "count":
            return web.json_response({"n": len(state["got"])})
        return web.json_response(state["got"] if cmd == "dump" else {"ok": True})

    async def main() -> None:
        app = web.Application(client_max_size=2**20)
        app.router.add_post("/hook/{p}", hook)
        app.router.add_post("/ctl/{cmd}", ctl)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ports = []
        for _ in range(n):
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        print(json.dumps(ports), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


class Receivers:
    def __init__(self, n: int):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_alerts", "--receivers", str(n)],
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.ports = json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]
        self._http: Any = None

    def url(self, i: int, partner: str) -> str:
        return f"http://127.0.0.1:{self.ports[i]}/hook/{partner}"

    def ctl(self, cmd: str):
        """One client for every call: the measuring process must not spend the worker's CPU (a new
        client per call built a TLS context each time, which cost more than the deliveries)."""
        import httpx

        if self._http is None:
            self._http = httpx.Client(timeout=60)
        return self._http.post(f"http://127.0.0.1:{self.ports[0]}/ctl/{cmd}").json()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self.proc.terminate()
        self.proc.wait(10)


# ---- set-up ---------------------------------------------------------------------------------------------
def seed_listings(settings, n: int) -> list[str]:
    from listings.events import open_events, verdict_event
    from listings.model import Listing
    from listings.store import open_store
    from matching import check
    from registry.index import Registry
    from sandbox.world import build_world

    w = build_world(seed=7, n_licences=600, n_listings=400)
    reg = Registry(w.licences, w.catalogue, version="bench")
    flagged = []
    for x in w.listings:
        li = Listing(**x.listing)
        v = check(li, reg)
        if v.flagged:
            flagged.append((li, v))
    st, ev = open_store(settings), open_events(settings)
    keys = []
    at = datetime(2026, 11, 22, 3, tzinfo=UTC)
    for i in range(n):
        li, v = flagged[i % len(flagged)]
        li = li.model_copy(update={"item_id": f"b{i}"})
        st.ingest(li, v, at)
        ev.append("verdict", li.key, verdict_event(v, None, li.marketplace, "crawl"), at=at)
        keys.append(li.key)
    st.close()
    ev.close()
    return keys


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


# ---- 1. latency -------------------------------------------------------------------------------------------
def latency_run(settings, rx: Receivers, keys: list[str], rate: float | None) -> dict[str, float]:
    from alerts.delivery import deliver
    from listings.events import open_events

    rx.ctl("reset")
    stop = threading.Event()
    cpu: dict[str, float] = {}

    def work() -> None:  # the worker's own CPU time (its thread), apart from the officers' appends, and its
        t = time.thread_time()  # engine process's (deliver --loop runs the alert engine in a process of its own)
        st = None
        try:
            st = deliver(settings, loop=True, stop=stop)
        finally:
            cpu["worker"] = time.thread_time() - t + (st.engine_cpu if st is not None else 0.0)
            cpu["engine"] = st.engine_cpu if st is not None else 0.0

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(1.0)  # the worker is up and idle
    rx_cpu = rx.ctl("cpu")["cpu"]
    ev = open_events(settings)
    appended: dict[str, float] = {}
    t0 = time.time()
    for i, k in enumerate(keys):
        if rate:
            wait = t0 + i / rate - time.time()
            if wait > 0:
                time.sleep(wait)
        ev.append("decision", k, {"decision": "confirmed", "note": "bench", "by": "bench", "previous": "new"})
        appended[k] = time.time()
    n_partners = len(rx.ports)
    want = len(keys) * n_partners
    deadline = time.time() + 120
    while time.time() < deadline:  # only a count while it runs: the receivers' record is read at the end
        if rx.ctl("count")["n"] >= want:
            break
        time.sleep(0.5)
    rx_cpu = rx.ctl("cpu")["cpu"] - rx_cpu
    got: dict = rx.ctl("dump")
    if len(got) < want:
        print(f"  (gave up waiting: {len(got)} of {want} received)")
    stop.set()
    worker.join(60)
    ev.close()
    lat = [t - appended[key] for (t, _p, key, typ) in got.values() if typ == "alert.opened" and key in appended]
    span = max(t for (t, *_r) in got.values()) - t0 if got else float("nan")
    return {"received": len(got), "expected": want, "p50": pct(lat, 0.5), "p95": pct(lat, 0.95), "max": max(lat or [0]),
            "span": span, "cpu": cpu.get("worker", float("nan")), "engine_cpu": cpu.get("engine", 0.0), "rx_cpu": rx_cpu}


def confirm_then_reopen(settings, keys: list[str]) -> None:
    """Take the confirmations back (and let the engine see it) so the next run confirms afresh."""
    from alerts.service import open_service
    from listings.events import open_events

    ev = open_events(settings)
    for k in keys:
        ev.append("decision", k, {"decision": "new", "previous": "confirmed", "by": "bench"})
    ev.close()
    svc = open_service(settings)
    svc.engine.process_all()
    svc.store.db.execute("UPDATE deliveries SET state='delivered' WHERE state='pending'")  # retractions: not measured
    svc.close()


# ---- 2. backlog after an outage -------------------------------------------------------------------------------
def outage_run(settings, rx: Receivers, keys: list[str]) -> dict[str, float]:
    from alerts.clock import FakeClock, run_async
    from alerts.delivery import build_worker
    from listings.events import open_events

    clock = FakeClock(datetime.now(UTC))
    worker, svc = build_worker(settings, clock=clock)
    rx.ctl("reset")
    rx.ctl("down")
    attempts_before = svc.store.db.execute("SELECT count(*) FROM attempts").fetchone()[0]
    ev = open_events(settings)
    per_step = max(1, len(keys) // 60)
    for minute in range(60):  # one simulated hour: alerts keep coming, every delivery fails
        for k in keys[minute * per_step:(minute + 1) * per_step]:
            ev.append("decision", k, {"decision": "confirmed", "by": "bench", "previous": "new"})
        run_async(worker.drain)
        clock.advance(minutes=1)
    for k in keys[60 * per_step:]:
        ev.append("decision", k, {"decision": "confirmed", "by": "bench", "previous": "new"})
    run_async(worker.drain)
    attempts_during = svc.store.db.execute("SELECT count(*) FROM attempts").fetchone()[0] - attempts_before
    backlog = svc.store.pending_count()
    rx.ctl("up")
    clock.advance(hours=6)  # the partners' pauses are over: the next probe goes out
    t0, cpu, rx_cpu = time.perf_counter(), time.process_time(), rx.ctl("cpu")["cpu"]
    rounds = 0
    while svc.store.pending_count() and rounds < 50:
        run_async(worker.drain)
        rounds += 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - cpu
    rx_cpu = rx.ctl("cpu")["cpu"] - rx_cpu
    delivered = backlog - svc.store.pending_count()
    got = rx.ctl("dump")

    async def close():
        await worker.notifier.aclose()

    run_async(close)
    svc.close()
    ev.close()
    return {"backlog": backlog, "delivered": delivered, "received": len(got), "seconds": secs, "rate": delivered / secs,
            "attempts_during": attempts_during, "cpu": cpu, "rx_cpu": rx_cpu}


# ---- baseline -------------------------------------------------------------------------------------------------
def raw_post(rx: Receivers, bodies: list[bytes], concurrency: int) -> dict[str, float]:
    import aiohttp

    from alerts.clock import run_async

    rx.ctl("reset")
    lat: list[float] = []
    rx_cpu = rx.ctl("cpu")["cpu"]
    cpu = time.process_time()

    async def main() -> float:
        sem = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
            async def one(i: int, b: bytes) -> None:
                async with sem:
                    t = time.perf_counter()
                    async with s.post(rx.url(i % len(rx.ports), f"p{i % len(rx.ports)}"), data=b,
                                      headers={"webhook-id": f"raw_{i}", "Content-Type": "application/json"}) as r:
                        await r.read()
                    lat.append(time.perf_counter() - t)

            t0 = time.perf_counter()
            await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
            return time.perf_counter() - t0

    secs = run_async(main)
    cpu = time.process_time() - cpu
    rx_cpu = rx.ctl("cpu")["cpu"] - rx_cpu
    return {"n": len(bodies), "seconds": secs, "rate": len(bodies) / secs, "p95": pct(lat, 0.95), "cpu": cpu,
            "rx_cpu": rx_cpu}


def main(n: int, partners: int) -> None:
    from alerts.rules import Filters
    from alerts.service import open_service
    from settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="alerts-bench-"))
    s = load_settings(home=tmp / "home", environ={}, alerts={"webhook_allow_networks": ["127.0.0.1/32"]})
    s.ensure_home()
    print(f"alerts benchmark: {n} alerts x {partners} partners, {os.cpu_count()} CPUs (shared machine: figures vary)")
    t = time.perf_counter()
    keys = seed_listings(s, n)
    print(f"set-up: {n} checked listings stored in {time.perf_counter() - t:.1f} s")
    rx = Receivers(partners)
    try:
        svc = open_service(s)
        for i in range(partners):
            svc.store.add_partner(f"p{i}", f"Partner {i}", datetime.now(UTC), webhook_url=rx.url(i, f"p{i}"),
                                  filters=Filters(confirmed_only=True))
        svc.engine.process_all()
        bodies = []
        svc.close()

        steady = latency_run(s, rx, keys, rate=STEADY_RATE)
        svc = open_service(s)
        bodies = [svc.publisher.body(r) for r in svc.store.db.execute(  # the bodies the partners were sent
            "SELECT m.msg_id, m.seq, m.type, m.payload, m.created_at AS msg_created_at, m.key FROM deliveries d"
            " JOIN messages m ON m.id=d.message_id WHERE d.state='delivered' ORDER BY d.message_id LIMIT ?", (n * partners,))]
        svc.close()
        confirm_then_reopen(s, keys)
        burst = latency_run(s, rx, keys, rate=None)
        confirm_then_reopen(s, keys)
        base = raw_post(rx, bodies, 4 * partners)
        out = outage_run(s, rx, keys)
    finally:
        rx.close()

    def per_msg(r: dict[str, Any], n_msgs: int) -> float:  # sender CPU microseconds per message
        return r["cpu"] / max(1, n_msgs) * 1e6

    base_cpu = per_msg(base, base["n"])
    rows = [
        ("raw HTTP POST, same receivers (baseline)", f"{base['rate']:.0f} msg/s", f"p95 {base['p95'] * 1000:.0f} ms", "1.00",
         base_cpu, base["rx_cpu"] / base["n"] * 1e6),
        (f"confirmation -> webhook, steady {STEADY_RATE:g} decisions/s",
         f"{steady['received']}/{steady['expected']} received", f"p50 {steady['p50']:.2f} s  p95 {steady['p95']:.2f} s",
         f"{steady['p95'] / base['p95']:.1f}x latency", per_msg(steady, steady["received"]),
         steady["rx_cpu"] / max(1, steady["received"]) * 1e6),
        (f"confirmation -> webhook, {n} at once (bulk)",
         f"{burst['received']}/{burst['expected']} in {burst['span']:.1f} s",
         f"p50 {burst['p50']:.2f} s  p95 {burst['p95']:.2f} s", f"{(burst['expected'] / burst['span']) / base['rate']:.2f}x rate",
         per_msg(burst, burst["received"]), burst["rx_cpu"] / max(1, burst["received"]) * 1e6),
        ("backlog drain after 1 h outage (fake clock)",
         f"{out['delivered']}/{out['backlog']} in {out['seconds']:.1f} s", f"{out['rate']:.0f} msg/s",
         f"{out['rate'] / base['rate']:.2f}x rate", per_msg(out, out["delivered"]),
         out["rx_cpu"] / max(1, out["delivered"]) * 1e6),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"\n{'what'.ljust(w)}  {'volume':<28}  {'figure (wall)':<28}  {'vs baseline':<14}  "
          f"{'sender CPU/msg':>14}  {'vs baseline':>11}  {'receivers CPU/msg':>17}")
    for r in rows:
        print(f"{r[0].ljust(w)}  {r[1]:<28}  {r[2]:<28}  {r[3]:<14}  {r[4]:>11.0f} us  {r[4] / base_cpu:>10.2f}x"
              f"  {r[5]:>14.0f} us")
    print("(sender CPU: the delivery worker's thread and its engine process for the latency runs, the whole process"
          " for the baseline and the drain; the steady run's CPU includes idling between decisions)")
    print(f"engine process CPU: {steady['engine_cpu']:.2f} s (steady), {burst['engine_cpu']:.2f} s (bulk), included above")
    print(f"\nduring the outage: {out['attempts_during']} attempts for {out['backlog']} queued messages "
          f"(the circuit breaker probes instead of retrying each); goal p95 <= 2 s: "
          f"{'met' if steady['p95'] <= 2 else 'NOT met'} (steady), {'met' if burst['p95'] <= 2 else 'not met'} (bulk)")


def test_alerts_benchmark():
    """`make bench` (pytest tests/bench) runs it with the defaults."""
    main(1000, 5)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--receivers":
        serve_receivers(int(sys.argv[2]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, int(sys.argv[2]) if len(sys.argv) > 2 else 5)
