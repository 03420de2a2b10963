"""`tiswatch run`: the scheduler and the review app in one process, with a graceful shutdown.

On SIGTERM (systemd stop, docker stop) or Ctrl-C:
1. the web server stops accepting connections and finishes the requests in flight (uvicorn);
2. the stop signal reaches the jobs: a running crawl child gets SIGTERM, so Scrapy finishes the pages
   in flight, the item pipelines store what they have (each listing in one transaction) and the crawl
   report is written; a child still running `[schedule] shutdown_grace` seconds later is killed (its
   last listing's transaction is rolled back by SQLite, nothing half-written); a re-check stops between
   listings; jobs waiting for a marketplace give up;
3. the scheduler waits for the running jobs, records them, the delivery worker child
   (ops/delivery_child.py, `[alerts] delivery_worker`) gets SIGINT and stops in order (or is killed
   after the same grace), and the process exits 0.

A second `tiswatch run` on the same data directory refuses to start (the service lock file).
"""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime
from typing import Any

from ops.jobs import JobContext, install
from ops.locks import Busy, FileLock, service_lock_path
from ops.logs import setup_logging

log = logging.getLogger(__name__)
FIRST_RUN_KINDS = ("crawl", "registry", "recheck")


class ServiceError(RuntimeError):
    pass


class Service:
    def __init__(self, settings: Any, config: str | None = None, *, with_scheduler: bool = True):
        self.settings = settings
        self.config = config
        self.with_scheduler = with_scheduler and settings.schedule.enabled
        self.ctx = JobContext(settings, config)
        self.sched: Any = None
        self._lock = FileLock(service_lock_path(settings.home), what="tiswatch run")
        self._server: Any = None
        self._metrics_server: Any = None
        self._relay: Any = None  # distributed mode: events from Redis into events.sqlite (cluster/worker.py)
        self._delivery: Any = None  # the delivery worker child (ops/delivery_child.py)

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self, now_jobs: list[str] | None = None) -> dict[str, list[str]]:
        """Take the data directory, start the scheduler (jobs in sync with the configuration, missed
        runs made up once). Raises ServiceError when another service holds the data directory or the
        configuration names a job that does not exist."""
        self.settings.ensure_home()
        try:
            self._lock.acquire()
        except Busy as e:
            raise ServiceError(f"another `tiswatch run` is using the data directory {self.settings.home}: {e}") from None
        try:
            return self._start(now_jobs or [])
        except BaseException:
            self._lock.release()
            raise

    def _start(self, now_jobs: list[str]) -> dict[str, list[str]]:
        from scheduler import build_scheduler, run_now, sync_jobs

        specs = self.ctx.specs()  # raises JobConfigError on a bad [schedule]
        for j in now_jobs:
            if j not in specs:
                raise ServiceError(f"--now {j}: no such job (tiswatch jobs lists them)")
        n = self.ctx.history.abandon_running()
        if n:
            log.warning("%d job run(s) were still marked running from a previous service; marked stopped", n)
        install(self.ctx)
        self._start_metrics_listener()
        if self.settings.distributed.enabled:
            from cluster.worker import start_relay_thread

            self._relay = start_relay_thread(self.settings)
            log.info("distributed mode: relaying events from Redis into the event log, publishing the registry")
        if not self.with_scheduler:
            return {"added": [], "rescheduled": [], "kept": [], "removed": []}
        self.sched = build_scheduler(self.settings, self.ctx)
        self.sched.start(paused=True)
        changes = sync_jobs(self.sched, list(specs.values()), self.settings.schedule.timezone)
        now = datetime.now(UTC)
        overdue = [j.id for j in self.sched.get_jobs() if j.next_run_time and j.next_run_time <= now]
        if overdue:
            log.info("runs missed while stopped, made up once each now: %s", ", ".join(overdue))
        ran = self.ctx.history.last_runs()
        # a crawl or registry job that never ran on this data directory runs at once: a new install
        # starts watching when it starts, not one interval later
        first = [j for j in changes["added"] if j not in ran and specs[j].kind in FIRST_RUN_KINDS]
        for j in dict.fromkeys(now_jobs + first):
            run_now(self.sched, j, now)
        if first:
            log.info("jobs that never ran here run now: %s", ", ".join(first))
        self.sched.resume()
        if self.settings.alerts.delivery_worker:
            from ops.delivery_child import DeliveryChild

            self._delivery = DeliveryChild(self.settings, self.config, grace=self.settings.schedule.shutdown_grace)
            self._delivery.start()
        return changes

    def stop(self) -> None:
        """Stop the jobs (crawls finish their pages or are killed after the grace time) and wait."""
        self.ctx.stop.set()
        if self.sched is not None and self.sched.running:
            log.info("stopping: waiting for running jobs (crawls get %ss to finish their pages)",
                     self.settings.schedule.shutdown_grace)
            self.sched.shutdown(wait=True)
        if self._delivery is not None:
            self._delivery.stop()
            self._delivery = None
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server = None
        if self._relay is not None:
            self._relay[1].set()
            self._relay[0].join(10)
            self._relay = None
        install(None)
        self.ctx.close()
        self._lock.release()
        log.info("stopped")

    # ---- the web app and the main loop --------------------------------------------------------------
    def _start_metrics_listener(self) -> None:
        if self.settings.ops.metrics != "listener":
            return
        from ops.metrics import start_listener

        self._metrics_server = start_listener(self.settings)
        log.info("metrics on http://%s/metrics", self.settings.ops.metrics_listen)

    def _on_signal(self, sig: int, frame: Any) -> None:
        log.info("received %s: shutting down", signal.Signals(sig).name)
        self.ctx.stop.set()
        if self._server is not None:
            self._server.should_exit = True

    def serve(self, host: str, port: int, *, app: bool = True, now_jobs: list[str] | None = None,
              on_ready: Any = None) -> int:
        """Start, serve until SIGTERM/SIGINT, stop. Returns the exit status."""
        import uvicorn

        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start(now_jobs)
            try:
                if on_ready:
                    on_ready(self)
                if app:
                    from review.app import create_app

                    web = create_app(self.settings)
                    web.state.scheduler = self.sched
                    web.state.jobs = self.ctx
                    config = uvicorn.Config(web, host=host, port=port, log_level="warning", log_config=None,
                                            timeout_graceful_shutdown=10)
                    self._server = uvicorn.Server(config)
                    if not self.ctx.stop.is_set():
                        self._server.run()
                else:
                    while not self.ctx.stop.wait(1.0):
                        pass
            finally:
                self.stop()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return 0


def run_service(settings: Any, config: str | None, host: str, port: int, *, app: bool = True,
                now_jobs: list[str] | None = None, on_ready: Any = None) -> int:
    setup_logging(settings, "service")
    return Service(settings, config).serve(host, port, app=app, now_jobs=now_jobs, on_ready=on_ready)
