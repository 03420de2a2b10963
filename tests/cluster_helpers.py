"""Distributed crawls for tests: the sandbox marketplaces with a page counter, data directories in
distributed mode (Redis from redis_helpers, the index on osmem-server), a worker and the relay in
threads of the test process, crawler processes started as `tiswatch crawl --distributed` starts them.

    from cluster_helpers import cluster, server, world  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from unittest import mock

import pytest
import redis as redis_lib
from aiohttp import web

import sandbox.server as sandbox_server
from cluster import streams
from cluster.crawl import report_path
from cluster.keys import Keys
from cluster.worker import CheckWorker, Relay
from crawlers.runner import crawl_command
from listings.es_store import ElasticStore
from listings.events import EventLog
from registry.store import RegistryStore, bulk
from sandbox.world import build_world
from settings import ROOT, load_settings

KEYS = Keys("tiswatch")
FAST = {"download_delay": 0.0, "autothrottle": False, "concurrency": 3, "concurrency_per_domain": 3,
        "screenshots": False, "retries": 3}


@pytest.fixture(scope="module")
def world(catalogue):
    return build_world(seed=11, n_licences=300, n_listings=120, catalogue=catalogue)


class Hits:
    def __init__(self) -> None:
        self.paths: Counter[str] = Counter()

    @web.middleware
    async def middleware(self, request, handler):
        if request.path != "/robots.txt" and not request.path.startswith("/_sandbox"):
            self.paths[request.path_qs] += 1
        return await handler(request)


@pytest.fixture(scope="module")
def server(world):
    hits = Hits()
    make = sandbox_server.make_app

    def counting(*a, **kw):
        app = make(*a, **kw)
        app.middlewares.append(hits.middleware)
        return app

    with mock.patch.object(sandbox_server, "make_app", counting):
        srv = sandbox_server.SandboxServer(world).start()
    srv.hits = hits
    yield srv
    srv.stop()


def start_points(server, marketplace):
    if marketplace == "lazada":
        return {"categories": [f"{server.url}/lazada/{c[2]}/" for c in server.sandbox.categories("lazada")]}
    if marketplace == "shopee":
        return {"categories": [f"{server.url}/shopee/x-cat.{c[0]}" for c in server.sandbox.categories("shopee")]}
    seeds = json.load(urllib.request.urlopen(server.url + "/_sandbox/seeds.json"))
    return {"sitemap": seeds["shop"]["sitemap"]}


def make_home(tmp_path, world, name, store="", dist=""):
    s = load_settings(home=tmp_path / name, environ={})
    s.ensure_home()
    rs = RegistryStore(s.registry_db)
    rs.import_licences(bulk(world.licences))
    rs.close()
    cfg = s.home / "test.toml"
    cfg.write_text("[crawl]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in FAST.items()) + store + dist)
    return load_settings(home=s.home, config=cfg, environ={}), str(cfg)


def _view(d):
    return (d["verdict"], d["tis_no"], d["licence_no"], d["title"], d["price"], d["seller_id"], d["status"])


class Cluster:
    """A data directory in distributed mode, a worker and the relay (threads of this process), and
    crawler processes started as the scheduler and `tiswatch crawl --distributed` start them."""

    def __init__(self, tmp_path, world, server, redis_url, es_url, name, **dist):
        # leases renew on the crawl's reactor: on a machine with a load of 40 a short lease can expire under a
        # live process, which then fetches a page twice (at least once, as designed). Tests that assert
        # "each page once" use a lease no stall reaches; the kill test a short one (the victim's pages
        # must come back soon).
        dist = {"redis_url": redis_url, "lease_seconds": 60, "claim_idle_seconds": 2, "poll_seconds": 0.3, **dist}
        store = f'[store]\nbackend = "elasticsearch"\nes_url = "{es_url}"\nes_replicas = 0\n'
        self.s, self.cfg = make_home(tmp_path, world, name, store,
                                     "[distributed]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in dist.items()))
        self.server = server
        self.r = redis_lib.Redis.from_url(redis_url)
        self.stop = threading.Event()
        self.worker = CheckWorker(self.s, "worker-1", r=self.r)
        self.relay = Relay(self.s, "relay", r=self.r)
        self.threads = [threading.Thread(target=self.worker.run, args=(self.stop,), kwargs={"block_ms": 200}),
                        threading.Thread(target=self.relay.run, args=(self.stop,), kwargs={"block_ms": 200})]
        for t in self.threads:
            t.start()
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name, marketplace):
        cmd = crawl_command(self.s, marketplace, base_url=f"{self.server.url}/{marketplace}", config=self.cfg,
                            distributed=True, name=name, **start_points(self.server, marketplace))
        cmd += ["--log-file", str(self.s.log_dir / f"{name}.log")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.s.log_dir / f"{name}.out", "ab") as out:
            self.procs[name] = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True)

    def run_info(self, marketplace):
        return {k.decode(): v.decode() for k, v in self.r.hgetall(KEYS.run(marketplace)).items()}

    def processes_on_run(self, marketplace):
        info = self.run_info(marketplace)
        return self.r.hlen(KEYS.part(marketplace, info["id"], "procs")) if info.get("state") == "open" else 0

    def wait_all_joined(self, marketplace, n, timeout=120):
        deadline = time.monotonic() + timeout
        while self.processes_on_run(marketplace) < n:
            for name, p in self.procs.items():
                assert p.poll() is None, f"{name} ended early: " + self.log(name)
            assert time.monotonic() < deadline, "crawlers did not all join the run"
            time.sleep(0.1)

    def wait(self, timeout=240):
        deadline = time.monotonic() + timeout
        for name, p in self.procs.items():
            try:
                p.wait(max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                raise AssertionError(f"{name} did not finish: " + self.log(name)) from None
        return {n: p.returncode for n, p in self.procs.items()}

    def report(self, name, marketplace):
        return json.loads(report_path(self.s, marketplace, name).read_text())

    def log(self, name):
        p = self.s.log_dir / f"{name}.log"
        return p.read_text()[-4000:] if p.exists() else ""

    def finish(self, runs_ended=1, timeout=120):
        """Let the worker index everything (and handle the run's end), the relay move the events."""
        deadline = time.monotonic() + timeout
        while not (self.worker.stats.runs_ended >= runs_ended and streams.drained(self.r, KEYS)
                   and self.r.xlen(KEYS.events) == 0):
            assert time.monotonic() < deadline, (self.worker.stats, streams.group_state(self.r, KEYS.listings, "check"))
            time.sleep(0.1)
        self.stop.set()
        for t in self.threads:
            t.join()
        self.worker.close()
        self.relay.close()
        st = ElasticStore(self.s.store.es_url, self.s.store.es_prefix, refresh=True, replicas=0)
        st.flush()
        return st

    def close(self):
        self.stop.set()
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def cluster(tmp_path, world, server, redis_url, osmem):
    made = []

    def make(name="home", **dist):
        clone = osmem.clone()
        c = Cluster(tmp_path, world, server, redis_url, clone.url, name, **dist)
        made.append((c, clone))
        return c

    yield make
    for c, clone in made:
        c.close()
        clone.close()


def gate(server, slow_ms):
    """Slow the sandbox down (all processes join before the pages flow), or speed it up again."""
    server.sandbox.modes.slow_ms = slow_ms


def _pictures(store, keys):
    """Each listing's pictures as the store keeps them (re-used photos are found by these hashes)."""
    return {k: [(im["index"], im["sha256"], im["phash"]) for im in store.images_of(k)] for k in keys}


def check_same_as_embedded(store, baseline, marketplace, events_db):
    got = {d["key"]: _view(d) for d in store.export() if d["key"].startswith(marketplace + ":")}
    assert got == baseline["listings"]                                    # nothing lost, same content and verdicts
    if "images" in baseline:                                              # the crawlers stored every picture's hashes
        assert _pictures(store, list(got)) == baseline["images"]
    assert {len(store.history(k)["observations"]) for k in got} == {1}    # nothing stored twice
    ev = EventLog(events_db).read(kinds=["verdict"], limit=100_000)
    assert Counter(e.key for e in ev) == Counter(dict.fromkeys(got, 1))   # one verdict event per listing




def check_world(store, world, marketplace, events_db):
    """Every listing of the sandbox's world stored once with its expected verdict; one verdict event each."""
    want = {f"{marketplace}:{w.item_id}": (w.expected["verdict"], w.expected["tis_no"], w.expected["licence_no"],
                                          w.listing["title"]) for w in world.for_marketplace(marketplace)}
    got = {d["key"]: (d["verdict"], d["tis_no"], d["licence_no"], d["title"]) for d in store.export()
           if d["key"].startswith(marketplace + ":")}
    assert got == want
    assert {len(store.history(k)["observations"]) for k in got} == {1}
    ev = EventLog(events_db).read(kinds=["verdict"], limit=100_000)
    assert Counter(e.key for e in ev) == Counter(dict.fromkeys(want, 1))
