"""Shopee (pages in Chromium, the API signed in the page) crawled by two distributed crawler processes:
requests carrying Playwright meta travel through the Redis frontier, each process drives its own
browser, and together they store every listing of the sandbox's Shopee once, each browser navigation
made once."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from cluster_helpers import check_world, cluster, gate, server  # noqa: F401
from redis_helpers import redis_server, redis_url  # noqa: F401
from store_helpers import osmem  # noqa: F401

from sandbox.world import build_world
from tests.conftest import CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.server,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's Chromium")]
NAVIGATION = re.compile(r"^/shopee/.+-(cat\.\d+|i\.\d+\.\d+)")   # category and product pages (not API, static)


@pytest.fixture(scope="module")
def world(catalogue):
    return build_world(seed=17, n_licences=300, n_listings=45, catalogue=catalogue, vanish_share=0)


def test_two_processes_split_a_shopee_crawl_in_chromium(cluster, server, world):  # noqa: F811
    c = cluster()
    gate(server, 1500)
    server.hits.paths.clear()
    try:
        for i in range(2):
            c.start(f"crawler-{i}", "shopee")
        c.wait_all_joined("shopee", 2)
    finally:
        gate(server, 20)
    try:
        codes = c.wait(timeout=400)
    finally:
        gate(server, 0)
    assert set(codes.values()) == {0}, {k: c.log(k) for k in codes}
    pages = Counter({p: n for p, n in server.hits.paths.items() if NAVIGATION.match(p)})
    products = [p for p in pages if re.search(r"-i\.\d+\.\d+", p)]
    assert set(pages.values()) == {1} and len(products) == len(world.for_marketplace("shopee")), pages
    fetched = {k: c.report(k, "shopee")["stats"].get("tiswatch/listings", 0) for k in codes}
    assert min(fetched.values()) >= 1, fetched                              # the work was split
    info = c.run_info("shopee")
    assert info["state"] == "finished" and info["incomplete"] == "0"
    store = c.finish()
    check_world(store, world, "shopee", c.s.home / "events.sqlite")
