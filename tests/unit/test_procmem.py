"""Memory of a process tree, read from /proc (what the crawl report records after N pages)."""

import subprocess
import sys
from pathlib import Path

import pytest

from crawlers.procmem import role_of, tree_by_role, tree_memory_mb

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc")


def test_a_child_counts_towards_its_parent():
    alone_rss, alone_pss = tree_memory_mb()
    assert alone_rss > 5 and 0 < alone_pss <= alone_rss
    child = subprocess.Popen([sys.executable, "-c", "b = bytearray(40 * 2**20); import time; time.sleep(30)"])
    try:
        for _ in range(200):
            rss, _pss = tree_memory_mb()
            if rss > alone_rss + 40:
                break
            __import__("time").sleep(0.05)
        assert rss > alone_rss + 40                   # the child's 40 MB are in the tree
        assert tree_memory_mb(child.pid)[0] >= 40      # and in its own
    finally:
        child.kill()
        child.wait()
    assert tree_memory_mb(2**22 + 12345) == (0.0, 0.0)   # no such process


@pytest.mark.parametrize("argv, root, role", [
    (["/work/x/.venv/bin/python", "-m", "crawlers.run", "shopee"], True, "crawl"),
    (["/work/x/.venv/bin/python", "-B", "-c", "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=7, "
      "pipe_handle=9)", "--multiprocessing-fork"], False, "store_worker"),
    (["/work/x/.venv/bin/python", "-B", "-c", "from multiprocessing.resource_tracker import main;main(6)"], False, "python_other"),
    (["/work/x/.venv/lib/python3.11/site-packages/playwright/driver/node",
      "/work/x/.venv/lib/python3.11/site-packages/playwright/driver/package/cli.js", "run-driver"], False, "driver"),
    (["/usr/lib/chromium/chromium", "--headless", "--no-sandbox", "--user-data-dir=/tmp/p"], False, "browser"),
    # Chromium rewrites its children's command lines into one string
    (["/usr/lib/chromium/chromium --type=renderer --crashpad-handler-pid=0 --lang=en-US"], False, "renderers"),
    (["/usr/lib/chromium/chromium", "--type=gpu-process", "--no-sandbox"], False, "gpu"),
    (["/usr/lib/chromium/chromium", "--type=utility", "--utility-sub-type=network.mojom.NetworkService"], False, "utility"),
    (["/usr/lib/chromium/chromium", "--type=zygote", "--no-zygote-sandbox"], False, "zygote"),
    (["/usr/lib/chromium/chromium", "--type=broker"], False, "other"),
    (["/bin/sh", "-c", "tesseract x.png"], False, "other"),
    ([], False, "other"),  # a zombie, or gone
])
def test_role_of_a_process_in_a_crawl_tree(argv, root, role):
    assert role_of(argv, root) == role


def test_tree_by_role_finds_a_python_child():
    child = subprocess.Popen([sys.executable, "-c", "from multiprocessing.spawn import spawn_main; import time; time.sleep(30)"])
    try:
        for _ in range(200):
            roles = tree_by_role()
            if "store_worker" in roles:
                break
            __import__("time").sleep(0.05)
        assert roles["crawl"]["n"] == 1 and roles["crawl"]["rss"] > 5
        assert roles["store_worker"]["n"] == 1 and roles["store_worker"]["rss"] > 1
    finally:
        child.kill()
        child.wait()
    assert tree_by_role(2**22 + 12345) == {}


_FRAGMENTED = """
import sys
sys.path.insert(0, {root!r})
from crawlers.procmem import release_free_heap
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) // 1024
blocks = [bytes(1000) + bytes([i % 256]) for i in range(200_000)]   # ~200 MB on malloc's heap
kept = blocks[::50]                                                 # every 50th stays: the heap cannot shrink
del blocks
before = rss()
ok = release_free_heap()
print(ok, before, rss())
"""


@pytest.mark.skipif(not Path("/lib/x86_64-linux-gnu/libc.so.6").exists() and not Path("/usr/lib/x86_64-linux-gnu/libc.so.6").exists(),
                    reason="glibc")
def test_release_free_heap_gives_freed_memory_back():
    """Freed blocks between blocks still in use stay in the process (glibc shrinks a heap from its top
    only) until release_free_heap() hands their pages back."""
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", _FRAGMENTED.format(root=root)], capture_output=True, text=True, check=True)
    ok, before, after = out.stdout.split()
    assert ok == "True"
    assert int(before) > 150           # the freed blocks were still resident
    assert int(after) < int(before) - 100
