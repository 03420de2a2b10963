"""The webhook delivery worker: at-least-once, one lane per partner, retries with backoff, dead letters.

Each partner with a webhook URL gets its own lane (an asyncio task) with its own concurrency limit and
its own circuit breaker, so a slow or dead partner only ever occupies its own lane: the others are
not delayed. A message keeps its webhook-id on every retry and its body is fixed at the first attempt
(retries send the same bytes); failed attempts wait per `backoff.RetryPolicy` and a message not
delivered within the retry window (72 h) moves to the dead-letter list, from which an administrator can
replay it (`tiswatch partners replay`). Every attempt is recorded (time, status code, error, latency).

Entry points: `AlertWorker.drain()` (handle the event log, send everything due now, return: the
scheduler's job and `tiswatch partners deliver`), `AlertWorker.run(stop)` (keep going until `stop` is
set: `tiswatch partners deliver --loop`), and `deliver(settings)` which wires them to a data directory.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.backoff import RetryPolicy, parse_retry_after
from alerts.clock import Clock, SystemClock, iso, parse_iso, run_async
from alerts.engine import AlertEngine, Publisher
from alerts.engine_proc import EngineProcess
from alerts.notify import Notifier, Outgoing, WebhookNotifier
from alerts.secretbox import SecretsKeyError
from alerts.store import AlertStore, Partner

log = logging.getLogger("tiswatch.alerts")


@dataclass
class DrainStats:
    events: int = 0
    messages: int = 0
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    handed: int = 0  # deliveries handed straight to the lanes by the engine process (not claimed from the queue)
    engine_cpu: float = 0.0  # CPU seconds of the engine process (run() with one), not counted in this process
    per_partner: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, pid: str, what: str, n: int = 1) -> None:
        setattr(self, what, getattr(self, what) + n)
        d = self.per_partner.setdefault(pid, {"attempts": 0, "delivered": 0, "failed": 0, "dead": 0})
        d[what] = d.get(what, 0) + n


class AlertWorker:
    def __init__(self, store: AlertStore, publisher: Publisher, notifier: Notifier, *, engine: AlertEngine | None = None,
                 clock: Clock | None = None, policy: RetryPolicy | None = None, timeout: float = 10.0,
                 poll: float = 0.25, rng: Callable[[], float] = random.random, stop_grace: float = 5.0):
        self.store, self.publisher, self.notifier, self.engine = store, publisher, notifier, engine
        self.clock = clock or SystemClock()
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.lease = timedelta(seconds=5 * timeout + 60)  # covers a prefetched message's wait behind 4 others
        self.poll = poll
        self.batch = 50  # events per engine step in run()
        self.stop_grace = stop_grace
        self.rng = rng
        self.stats = DrainStats()
        self._wake: dict[str, asyncio.Event] = {}
        self._failures: dict[str, int] = {}
        self._results: list[dict[str, Any]] = []
        self._flushed = time.monotonic()
        self.engine_proc: EngineProcess | None = None  # run(): the engine in its own process (alerts/engine_proc.py)
        self._handed: dict[str, list[Any]] = {}  # partner -> deliveries the engine process leased to us
        self._partner_dirty: dict[str, bool] = {}  # this worker changed the partner's row: read it again

    # ---- one attempt ---------------------------------------------------------------------------------
    async def _attempt(self, p: Partner, row: Any, secrets_: list[str], secrets_error: str | None = None) -> None:
        mid = row["message_id"]
        body = row["body"]
        first = body is None  # never attempted: its body is made now (or was, by the engine process)
        try:
            if first:
                body = (row.get("prepared") if isinstance(row, dict) else None) or self.publisher.body(row)
            if not secrets_:
                raise RuntimeError(secrets_error or "the partner has no webhook secret")
        except Exception as e:  # a bug or a locked database must not kill the lane; the message stays queued
            log.exception("cannot prepare %s for %s", row["msg_id"], p.id)
            now = self.clock.now()
            self._record(mid, p.id, now, ok=False, status=None, error=f"internal: {e}", latency_ms=0.0,
                         next_at=self.policy.next_attempt(now, row["attempts"] + 1, self.rng()), dead=False, body=None)
            return
        try:
            res = await self.notifier.send(p.webhook_url or "", Outgoing(id=row["msg_id"], body=bytes(body),
                                                                          secrets=tuple(secrets_)))
        except asyncio.CancelledError:  # the worker is stopping: give the message back, it is sent later
            self.store.release([mid])
            raise
        now = self.clock.now()
        keep = bytes(body) if first else None  # a retry sends these very bytes (a delivered body is not kept)
        self.stats.count(p.id, "attempts")
        if res.ok:
            self._record(mid, p.id, now, ok=True, status=res.status, error=None, latency_ms=res.latency_ms,
                         next_at=None, dead=False, body=None)
            self.stats.count(p.id, "delivered")
            if self._failures.get(p.id):
                self._failures[p.id] = 0
                self._flush()
                self.store.partner_recovered(p.id, now)
                self._partner_dirty[p.id] = True
            return
        attempts = row["attempts"] + 1
        deadline = self.policy.deadline(parse_iso(row["created_at"]))
        nxt = self.policy.next_attempt(now, attempts, self.rng(), parse_retry_after(res.retry_after, now))
        dead = now >= deadline
        self._record(mid, p.id, now, ok=False, status=res.status, error=res.error, latency_ms=res.latency_ms,
                     next_at=min(nxt, deadline), dead=dead, body=keep)
        self.stats.count(p.id, "dead" if dead else "failed")
        n = self._failures.get(p.id, 0) + 1
        self._failures[p.id] = n
        pause = self.policy.circuit_pause(n, self.rng())
        self.store.partner_failed(p.id, n, now + timedelta(seconds=pause) if pause is not None else None)
        self._partner_dirty[p.id] = True

    def _record(self, mid: int, pid: str, at: datetime, **kw: Any) -> None:
        """Results are written in batches (one transaction for many attempts): a crash before a flush only
        means those messages are sent again, with the same webhook-id."""
        self._results.append({"message_id": mid, "partner_id": pid, "at": at, **kw})
        if len(self._results) >= 200:
            self._flush()

    def _flush(self) -> None:
        if self._results:
            batch, self._results = self._results, []
            self.store.record_many(batch)
        self._flushed = time.monotonic()

    # ---- a partner's lane ------------------------------------------------------------------------------
    def _held_back(self, p: Partner, now: datetime) -> bool:
        """Paused (circuit open) or probed one message at a time."""
        return bool(p.paused_until and p.paused_until > iso(now)) or self._failures.get(p.id, 0) >= self.policy.circuit_after

    def _slots(self, p: Partner, now: datetime, inflight: int) -> int:
        if p.paused_until and p.paused_until > iso(now):
            return 0
        if self._failures.get(p.id, 0) >= self.policy.circuit_after:
            return max(0, 1 - inflight)  # probing: one message at a time until one gets through
        return max(0, p.concurrency - inflight)

    def _next_wait(self, pid: str, now: datetime) -> float:
        """Seconds until something of this lane could be due, at most `poll` (a new message wakes the
        lane earlier)."""
        t = self.store.next_due(pid)
        if not t:
            return self.poll
        return max(0.01, min(self.poll, (parse_iso(t) - now).total_seconds()))

    @staticmethod
    async def _pause(wake: asyncio.Event, timeout: float | None) -> None:
        """Until `wake` is set (a delivery finished, new messages, stopping) or `timeout` passes; then
        clear it. The caller looks at everything again after each pause, so a wake-up is never lost."""
        if not wake.is_set():
            timer = asyncio.get_running_loop().call_later(timeout, wake.set) if timeout is not None else None
            try:
                await wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()
        wake.clear()

    async def _lane(self, pid: str, until_idle: bool, stop: asyncio.Event | None = None) -> None:
        inflight: set[asyncio.Task[None]] = set()
        finished: list[asyncio.Task[None]] = []
        queue: deque[Any] = deque()  # claimed (leased) and not yet started
        wake = self._wake.setdefault(pid, asyncio.Event())

        def done(t: asyncio.Task[None]) -> None:
            inflight.discard(t)
            finished.append(t)
            wake.set()

        p = self.store.partner(pid)
        self._failures.setdefault(pid, p.failures if p else 0)
        expired_at: datetime | None = None
        secrets_: list[str] = []
        secrets_error: str | None = None
        decrypted: dict[str, str] = {}  # stored (encrypted) secret -> plain: decrypted once per lane
        renew_at = float("inf")  # when the leases of what `queue` holds are to be extended (monotonic time)

        def load_secrets() -> None:
            nonlocal secrets_, secrets_error
            try:
                secrets_ = self.store.webhook_secrets(pid, now, decrypted)
            except SecretsKeyError as e:  # each message records why it was not sent; nothing is lost
                log.error("partner %s: %s", pid, e)
                secrets_, secrets_error = [], str(e)
            else:
                secrets_error = None

        try:
            checked = float("-inf")
            while stop is None or not stop.is_set():
                if time.monotonic() - checked > 0.02 or self._partner_dirty.pop(pid, False):
                    # at most every 20 ms (an administrator's change is seen within that), at once after
                    # this worker changed the partner's failure state
                    p = self.store.partner_fresh(pid)
                    checked = time.monotonic()
                if p is None or not p.enabled or not p.webhook_url:
                    break
                now = self.clock.now()
                if expired_at is None or now - expired_at >= timedelta(seconds=60):
                    dead = self.store.expire(pid, now - timedelta(seconds=self.policy.give_up_after), now)
                    if dead:
                        self.stats.count(pid, "dead", dead)
                    expired_at = now
                if self._results and (time.monotonic() - self._flushed > 0.1 or not inflight):
                    self._flush()
                handed = self._handed.pop(pid, None)
                if handed:  # leased to us by the engine process: after what this lane holds already
                    if not queue:
                        renew_at = time.monotonic() + self.lease.total_seconds() / 3
                    queue.extend(handed)
                    self.stats.handed += len(handed)
                    load_secrets()
                if queue and time.monotonic() >= renew_at:
                    # a long queue (a bulk handed over to a slow partner) outlasts its leases: extend them, so
                    # that no other worker takes these messages while this lane still holds them
                    self.store.renew([r["message_id"] for r in queue], now + self.lease)
                    renew_at = time.monotonic() + self.lease.total_seconds() / 3
                slots = self._slots(p, now, len(inflight))
                if slots < len(queue) and self._held_back(p, now):
                    # the partner is paused or probed: give back what it will not get now (while it is
                    # healthy the queue is only a prefetch, sent as slots free up)
                    self.store.release([r["message_id"] for r in list(queue)[slots:]])
                    queue = deque(list(queue)[:slots])
                if slots and not queue:
                    probing = self._failures.get(pid, 0) >= self.policy.circuit_after
                    queue.extend(self.store.claim_due(pid, now, 1 if probing else p.concurrency * 4, self.lease))
                    if queue:
                        renew_at = time.monotonic() + self.lease.total_seconds() / 3
                        load_secrets()
                while queue and slots > 0:
                    t = asyncio.create_task(self._attempt(p, queue.popleft(), secrets_, secrets_error))
                    inflight.add(t)
                    t.add_done_callback(done)
                    slots -= 1
                for t in finished:
                    if not t.cancelled() and t.exception() is not None:
                        log.error("delivery task failed: %r", t.exception())
                finished.clear()
                if not inflight:
                    if until_idle:
                        break
                    await self._pause(wake, self._next_wait(pid, now))
                    continue
                await self._pause(wake, 0.1 if self._results else (None if until_idle else self.poll))
        finally:
            if queue:
                self.store.release([r["message_id"] for r in queue])
            if inflight:  # let answers that are on their way arrive, then give the rest back
                _, late = await asyncio.wait(inflight, timeout=self.stop_grace)
                for t in late:
                    t.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            self._flush()

    def _webhook_partners(self) -> list[str]:
        return [p.id for p in self.store.partners(enabled_only=True) if p.webhook_url]

    # ---- entry points ------------------------------------------------------------------------------------
    async def drain(self) -> DrainStats:
        """Handle all pending events, then send everything that is due now, every partner in parallel;
        return when nothing is due (retries scheduled for later stay queued)."""
        self.stats = DrainStats()
        self._failures, self._wake = {}, {}
        if self.engine is not None:
            r = self.engine.process_all()
            self.stats.events, self.stats.messages = r.events, r.messages
        try:
            await asyncio.gather(*(self._lane(pid, until_idle=True) for pid in self._webhook_partners()))
        finally:
            await self.notifier.aclose()  # its connections belong to this event loop
        return self.stats

    async def run(self, stop: asyncio.Event | threading.Event) -> None:
        """Read the event log and deliver continuously until `stop` is set."""
        self.stats = DrainStats()
        self._failures, self._wake = {}, {}
        astop = stop if isinstance(stop, asyncio.Event) else asyncio.Event()
        lanes: dict[str, asyncio.Task[None]] = {}
        self._handed = {}
        proc = self.engine_proc
        loop = asyncio.get_running_loop()
        tick = asyncio.Event()  # the engine process said something
        if proc is not None:
            try:
                proc.start()
            except Exception:  # e.g. no interpreter to start: the engine runs here, as without a process
                log.exception("cannot start the alert engine process; this worker runs the engine itself")
                proc = None
            else:
                loop.add_reader(proc.conn.fileno(), tick.set)
        try:
            while not astop.is_set():
                if isinstance(stop, threading.Event) and stop.is_set():
                    astop.set()
                    break
                for pid in self._webhook_partners():
                    if pid not in lanes or lanes[pid].done():
                        lanes[pid] = asyncio.create_task(self._lane(pid, until_idle=False, stop=astop))
                if proc is not None:
                    tick.clear()
                    was = proc.active
                    self._from_engine(proc.receive())
                    if proc.dead:
                        log.error("the alert engine process stopped; this worker runs the engine itself")
                        loop.remove_reader(proc.conn.fileno())
                        proc = None
                        self._checkpoints(True)
                    else:
                        if proc.active and not was:
                            self._checkpoints(False)
                        self._release_orphans(lanes)
                busy = False
                if self.engine is not None and (proc is None or not proc.active):
                    try:  # small batches: the lanes get the loop between them, so a backlog of events
                        r = self.engine.process(self.batch)  # does not hold up the first deliveries
                    except Exception:
                        log.exception("alert engine batch failed; retrying")
                        r = None
                    if r is not None and r.messages:
                        self.stats.messages += r.messages
                        for ev in self._wake.values():
                            ev.set()
                    busy = r is not None and r.events >= self.batch
                if busy:
                    await asyncio.sleep(0.001)
                elif proc is not None:  # woken by the engine process at once, by the stop flag within `poll`
                    try:
                        await asyncio.wait_for(tick.wait(), 0.05 if not proc.active else self.poll)
                    except TimeoutError:
                        pass
                else:
                    await asyncio.sleep(self.poll)  # real time: how often the event log is polled
        finally:
            astop.set()
            for ev in self._wake.values():
                ev.set()
            if proc is not None:
                loop.remove_reader(proc.conn.fileno())
                self._from_engine(proc.stop())
                self._checkpoints(True)
            if lanes:
                await asyncio.gather(*lanes.values(), return_exceptions=True)
            leftover = [r["message_id"] for rows in self._handed.values() for r in rows]
            self._handed = {}
            self.store.release(leftover)  # handed over, never started: back to the queue
            await self.notifier.aclose()

    def _from_engine(self, messages: list[tuple[Any, ...]]) -> None:
        """What the engine process sent: deliveries leased to us (to the lanes), batch counts."""
        for m in messages:
            if m[0] == "fresh":
                for row in m[1]:
                    self._handed.setdefault(row["partner_id"], []).append(row)
                for pid in {row["partner_id"] for row in m[1]}:
                    w = self._wake.get(pid)
                    if w is not None:
                        w.set()
            elif m[0] == "done":
                self.stats.events += m[1]
                self.stats.messages += m[2]
        if self.engine_proc is not None:
            self.stats.engine_cpu = self.engine_proc.cpu

    def _checkpoints(self, mine: bool) -> None:
        """Whether this connection copies alerts.sqlite's write-ahead log into the database when it grows
        (SQLite does it in the commit that passes 1,000 pages, which stalls every lane meanwhile): not
        while the engine process, which writes most of the log, does it."""
        try:
            self.store.db.execute(f"PRAGMA wal_autocheckpoint={1000 if mine else 0}")
        except Exception:  # a busy database: the default stays, which is only slower
            log.debug("wal_autocheckpoint not changed", exc_info=True)

    def _release_orphans(self, lanes: dict[str, asyncio.Task[None]]) -> None:
        """Deliveries handed over for a partner without a running lane (disabled, no webhook any more):
        back to the queue, for whoever sends them later."""
        for pid in [p for p in self._handed if p not in lanes or lanes[p].done()]:
            self.store.release([r["message_id"] for r in self._handed.pop(pid)])


# ---- wiring to a data directory --------------------------------------------------------------------------
def policy_from(settings: Any) -> RetryPolicy:
    a = settings.alerts
    return RetryPolicy(base=a.retry_base_seconds, max_delay=a.retry_max_delay_seconds,
                       give_up_after=a.retry_hours * 3600.0, circuit_after=a.circuit_after)


def build_worker(settings: Any, *, clock: Clock | None = None, notifier: Notifier | None = None) -> tuple[AlertWorker, Any]:
    """A worker on a data directory, and the service object whose `close()` releases it."""
    from alerts.service import open_service

    svc = open_service(settings, clock=clock)
    notifier = notifier or WebhookNotifier(settings.alerts.webhook_timeout, svc.clock, policy=svc.store.policy)
    worker = AlertWorker(svc.store, svc.publisher, notifier,
                         engine=svc.engine, clock=svc.clock, policy=policy_from(settings),
                         timeout=settings.alerts.webhook_timeout, poll=settings.alerts.poll_seconds)
    return worker, svc


def deliver(settings: Any, *, loop: bool = False, stop: threading.Event | None = None, clock: Clock | None = None,
            notifier: Notifier | None = None) -> DrainStats:
    """Handle the event log and deliver webhooks: once (what is due now), or until `stop` is set when
    `loop`. This is the function the scheduler calls."""
    worker, svc = build_worker(settings, clock=clock, notifier=notifier)
    if loop and clock is None:  # the engine on the machine's other core, handing new messages straight over
        worker.engine_proc = EngineProcess(settings, lease_seconds=worker.lease.total_seconds())

    async def main() -> DrainStats:
        try:
            if loop:
                await worker.run(stop or threading.Event())
                return worker.stats
            return await worker.drain()
        finally:
            await worker.notifier.aclose()

    try:
        return run_async(main)
    finally:
        svc.close()
