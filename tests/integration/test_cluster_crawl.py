"""Distributed crawling against the sandbox marketplaces: two and then four crawler processes (each a
real `python -m crawlers.run --distributed` child, as in production) on one Redis run, a worker
indexing into osmem-server, the relay writing events into the data directory. What they store
together must be what one embedded crawl (one process, SQLite) stores, and no page may be fetched
twice: the sandbox counts every page it serves (tests/cluster_helpers.py)."""

from __future__ import annotations

from collections import Counter

import pytest
from cluster_helpers import (  # noqa: F401
    KEYS,
    _pictures,
    _view,
    check_same_as_embedded,
    cluster,
    gate,
    make_home,
    server,
    start_points,
    world,
)
from redis_helpers import redis_server, redis_url  # noqa: F401
from store_helpers import osmem  # noqa: F401

from crawlers.runner import run_crawl
from listings.sqlite_store import SqliteStore

pytestmark = [pytest.mark.slow, pytest.mark.server, pytest.mark.xdist_group("cluster_crawl")]


@pytest.fixture(scope="module")
def baselines(tmp_path_factory, world, server):  # noqa: F811
    """One embedded crawl (one process, SQLite): what the distributed ones must equal."""
    out = {}
    for mp in ("lazada",):
        s, cfg = make_home(tmp_path_factory.mktemp("base"), world, "home")
        server.hits.paths.clear()
        r = run_crawl(s, mp, base_url=f"{server.url}/{mp}", config=cfg, time_limit=240, distributed=False,
                      **start_points(server, mp))
        assert r.ok, r.log_path.read_text()[-3000:]
        st = SqliteStore(s.listings_db)
        keys = [d["key"] for d in st.export() if d["key"].startswith(mp + ":")]
        out[mp] = {"listings": {d["key"]: _view(d) for d in st.export() if d["key"].startswith(mp + ":")},
                   "pages": Counter(server.hits.paths), "images": _pictures(st, keys)}
        st.close()
        assert len(out[mp]["listings"]) == len(world.for_marketplace(mp))
        assert set(out[mp]["pages"].values()) == {1}
        assert sum(map(len, out[mp]["images"].values())) >= 20  # the world's listings carry pictures: they are read
    return out


@pytest.mark.parametrize("n", [2, 4])
def test_n_crawler_processes_split_one_crawl_and_store_what_one_process_stores(cluster, server, baselines, n):  # noqa: F811
    marketplace = "lazada"
    c = cluster()
    gate(server, 1500)
    server.hits.paths.clear()
    try:
        for i in range(n):
            c.start(f"crawler-{i}", marketplace)
        c.wait_all_joined(marketplace, n)
    finally:
        gate(server, 20)
    try:
        codes = c.wait()
    finally:
        gate(server, 0)
    assert set(codes.values()) == {0}, {k: c.log(k) for k in codes}
    reports = {k: c.report(k, marketplace) for k in codes}
    assert all(r["reason"] == "finished" for r in reports.values())
    pages = Counter(server.hits.paths)
    assert pages == baselines[marketplace]["pages"]                      # every page fetched, each once
    fetched = {k: r["stats"].get("downloader/request_count", 0) for k, r in reports.items()}
    assert sum(1 for v in fetched.values() if v > 1) >= 2, fetched       # the work was split
    assert sum(r["stats"].get("tiswatch/listings", 0) for r in reports.values()) == len(baselines[marketplace]["listings"])
    info = c.run_info(marketplace)
    assert info["state"] == "finished" and info["incomplete"] == "0"
    store = c.finish()
    check_same_as_embedded(store, baselines[marketplace], marketplace, c.s.home / "events.sqlite")
    # the run's queue, leases and duplicate filter are gone from Redis; its summary stays
    assert sorted(k.decode() for k in c.r.keys(f"tiswatch:crawl:{marketplace}:*")) == \
        [f"tiswatch:crawl:{marketplace}:run", f"tiswatch:crawl:{marketplace}:runs"]


