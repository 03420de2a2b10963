"""Memory of a process tree, read from /proc (what the crawl report records after N pages)."""

import subprocess
import sys
from pathlib import Path

import pytest

from crawlers.procmem import tree_memory_mb

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
