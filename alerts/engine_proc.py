"""The alert engine in its own process beside a running delivery worker (`tiswatch partners deliver --loop`).

Why: in one process the engine (events -> partners' messages) and the webhook lanes took turns on one
core; a bulk confirmation of 1,000 listings for 5 partners queued 5,000 webhooks behind the engine's
work. In its own process the engine uses the machine's second core, and hands each message it makes
straight to the worker's lanes through a pipe, with its webhook body already made, instead of the
lanes finding it in alerts.sqlite on their next poll and claiming it there.

What keeps the guarantees:
- The engine commits messages, deliveries and its event cursor in one transaction, as before; a
  handed-over delivery is committed *leased* (`lease_until`), as if a lane had claimed it, so no
  other worker sends it meanwhile. If the worker dies before sending it, the lease runs out and the
  next worker sends it (same webhook-id, same bytes: the body is made from the stored message the
  same way in every process). Only messages with no earlier delivery of the same alert still queued
  are handed over; the others wait their turn in the queue (store.claim_due keeps an alert's order).
- Until the engine process says it is ready, and if it ever dies, the worker runs the engine itself
  (`AlertWorker.run`): both may run a batch at the same time safely (the cursor is read inside the
  write transaction).
- The engine process ends when the worker tells it to or when the pipe closes (the worker exited or
  was killed).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("tiswatch.alerts")
CHUNK = 64  # deliveries per pipe message


def child_main(settings: Any, conn: Any, batch: int, poll: float, lease_seconds: float) -> None:
    """The engine process: handle events in small batches, hand the new deliveries over, repeat."""
    from alerts.service import open_service

    svc = open_service(settings)
    svc.engine.handoff = timedelta(seconds=lease_seconds)
    try:
        conn.send(("ready", os.getpid()))
        checkpointed = time.monotonic()
        while True:
            r = None
            try:
                if svc.engine.lag() or svc.store.flag("reconcile_all"):  # reads only: no write lock while idle
                    r = svc.engine.process(batch)
            except Exception:
                log.exception("alert engine batch failed; retrying")
            fresh = svc.engine.take_fresh()
            for row in fresh:  # the webhook body, made once here instead of in the sender
                try:
                    row["prepared"] = svc.publisher.body(row)
                    del row["payload"]  # in the body; half the bytes through the pipe
                except Exception:  # the sender makes it (and records why it cannot)
                    row["prepared"] = None
            for i in range(0, len(fresh), CHUNK):
                conn.send(("fresh", fresh[i:i + CHUNK]))
            if r is not None and r.events:
                conn.send(("done", r.events, r.messages, time.process_time()))
            busy = r is not None and r.events >= batch
            if not busy and time.monotonic() - checkpointed > 5:
                # the worker leaves checkpoints to us (AlertWorker._checkpoints): also while no event
                # comes and it keeps writing delivery results (a backlog draining), the log is copied back
                try:
                    svc.store.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except Exception:
                    log.debug("checkpoint skipped", exc_info=True)
                checkpointed = time.monotonic()
            if conn.poll(0 if busy else poll) and conn.recv() == "stop":
                break
    except (EOFError, OSError):
        pass  # the worker is gone; what we leased to it is sent by the next worker when the leases run out
    finally:
        try:
            conn.send(("stopped", time.process_time()))
        except (OSError, ValueError):
            pass
        svc.close()


class EngineProcess:
    """The worker's handle on its engine process (`python -m alerts.engine_proc FD`: a fresh interpreter,
    not multiprocessing's spawn, which would run the calling program's main module again)."""

    def __init__(self, settings: Any, *, batch: int = 20, poll: float = 0.05, lease_seconds: float = 110.0):
        self.settings, self.batch, self.poll, self.lease_seconds = settings, batch, poll, lease_seconds
        self.conn: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.dead = False
        self.cpu = 0.0  # the engine process's CPU seconds so far (as it last said)

    def start(self) -> None:
        mine, theirs = socket.socketpair()
        self.conn = Connection(mine.detach())
        fd = theirs.fileno()
        try:
            # its own session: Ctrl-C in a terminal reaches the worker, which stops it in order
            self.proc = subprocess.Popen([sys.executable, "-m", "alerts.engine_proc", str(fd)], pass_fds=(fd,),
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            theirs.close()
        self.conn.send((self.settings, self.batch, self.poll, self.lease_seconds))

    @property
    def active(self) -> bool:
        return self.ready and not self.dead

    def receive(self) -> list[tuple[Any, ...]]:
        """Every message waiting in the pipe (without blocking for a new one); marks the process dead
        when the pipe closed."""
        out: list[tuple[Any, ...]] = []
        try:
            while self.conn.poll():
                m = self.conn.recv()
                if m[0] == "ready":
                    self.ready = True
                elif m[0] == "done":
                    self.cpu = m[3]
                elif m[0] == "stopped":
                    self.cpu = m[1]
                    self.dead = True
                out.append(m)
        except (EOFError, OSError):
            self.dead = True
        return out

    def stop(self, timeout: float = 10.0) -> list[tuple[Any, ...]]:
        """Ask the process to stop after its batch; returns what it still sent."""
        out: list[tuple[Any, ...]] = []
        if self.proc is None:
            return out
        try:
            self.conn.send("stop")
        except (OSError, ValueError):
            pass
        deadline = time.monotonic() + timeout
        while not self.dead and time.monotonic() < deadline:
            if self.conn.poll(0.05):
                out += self.receive()
            elif self.proc.poll() is not None:
                out += self.receive()
                break
        try:
            self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(5)
        self.conn.close()
        self.dead = True
        return out


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker stops us in order
    conn = Connection(int(argv[0]))
    try:
        settings, batch, poll, lease = conn.recv()
    except (EOFError, OSError):
        return
    child_main(settings, conn, batch, poll, lease)


if __name__ == "__main__":
    main(sys.argv[1:])
