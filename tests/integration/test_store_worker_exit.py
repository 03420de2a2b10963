"""A crawl process that leaves without ending its store worker (a crawl that never opened, so its
prestarted worker was never taken over; or one that left without closing it) still exits, and so does
the worker: the worker ignores SIGTERM, and multiprocessing would otherwise wait for it for ever."""

import os
import subprocess
import sys

import pytest

from settings import ROOT

SCRIPT = """
import sys
from crawlers import storeworker
home, case = sys.argv[1], sys.argv[2]
if case == "taken_over":
    b = storeworker.RemoteBatch(home, None, "lazada", lambda: None, 10, 1.0, lambda: False)
    b.start()  # ready: its matcher and dictionary loaded, waiting for listings
    print(b.pid, flush=True)
else:
    storeworker.prestart(home, None, "lazada", None, "INFO")
    (proc, conn), = storeworker._early.values()
    if case == "prestarted_ready":
        assert conn.poll(120) and conn.recv()[0] == "ready"
    print(proc.pid, flush=True)
"""  # and leaves without closing anything


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie not yet reaped by anyone counts as gone
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("case", ["prestarted_starting", "prestarted_ready", "taken_over"])
def test_the_crawl_process_and_its_worker_exit_when_the_worker_was_not_ended(tmp_path, case):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "home"), case], cwd=ROOT, capture_output=True,
                       text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    pid = int(r.stdout.split()[0])
    assert _gone(pid)


def test_a_crawl_that_fails_before_it_opens_exits(tmp_path):
    # a revisit whose URL file is missing fails after the worker was prestarted, before Scrapy opens
    cfg = tmp_path / "c.toml"
    cfg.write_text("[crawl]\nstore_worker = true\n")
    r = subprocess.run([sys.executable, "-m", "crawlers.run", "lazada", "--home", str(tmp_path / "home"), "--config",
                        str(cfg), "--urls-file", str(tmp_path / "missing.txt")], cwd=ROOT, capture_output=True,
                       text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1 and "missing.txt" in r.stderr
