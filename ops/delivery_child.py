"""The delivery worker as a child of `tiswatch run`: webhooks go out within seconds of a verdict.

The `alerts` job delivers once a minute; a partner waiting for a takedown alert should not wait that
long, so the service also keeps `tiswatch partners deliver --loop` running in a child process of its
own (its alert engine in a grandchild, alerts/engine_proc.py). Two workers at once are safe: messages
are claimed with leases, so the job only picks up what the child has not (none, normally).

The child is restarted when it exits (backoff 1 s doubling to 60 s, reset after a minute of running).
On stop it gets SIGINT, which the worker handles in order (its engine process is stopped, the delivery
log written); a child still running `grace` seconds later is killed with its process group. Delivery is
at-least-once with the same webhook-id on every attempt, so a kill loses nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the thread that started it ends (the supervisor thread,
    which lives until the child has exited or the service process has died). Linux only; elsewhere a
    no-op."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def delivery_command(settings: Any, config: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "cli", "--home", str(settings.home)]
    if config:
        cmd += ["--config", str(config)]
    return cmd + ["partners", "deliver", "--loop"]


class DeliveryChild:
    def __init__(self, settings: Any, config: str | None = None, grace: float = 30.0):
        self.settings, self.config, self.grace = settings, config, grace
        self.proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="delivery-child", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        from settings import ROOT

        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        out = open(self.settings.log_dir / "delivery.out", "ab")  # noqa: SIM115 - the child holds it
        try:
            return subprocess.Popen(delivery_command(self.settings, self.config), cwd=str(ROOT), env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        finally:
            out.close()

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.proc = self._spawn()
            except OSError as e:
                log.error("cannot start the delivery worker: %s", e)
                self._stop.wait(60)
                continue
            log.info("delivery worker started (pid %d)", self.proc.pid)
            self.proc.wait()  # this thread outlives the child (its death signal is tied to the thread)
            if self._stop.is_set():
                return
            if time.monotonic() - started > 60:
                delay = 1.0
            log.warning("the delivery worker exited with status %s; starting it again in %.0f s (see %s)",
                        self.proc.returncode, delay, self.settings.log_dir / "delivery.out")
            self._stop.wait(delay)
            delay = min(60.0, delay * 2)

    def stop(self) -> None:
        """SIGINT (the worker stops in order), SIGKILL to its process group after the grace, then wait
        for the supervisor thread."""
        from crawlers.runner import kill_group, stop_child

        self._stop.set()
        p = self.proc
        if p is not None:
            if p.poll() is None:
                stop_child(p, self.grace, signal.SIGINT)  # the worker stops in order (KeyboardInterrupt)
            kill_group(p.pid)  # what is left: its engine process
            p.wait()
        if self._thread is not None:
            self._thread.join(10)
        late = self.proc
        if late is not None and late is not p and late.poll() is None:  # spawned just as we stopped
            late.kill()
            late.wait()
        log.info("delivery worker stopped")
