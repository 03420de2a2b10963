"""Running a crawl as a child process (the parent side): time limit, log file, exit status, report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from settings import ROOT, Settings

BUSY = 4  # exit status of a crawl child that found another crawl of its marketplace running
PAUSED = 3  # exit status of a blocked crawl, and of one not started because its marketplace is paused


@dataclass
class CrawlResult:
    marketplace: str
    returncode: int
    seconds: float
    log_path: Path
    timed_out: bool = False
    report: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False  # stopped from outside (the service shutting down) before it ended

    @property
    def reason(self) -> str:
        if self.timed_out:
            return "timed_out"
        if self.returncode == BUSY:
            return "busy"
        if self.stopped and not self.report:
            return "stopped"
        if not self.report and self.returncode == PAUSED:
            return "paused"  # still paused after a block: the child did not crawl
        return self.report.get("reason") or ("finished" if self.returncode == 0 else "failed")

    @property
    def listings(self) -> int:
        return int(self.report.get("listings") or 0)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def crawl_command(settings: Settings, marketplace: str, *, base_url: str = "", categories: list[str] | None = None,
                  keywords: list[str] | None = None, start_urls: list[str] | None = None, sitemap: str = "",
                  max_search_pages: int | None = None, fresh: bool = False, config: str | None = None,
                  job: str = "", urls_file: str | Path | None = None, force: bool = False,
                  distributed: bool = False, join: bool = False, name: str = "") -> list[str]:
    cmd = [sys.executable, "-m", "crawlers.run", marketplace, "--home", str(settings.home)]
    if distributed:  # the marketplace's shared run in Redis (cluster/)
        cmd += ["--distributed"] + (["--join"] if join else []) + (["--name", name] if name else [])
    if config:
        cmd += ["--config", str(config)]
    if job:
        cmd += ["--job", job]
    if urls_file:
        cmd += ["--urls-file", str(urls_file)]
    if base_url:
        cmd += ["--base-url", base_url]
    for c in categories or []:
        cmd += ["--category", c]
    for k in keywords or []:
        cmd += ["--keyword", k]
    for u in start_urls or []:
        cmd += ["--start-url", u]
    if sitemap:
        cmd += ["--sitemap", sitemap]
    if max_search_pages is not None:
        cmd += ["--max-search-pages", str(max_search_pages)]
    if fresh:
        cmd.append("--fresh")
    if force:
        cmd.append("--force")
    return cmd


def run_crawl(settings: Settings, marketplace: str, *, time_limit: float | None = None, config: str | None = None,
              stop: threading.Event | None = None, grace: float = 15.0, distributed: bool | None = None,
              **kw: Any) -> CrawlResult:
    """Run one marketplace's crawl in a child process and wait for it (at most `time_limit` seconds;
    a crawl still running then gets SIGTERM, which lets Scrapy stop cleanly, then SIGKILL after
    `grace` seconds). Setting `stop` (the service shutting down) stops it the same way. Either way
    the next crawl of the marketplace resumes where this one stopped (crawlers/frontier.py).

    `distributed` (default: [distributed] enabled, except for a revisit of listing URLs): the child
    works on the marketplace's shared run in Redis with the other crawler processes (cluster/)."""
    settings.ensure_home()
    log_path = settings.log_dir / f"crawl-{marketplace}.log"
    report_path = settings.crawl_dir / marketplace / "last_run.json"
    shared_report = report_path
    if distributed is None:
        distributed = settings.distributed.enabled and not kw.get("urls_file")
    if distributed:
        from cluster.crawl import report_path as process_report
        from cluster.frontier import process_name

        kw["name"] = kw.get("name") or process_name()
        shared_report, report_path = report_path, process_report(settings, marketplace, kw["name"])
    before = report_path.stat().st_mtime if report_path.exists() else 0
    cmd = crawl_command(settings, marketplace, config=config, distributed=distributed, **kw) + ["--log-file", str(log_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.monotonic()
    limit = time_limit or settings.crawl.time_limit
    with open(settings.log_dir / f"crawl-{marketplace}.out", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env, start_new_session=True)
        timed_out = stopped = False
        deadline = t0 + limit
        while True:
            left = deadline - time.monotonic()
            try:
                proc.wait(timeout=max(0.01, min(left, 0.5) if stop is not None else left))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    timed_out = True
                    stop_child(proc, grace)
                    break
                if stop is not None and stop.is_set():
                    stopped = True
                    stop_child(proc, grace)
                    break
    report: dict[str, Any] = {}
    if report_path.exists() and report_path.stat().st_mtime > before:
        try:
            report = json.loads(report_path.read_text("utf-8"))
        except ValueError:
            report = {}
    if distributed and report:  # the marketplace's last report, where the status page and metrics read it
        tmp = shared_report.with_name(f"last_run.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str), "utf-8")
        os.replace(tmp, shared_report)
        shutil.rmtree(report_path.parent, ignore_errors=True)  # this process's own folder
    return CrawlResult(marketplace, proc.returncode, time.monotonic() - t0, log_path, timed_out, report, stopped)


def stop_child(proc: subprocess.Popen, grace: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """SIGTERM (or `sig`) the crawl process itself (Scrapy finishes in-flight pages, closes its browser and writes
    last_run.json), then SIGKILL its whole process group after `grace` seconds, and the group's
    leftovers (a browser) once it has gone.

    Only the crawl process gets the SIGTERM, not its group: the group holds the Playwright driver and
    Chromium, and killing those under Scrapy's feet made scrapy-playwright launch a new browser while
    closing, which could outlast the grace time, so the crawl was killed without its report."""
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.wait()
    else:
        kill_group(proc.pid)  # a browser the crawl left behind


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
