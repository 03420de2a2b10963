"""Memory of a process tree, read from /proc (what the crawl report records after N pages)."""

import subprocess
import sys
from pathlib import Path

import pytest

from crawlers.procmem import role_of, tree_by_role, tree_memory_mb, window_medians

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


def _reading(pages: int, rss: float, browsers: int, renderers: float = 100.0) -> tuple[int, float, float, dict]:
    roles = {"renderers": {"rss": renderers, "pss": renderers / 2, "anon": 10.0, "n": 3}}
    if browsers:
        roles["browser"] = {"rss": 200.0 * browsers, "pss": 50.0 * browsers, "anon": 5.0, "n": browsers}
    return (pages, rss, rss / 2, roles)


@pytest.mark.parametrize("readings, after, rss, one_rss, one_n, n", [
    # no reading late enough: nothing
    ([_reading(100, 1000, 1)], 100, None, None, 0, 0),
    # every reading with one Chromium: both medians the same
    ([_reading(p, r, 1) for p, r in ((810, 1000), (820, 1010), (830, 990))], 800, 1000, 1000, 3, 3),
    # a change of browser at the end of the window: two Chromium in 2 of 5 readings raise the median
    # of all, not the one-browser median
    ([_reading(p, r, b) for p, r, b in ((810, 1000, 1), (820, 1010, 1), (830, 990, 1), (840, 1600, 2),
                                         (850, 1700, 2))], 800, 1010, 1000, 3, 5),
    # readings of an earlier window are left out
    ([_reading(100, 5000, 1), _reading(900, 1000, 1)], 800, 1000, 1000, 1, 1),
    # only overlap readings (and one with no browser at all): no one-browser figure
    ([_reading(810, 1600, 2), _reading(820, 900, 0)], 800, 1250, None, 0, 2),
])
def test_window_medians(readings, after, rss, one_rss, one_n, n):
    w = window_medians(readings, after)
    if rss is None:
        assert w == {}
        return
    assert w["rss"] == rss and w["pss"] == rss / 2 and w["readings"] == n
    assert w["one_browser"].get("rss") == one_rss and w["one_browser"].get("readings", 0) == one_n
    assert w["roles"]["renderers"]["rss"] == 100.0 and w["roles"]["renderers"]["n"] == 3


def test_window_medians_roles_missing_from_a_reading_count_as_zero():
    w = window_medians([_reading(10, 500, 1), _reading(20, 600, 0), _reading(30, 700, 1)], 0)
    assert w["roles"]["browser"] == {"rss": 200.0, "pss": 50.0, "anon": 5.0, "n": 1}  # median of 200, 0, 200
