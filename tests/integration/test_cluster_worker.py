"""`tiswatch worker` (cluster/worker.py) against a real redis-server and osmem-server (the shared
index): listings from the stream are checked and indexed once, their events reach the data
directory's event log once, a killed worker's listings are finished by another, bad and poisonous
entries go to the dead letters, a finished complete run marks delisted what it did not see, and the
registry travels through Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_lib
from redis_helpers import redis_server, redis_url  # noqa: F401
from store_helpers import osmem  # noqa: F401

from cluster import streams
from cluster.keys import EVENTS_GROUP, LISTINGS_GROUP, Keys
from cluster.worker import CheckWorker, Relay
from listings.es_store import ElasticStore
from listings.events import EventLog
from listings.model import Listing
from registry.store import RegistryStore, bulk
from settings import ROOT, load_settings

pytestmark = pytest.mark.server
KEYS = Keys("tiswatch")
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def r(redis_url):  # noqa: F811
    return redis_lib.Redis.from_url(redis_url)


@pytest.fixture
def es(osmem):  # noqa: F811
    clone = osmem.clone()
    yield clone
    clone.close()


def make_settings(tmp_path, redis_url, es_url, name="home", registry=None, **dist):  # noqa: F811
    dist = {"redis_url": redis_url, "claim_idle_seconds": 0.3, "worker_batch": 10, **dist}
    s = load_settings(home=tmp_path / name, environ={}, store={"backend": "elasticsearch", "es_url": es_url, "es_replicas": 0},
                      distributed=dist)
    s.ensure_home()
    if registry is not None:
        rs = RegistryStore(s.registry_db)
        rs.import_licences(bulk(registry))
        rs.close()
    return s


def read_store(s):
    st = ElasticStore(s.store.es_url, s.store.es_prefix, refresh=True, replicas=0)
    st.flush()
    return st


def entries(world, n=12, at=NOW, marketplace="lazada"):
    out = []
    for w in world.for_marketplace(marketplace)[:n]:
        lst = Listing.model_validate({**w.listing, "observed_at": at})
        out.append((w, {"listing": lst.record(), "run": 1, "by": "test", "ref": lst.item_id, "ref_keys": [lst.key],
                        "card": f"card-{lst.item_id}"}))
    return out


def push(r, payloads):
    for _, p in payloads:
        streams.add_listing(r, KEYS, p)


def relay_all(s, r):
    ev = EventLog(s.home / "events.sqlite")
    Relay(s, "relay", r=r, events=ev).run(drain=True, block_ms=100)
    return ev


def test_listings_are_checked_indexed_and_their_events_relayed_once(tmp_path, r, es, redis_url, world):  # noqa: F811
    s = make_settings(tmp_path, redis_url, es.url, registry=world.licences)
    es_ = entries(world)
    push(r, es_)
    w = CheckWorker(s, "w1", r=r)
    st = w.run(drain=True, block_ms=100)
    assert st.indexed == len(es_) and st.dead == 0
    store = read_store(s)
    for wl, _p in es_:
        d = store.get(f"lazada:{wl.item_id}")
        assert (d["verdict"], d["tis_no"], d["licence_no"]) == \
            (wl.expected["verdict"], wl.expected["tis_no"], wl.expected["licence_no"]), wl.listing["title"]
    fs = store.fetch_states("lazada", [wl.item_id for wl, _ in es_])
    assert {k: v.card_hash for k, v in fs.items()} == {wl.item_id: f"card-{wl.item_id}" for wl, _ in es_}
    # the stream keeps only what is not done yet
    assert r.xlen(KEYS.listings) == 0
    ev = relay_all(s, r)
    verdicts = ev.read(kinds=["verdict"], limit=1000)
    assert sorted(e.key for e in verdicts) == sorted(f"lazada:{wl.item_id}" for wl, _ in es_)
    assert all(e.data["source"] == "crawl" and e.data["previous"] is None for e in verdicts)
    # the same entries delivered again (a crawler that died after shipping them): nothing new anywhere
    push(r, es_)
    CheckWorker(s, "w2", r=r).run(drain=True, block_ms=100)
    relay_all(s, r)
    assert len(ev.read(kinds=["verdict"], limit=1000)) == len(es_)
    store = read_store(s)
    assert {len(store.history(f"lazada:{wl.item_id}")["observations"]) for wl, _ in es_} == {1}


class FailingEvents:
    """An event log that fails: the worker dies between indexing a listing and sending its event."""

    def append(self, *a, **kw):
        raise ConnectionError("event stream unreachable")


def test_an_event_lost_with_its_worker_is_sent_by_the_worker_that_finishes_the_entry(tmp_path, r, es, redis_url, world):  # noqa: F811
    s = make_settings(tmp_path, redis_url, es.url, registry=world.licences)
    es_ = entries(world, n=3)
    push(r, es_)
    first = CheckWorker(s, "dies", r=r, events=FailingEvents())
    first.step(block_ms=100)
    assert first.stats.indexed == 0 and first.stats.failures >= 1   # indexed, but not acknowledged
    assert r.xpending(KEYS.listings, LISTINGS_GROUP)["pending"] == 3
    time.sleep(0.4)                                                  # claim_idle_seconds
    second = CheckWorker(s, "finishes", r=r)
    second.run(drain=True, block_ms=100)
    assert second.stats.claimed == 3 and second.stats.indexed == 3
    ev = relay_all(s, r)
    assert sorted(e.key for e in ev.read(kinds=["verdict"], limit=100)) == sorted(f"lazada:{w.item_id}" for w, _ in es_)
    store = read_store(s)
    assert {len(store.history(f"lazada:{w.item_id}")["observations"]) for w, _ in es_} == {1}


def test_a_killed_workers_listings_are_finished_by_another(tmp_path, r, es, osmem, redis_url, world):  # noqa: F811
    doomed = osmem.clone()
    sd = make_settings(tmp_path, redis_url, doomed.url, name="doomed", registry=world.licences)
    cfg = tmp_path / "w.toml"
    cfg.write_text(f'[store]\nbackend = "elasticsearch"\nes_url = "{doomed.url}"\nes_replicas = 0\n'
                   f'[distributed]\nredis_url = "{redis_url}"\nworker_batch = 5\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tiswatch = str(Path(sys.executable).with_name("tiswatch"))
    with open(tmp_path / "victim.err", "wb") as errf:
        p = subprocess.Popen([tiswatch, "--home", str(sd.home), "--config", str(cfg), "worker", "--name", "victim"],
                             cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=errf, start_new_session=True)
    es_ = entries(world, n=8)
    try:
        deadline = time.monotonic() + 60
        while not any(c["name"] == b"victim" for c in _consumers(r)):  # it is reading the stream
            assert p.poll() is None and time.monotonic() < deadline, (tmp_path / "victim.err").read_text()
            time.sleep(0.1)
        doomed.close()                      # its index goes away: it takes listings and cannot finish them
        push(r, es_)
        while _pending_of(r, b"victim") < len(es_):
            assert p.poll() is None and time.monotonic() < deadline, (tmp_path / "victim.err").read_text()
            time.sleep(0.1)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    s = make_settings(tmp_path, redis_url, es.url, registry=world.licences)
    w = CheckWorker(s, "rescuer", r=r)
    w.run(drain=True, block_ms=100)
    assert w.stats.claimed == len(es_) and w.stats.indexed == len(es_)
    assert r.xpending(KEYS.listings, LISTINGS_GROUP)["pending"] == 0
    store = read_store(s)
    assert store.counts()["listings"] == len(es_)


def _consumers(r):
    try:
        return r.xinfo_consumers(KEYS.listings, LISTINGS_GROUP)
    except redis_lib.ResponseError:
        return []


def _pending_of(r, name):
    return sum(int(c["pending"]) for c in _consumers(r) if c["name"] == name)


def test_bad_entries_go_to_the_dead_letters_and_the_rest_is_indexed(tmp_path, r, es, redis_url, world):  # noqa: F811
    s = make_settings(tmp_path, redis_url, es.url, registry=world.licences)
    good = entries(world, n=2)
    r.xadd(KEYS.listings, {"t": "listing", "d": "{not json"})
    r.xadd(KEYS.listings, {"t": "listing", "d": json.dumps({"listing": {"marketplace": "lazada", "item_id": "9"}})})
    r.xadd(KEYS.listings, {"t": "mystery", "d": "{}"})
    push(r, good)
    w = CheckWorker(s, "w", r=r)
    w.run(drain=True, block_ms=100)
    assert (w.stats.indexed, w.stats.dead) == (2, 3)
    why = sorted(f[b"error"].decode().split(":")[0] for _, f in r.xrange(KEYS.dead))
    assert why == ["invalid listing", "unknown entry type 'mystery'", "unreadable entry"]
    from typer.testing import CliRunner

    from cli import app

    res = CliRunner().invoke(app, ["--home", str(s.home), "cluster", "dead"],
                             env={"TISWATCH_DISTRIBUTED__REDIS_URL": redis_url, "COLUMNS": "200"})
    assert res.exit_code == 0 and "invalid listing: title: Field required" in res.output
    # --replay sends back what a worker can read again (the listing) and keeps the rest for a person
    before = r.xlen(KEYS.listings)
    res = CliRunner().invoke(app, ["--home", str(s.home), "cluster", "dead", "--replay"],
                             env={"TISWATCH_DISTRIBUTED__REDIS_URL": redis_url, "COLUMNS": "200"})
    assert res.exit_code == 0 and "1 entries back on the listing stream; 2 kept" in res.output, res.output
    assert sorted(f[b"error"].decode().split(":")[0] for _, f in r.xrange(KEYS.dead)) == \
        ["unknown entry type 'mystery'", "unreadable entry"]
    back = r.xrange(KEYS.listings)[before:]
    assert [json.loads(f[b"d"])["listing"]["item_id"] for _, f in back] == ["9"]


class PoisonStore:
    """A store that cannot index one listing, ever."""

    def __init__(self, store, bad):
        self.store, self.bad = store, bad

    def ingest_many(self, items):
        items = list(items)
        if any(x[0].key == self.bad for x in items):
            raise ValueError(f"cannot index {self.bad}")
        return self.store.ingest_many(items)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_a_poisonous_listing_ends_in_the_dead_letters_without_blocking_the_others(tmp_path, r, es, redis_url, world):  # noqa: F811
    s = make_settings(tmp_path, redis_url, es.url, registry=world.licences, max_deliveries=2, claim_idle_seconds=0.1)
    es_ = entries(world, n=5)
    bad = f"lazada:{es_[2][0].item_id}"
    push(r, es_)
    w = CheckWorker(s, "w", r=r, store=PoisonStore(ElasticStore.from_settings(s.store), bad))
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), kwargs={"block_ms": 50})
    t.start()
    deadline = time.monotonic() + 60
    while w.stats.dead < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join()
    assert w.stats.dead == 1 and w.stats.indexed == 4
    dead = r.xrange(KEYS.dead)
    assert json.loads(dead[0][1][b"d"])["listing"]["item_id"] == es_[2][0].item_id
    assert b"delivered more than 2 times" in dead[0][1][b"error"]
    assert r.xpending(KEYS.listings, LISTINGS_GROUP)["pending"] == 0


def test_a_complete_run_marks_what_it_did_not_see_delisted_once_everything_before_is_indexed(
        tmp_path, r, es, redis_url, world):  # noqa: F811
    s = make_settings(tmp_path, redis_url, es.url, registry=world.licences)
    old = entries(world, n=4, at=NOW - timedelta(days=10))
    push(r, old)
    CheckWorker(s, "w0", r=r).run(drain=True, block_ms=100)
    started = NOW - timedelta(minutes=5)
    seen_again = entries(world, n=3, at=NOW)                     # the 4th listing is not seen by the new run
    push(r, seen_again[:2])
    # another worker has taken the third sighting and not finished it yet
    r.xadd(KEYS.listings, {"t": "listing", "d": json.dumps(seen_again[2][1])})
    r.xreadgroup(LISTINGS_GROUP, "slow", {KEYS.listings: ">"}, count=100)
    end = {"marketplace": "lazada", "run": 2, "started": started.isoformat(), "complete": 1, "seen": 3}
    r.xadd(KEYS.listings, {"t": "run_end", "d": json.dumps(end)})
    w = CheckWorker(s, "w1", r=r, )
    w.claim_idle_ms = 10 ** 9                                     # "slow" is alive: do not take its work
    for _ in range(3):
        w.step(block_ms=100)
    assert w.stats.runs_ended == 0                                # waits: an earlier sighting is not indexed
    w.claim_idle_ms = 1
    w.run(drain=True, block_ms=100)
    assert w.stats.runs_ended == 1 and w.stats.delisted == 1
    store = read_store(s)
    gone = f"lazada:{old[3][0].item_id}"
    assert store.get(gone)["status"] == "delisted"
    assert all(store.get(f"lazada:{x.item_id}")["status"] == "active" for x, _ in seen_again)
    ev = relay_all(s, r)
    assert [e.key for e in ev.read(kinds=["delisted"])] == [gone]
    # an incomplete run delists nothing
    r.xadd(KEYS.listings, {"t": "run_end", "d": json.dumps({**end, "run": 3, "complete": 0, "started": NOW.isoformat()})})
    w.run(drain=True, block_ms=100)
    assert w.stats.runs_ended == 2 and w.stats.delisted == 1


def test_the_registry_travels_through_redis_and_workers_follow_its_versions(tmp_path, r, es, redis_url, world, monkeypatch):  # noqa: F811
    from cluster import worker as worker_mod
    from cluster.registry import publish, published_version

    hub = make_settings(tmp_path, redis_url, es.url, name="hub", registry=world.licences)
    remote = make_settings(tmp_path, redis_url, es.url, name="remote")      # a machine without registry.sqlite
    assert publish(r, KEYS, hub) == "r1" and publish(r, KEYS, hub) is None
    licensed = next(w for w in world.for_marketplace("lazada") if w.expected["verdict"] == "licensed")
    lst = Listing.model_validate({**licensed.listing, "observed_at": NOW})
    streams.add_listing(r, KEYS, {"listing": lst.record()})
    monkeypatch.setattr(worker_mod, "REGISTRY_CHECK_SECONDS", 0.0)
    w = CheckWorker(remote, "w", r=r)
    w.run(drain=True, block_ms=100)
    assert w.registry().version == "r1" and len(w.registry().by_no) == len(world.licences)
    assert read_store(remote).get(lst.key)["verdict"] == "licensed"
    # the licence is revoked where the registry is kept: published again, the worker checks with it
    rs = RegistryStore(hub.registry_db)
    lic = rs.get(licensed.expected["licence_no"])
    from dataclasses import replace

    rs.import_licences(bulk([replace(x, status="revoked") if x.licence_no == lic.licence_no else x for x in world.licences]))
    rs.close()
    assert publish(r, KEYS, hub) == published_version(r, KEYS) != "r1"
    streams.add_listing(r, KEYS, {"listing": Listing.model_validate({**licensed.listing, "observed_at": NOW + timedelta(hours=1)}).record()})
    w.run(drain=True, block_ms=100)
    assert w.registry().version == published_version(r, KEYS)
    assert read_store(remote).get(lst.key)["verdict"] != "licensed"


def test_the_relay_appends_each_event_once(tmp_path, r, es, redis_url):  # noqa: F811
    s = make_settings(tmp_path, redis_url, es.url)
    sel = streams.StreamEventLog(r, KEYS)
    sel.append("verdict", "lazada:1", {"verdict": "unlicensed"}, dedupe="verdict:lazada:1:t1")
    sel.append("verdict", "lazada:1", {"verdict": "unlicensed"}, dedupe="verdict:lazada:1:t1")   # sent twice
    sel.append_many([("delisted", "lazada:2", {"marketplace": "lazada"}), ("relisted", "lazada:3", {})])
    with pytest.raises(ValueError):
        sel.append("nonsense", "k", {})
    ev = EventLog(s.home / "events.sqlite")
    # a relay takes the first event, appends it and dies before acknowledging it
    streams.ensure_group(r, KEYS.events, EVENTS_GROUP)
    (_, [(_eid, f)]), = r.xreadgroup(EVENTS_GROUP, "r0", {KEYS.events: ">"}, count=1)
    ev.append(f[b"kind"].decode(), f[b"key"].decode(), json.loads(f[b"data"]), dedupe=f[b"dedupe"].decode())
    relay = Relay(s, "r1", r=r, events=ev)
    relay.claim_idle_ms = 0                                         # r0 is dead: take its event at once
    relay.run(drain=True, block_ms=100)
    assert [(e.kind, e.key) for e in ev.read()] == [("verdict", "lazada:1"), ("delisted", "lazada:2"), ("relisted", "lazada:3")]
    assert r.xlen(KEYS.events) == 0 and r.xpending(KEYS.events, EVENTS_GROUP)["pending"] == 0
    # everything delivered again (a group reset): still each event once
    sel.append("decision", "lazada:4", {"decision": "confirm"})
    sel.append("verdict", "lazada:1", {"verdict": "unlicensed"}, dedupe="verdict:lazada:1:t1")
    relay.run(drain=True, block_ms=100)
    assert [(e.kind, e.key) for e in ev.read()][3:] == [("decision", "lazada:4")]


def test_readiness_checks_redis_in_distributed_mode(tmp_path, r, es, redis_url, world):  # noqa: F811
    from redis_helpers import free_port

    from ops.status import readiness

    s = make_settings(tmp_path, redis_url, es.url, registry=world.licences, enabled=True)
    push(r, entries(world, n=2))
    checks = readiness(s)
    assert checks["redis"]["ok"] and "2 listings in the stream" in checks["redis"]["detail"]
    gone = make_settings(tmp_path, f"redis://127.0.0.1:{free_port()}/0", es.url, name="gone", enabled=True)
    bad = readiness(gone)["redis"]
    assert not bad["ok"] and "does not answer ([distributed] redis_url)" in bad["detail"]
    assert "redis" not in readiness(make_settings(tmp_path, redis_url, es.url, name="alone"))  # embedded mode: no check
