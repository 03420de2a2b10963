"""Distributed crawling when things go wrong, and on a shop site: a crawler process killed with
SIGKILL in the middle of a crawl loses nothing (its leases come back to the others, which finish the
run; only pages it held are fetched again); two processes split a shop site's sitemap. Checked against
the sandbox world's truth (tests/cluster_helpers.py)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
from cluster_helpers import KEYS, check_world, cluster, gate, server, world  # noqa: F401
from redis_helpers import redis_server, redis_url  # noqa: F401
from store_helpers import osmem  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.server, pytest.mark.xdist_group("cluster_crawl_kill")]


def test_a_crawler_killed_mid_crawl_loses_nothing(cluster, server, world):  # noqa: F811
    c = cluster(lease_seconds=10)
    mp = "lazada"
    n = len(world.for_marketplace(mp))
    gate(server, 1500)
    server.hits.paths.clear()
    try:
        for name in ("victim", "crawler-1", "crawler-2"):
            c.start(name, mp)
        c.wait_all_joined(mp, 3)
    finally:
        gate(server, 400)
    run_id = c.run_info(mp)["id"]
    owner, pri = KEYS.part(mp, run_id, "owner"), KEYS.part(mp, run_id, "pri")
    deadline = time.monotonic() + 120
    held_urls: set[str] = set()

    def held():
        return [k.decode() for k, v in c.r.hgetall(owner).items() if v == b"victim"]

    try:
        while True:   # kill it while it holds leases, a third of the way in
            if held() and int(c.run_info(mp).get("done") or 0) >= n // 3:
                os.killpg(c.procs["victim"].pid, signal.SIGKILL)
                c.procs["victim"].wait()
                # what it held when it died (its leases expire after lease_seconds, 10 s, not yet)
                held_urls = {c.r.hget(pri, k).decode().split("\t", 1)[1] for k in held()}
                break
            assert c.procs["victim"].poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        codes = c.wait()
    finally:
        gate(server, 0)
    assert codes["victim"] == -signal.SIGKILL and codes["crawler-1"] == 0 and codes["crawler-2"] == 0
    info = c.run_info(mp)
    assert info["state"] == "finished" and int(info["reclaimed"]) >= 1 and info["incomplete"] == "0"
    pages = Counter(server.hits.paths)
    assert len(pages) >= n                                               # (every listing stored: below)
    held_paths = {urlsplit(u).path + (f"?{urlsplit(u).query}" if urlsplit(u).query else "") for u in held_urls}
    # a page fetched again brings its pictures again (images/, the sandbox's picture CDN at /img/)
    twice = {p for p, k in pages.items() if k > 1 and not p.startswith("/img/")}
    assert twice <= held_paths, (twice, held_paths)                      # fetched again: only what it held
    store = c.finish()
    check_world(store, world, mp, c.s.home / "events.sqlite")


def test_two_processes_split_a_shop_sites_sitemap(cluster, server, world):  # noqa: F811
    c = cluster()
    gate(server, 1500)
    server.hits.paths.clear()
    try:
        for i in range(2):
            c.start(f"crawler-{i}", "shop")
        c.wait_all_joined("shop", 2)
    finally:
        gate(server, 20)
    try:
        codes = c.wait()
    finally:
        gate(server, 0)
    assert set(codes.values()) == {0}, {k: c.log(k) for k in codes}
    pages = Counter(server.hits.paths)
    assert set(pages.values()) == {1} and len(pages) > len(world.for_marketplace("shop"))
    fetched = {k: c.report(k, "shop")["stats"].get("downloader/request_count", 0) for k in codes}
    assert min(fetched.values()) > 1, fetched
    info = c.run_info("shop")
    assert info["state"] == "finished" and info["coverage"] == "1" and info["incomplete"] == "0"
    store = c.finish()
    check_world(store, world, "shop", c.s.home / "events.sqlite")
    # the shop's crawl bookkeeping (page URL -> its listings) reached the index: the next crawl is incremental
    refs = [f"{server.url}{p}" for p in pages if p.startswith("/shop/") and p.endswith(".html")]
    states = store.fetch_states("shop", refs)
    assert {k for st in states.values() for k in st.keys} == {f"shop:{w.item_id}" for w in world.for_marketplace("shop")}
