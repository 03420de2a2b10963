"""Scale-out benchmark (issue 10): the distributed mode's figures on this machine.

    .venv/bin/python -m tests.bench.bench_scaleout [--fingerprints N] [--listings N] [--processes 1,2,4]
        [--parts filters,crawls,shopee,workers] [--json FILE]
    make bench            # all benchmarks (this one with its defaults)

1. Redis memory per million request fingerprints, for the duplicate filters a crawl run can use: the
   baseline is scrapy-redis' own RFPDupeFilter (a Redis set of 40-character SHA-1 hex strings), then
   tiswatch's "exact" filter (96-bit keys in listpack-encoded hash buckets) and Bloom filters over a
   Redis bitmap (with the false-positive rate measured on keys never added). Plus the frontier's own
   throughput: request push, pop and ack (one Lua script each) per second, one client.
2. Crawling the sandbox's Lazada (plain HTTP; the sandbox in this process) with 1, 2 and 4 crawler
   processes on one Redis run and one `tiswatch worker` process indexing into osmem-server, against
   the baseline of one embedded crawl (one process, SQLite, checked in the crawl). Pages/s over the
   fetching (first to last page) and end to end (start to all indexed); listings checked and
   indexed/s; CPU seconds per page of the crawler processes (their own rusage, less what a crawler
   costs to start, measured on a crawl of one page); what limited it.
   Then the sandbox's Shopee, whose pages go through Chromium (scrapy-playwright): one embedded crawl
   against 2 distributed crawler processes (crawling only: the listings wait in the Redis stream),
   pages/s and CPU s per page, the costly case that sizes a Shopee crawl.
3. Workers alone: a stream preloaded with listings, drained by 1 and 2 worker processes: listings
   checked and indexed per second, CPU ms per listing.

The machine is shared (2 cores, other engineers' tests): CPU figures are steadier than wall-clock
ones; every ratio is to a baseline measured in the same run. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


# ---- 1. duplicate filter memory --------------------------------------------------------------------
def _used(r) -> int:
    r.execute_command("MEMORY", "PURGE")
    return int(r.info("memory")["used_memory"])


def filter_memory(r, n: int, batch: int = 20_000) -> list[dict[str, Any]]:
    from cluster.frontier import FilterSpec

    rows = []
    keys = [hashlib.sha1(f"https://www.lazada.co.th/products/item-{i}.html".encode()).hexdigest() for i in range(n)]
    unseen = [hashlib.sha1(f"https://www.lazada.co.th/products/other-{i}.html".encode()).hexdigest() for i in range(100_000)]
    variants: list[tuple[str, Any]] = [("scrapy-redis set (baseline)", None), ("exact", FilterSpec.plan("exact", n)),
                                       ("bloom 1e-7", FilterSpec.plan("bloom", n, 1e-7)),
                                       ("bloom 1e-9", FilterSpec.plan("bloom", n, 1e-9))]
    for name, spec in variants:
        r.flushall()
        before = _used(r)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            pipe = r.pipeline(transaction=False)
            for k in keys[i:i + batch]:
                if spec is None:
                    pipe.sadd("df", k)                      # what RFPDupeFilter.request_seen does
                else:
                    suffix, args = spec.locate(k)
                    if spec.mode == "bloom":   # all of a key's bits in one command
                        pipe.execute_command("BITFIELD", "df:" + suffix, *[x for off in args for x in ("SET", "u1", off, 1)])
                    else:
                        pipe.hsetnx("df:" + suffix, args[0], "")
            pipe.execute()
        secs = time.perf_counter() - t0
        mem = _used(r) - before
        fp = None
        if spec is not None and spec.mode == "bloom":
            hits = 0
            for i in range(0, len(unseen), batch):
                pipe = r.pipeline(transaction=False)
                for k in unseen[i:i + batch]:
                    pipe.execute_command("BITFIELD_RO", "df:bloom", *[x for off in spec.locate(k)[1] for x in ("GET", "u1", off)])
                hits += sum(all(bits) for bits in pipe.execute())
            fp = hits / len(unseen)
        rows.append({"filter": name, "bytes": mem, "per_key": mem / n, "mb_per_million": mem / n, "secs": secs,
                     "false_positives": fp})
    r.flushall()
    return rows


def frontier_ops(r, n: int = 20_000) -> dict[str, float]:
    """Pushes, pops and acks per second through the frontier's scripts, one client (round trips
    included: loopback here, ~0.2-0.5 ms more each on a network)."""
    from cluster.frontier import RedisFrontier
    from cluster.keys import Keys

    r.flushall()
    fr = RedisFrontier(r, Keys("bench"), "lazada", worker="bench", expected_requests=n)
    fr.open_run()
    fr.claim_seeding()
    fr.mark_seeded(True)
    data = os.urandom(600)  # about a pickled Lazada product request
    t0 = time.perf_counter()
    for i in range(n):
        fr.push(f"key-{i}", f"https://www.lazada.co.th/products/item-{i}.html", data)
    t1 = time.perf_counter()
    got = [fr.pop() for _ in range(n)]
    t2 = time.perf_counter()
    for k, _ in got:  # type: ignore[misc]
        fr.ack(k)
    t3 = time.perf_counter()
    r.flushall()
    return {"push": n / (t1 - t0), "pop": n / (t2 - t1), "ack": n / (t3 - t2), "page": n / (t3 - t0)}


# ---- 2. crawling -------------------------------------------------------------------------------------
class Hits:
    def __init__(self) -> None:
        self.n = 0
        self.first = self.last = 0.0

    def make_middleware(self):
        from aiohttp import web

        @web.middleware
        async def count(request, handler):
            if request.path.startswith("/lazada/"):
                now = time.monotonic()
                self.first = self.first or now
                self.last = now
                self.n += 1
            return await handler(request)

        return count

    def reset(self) -> None:
        self.n, self.first, self.last = 0, 0.0, 0.0


def start_sandbox(world, hits: Hits):
    from unittest import mock

    import sandbox.server as sbs

    make = sbs.make_app

    def counting(*a, **kw):
        app = make(*a, **kw)
        app.middlewares.append(hits.make_middleware())
        return app

    with mock.patch.object(sbs, "make_app", counting):
        return sbs.SandboxServer(world).start()


def _wait_rusage(p: subprocess.Popen) -> float:
    """Wait for a child and return the CPU seconds it (and the children it waited for) used."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_utime + ru.ru_stime


def make_home(base: Path, world, name: str, store: str = "", dist: str = ""):
    from registry.store import RegistryStore, bulk
    from settings import load_settings

    s = load_settings(home=base / name, environ={})
    s.ensure_home()
    rs = RegistryStore(s.registry_db)
    rs.import_licences(bulk(world.licences))
    rs.close()
    cfg = s.home / "bench.toml"
    cfg.write_text("[crawl]\ndownload_delay = 0.0\nautothrottle = false\nconcurrency = 8\nconcurrency_per_domain = 8\n"
                   "screenshots = false\n" + store + dist)
    return load_settings(home=s.home, config=cfg, environ={}), str(cfg)


def crawl_cmd(s, cfg, srv, categories, extra: list[str]) -> list[str]:
    from crawlers.runner import crawl_command

    return crawl_command(s, "lazada", base_url=f"{srv.url}/lazada", categories=categories, config=cfg) + extra


def embedded(base, world, srv, hits, categories) -> dict[str, Any]:
    s, cfg = make_home(base, world, "embedded")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    hits.reset()
    t0 = time.monotonic()
    p = subprocess.Popen(crawl_cmd(s, cfg, srv, categories, ["--log-file", str(s.log_dir / "c.log")]), cwd=str(ROOT),
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu = _wait_rusage(p)
    t1 = time.monotonic()
    rep = json.loads((s.crawl_dir / "lazada" / "last_run.json").read_text())
    return {"what": "embedded, 1 process (baseline)", "processes": 1, "pages": hits.n,
            "listings": rep["listings"], "fetch_s": hits.last - hits.first, "e2e_s": t1 - t0, "cpu": cpu,
            "indexed_s": t1 - hits.first, "ok": p.returncode == 0}


def startup_cpu(base, world, srv) -> float:
    """CPU seconds of a crawl process that fetches one page (a category with nothing in it)."""
    s, cfg = make_home(base, world, "startup")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(crawl_cmd(s, cfg, srv, [f"{srv.url}/lazada/no-such-category/"],
                                   ["--log-file", str(s.log_dir / "c.log")]),
                         cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _wait_rusage(p)


def distributed(base, world, srv, hits, categories, n: int, redis_url: str, es_url: str) -> dict[str, Any]:
    import redis

    from cluster import streams
    from cluster.keys import Keys

    store = f'[store]\nbackend = "elasticsearch"\nes_url = "{es_url}"\nes_replicas = 0\n'
    dist = f'[distributed]\nredis_url = "{redis_url}"\nlease_seconds = 30\npoll_seconds = 0.3\n'
    s, cfg = make_home(base, world, f"dist{n}", store, dist)
    r = redis.Redis.from_url(redis_url)
    r.flushall()
    keys = Keys("tiswatch")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tiswatch = str(Path(sys.executable).with_name("tiswatch"))
    worker = subprocess.Popen([tiswatch, "--home", str(s.home), "--config", cfg, "worker", "--name", "bench-worker"],
                              cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=open(s.log_dir / "worker.err", "wb"))  # noqa: SIM115
    hits.reset()
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], int(r.info("memory")["used_memory"]))

    threading.Thread(target=watch, daemon=True).start()
    t0 = time.monotonic()
    procs = [subprocess.Popen(crawl_cmd(s, cfg, srv, categories, ["--distributed", "--name", f"c{i}", "--log-file",
                                                                 str(s.log_dir / f"c{i}.log")]),
                              cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(n)]
    cpu = sum(_wait_rusage(p) for p in procs)
    t1 = time.monotonic()
    while not (streams.drained(r, keys) and r.hget(keys.run("lazada"), "state") == b"finished"
               and not any(e[1][b"t"] == b"run_end" for e in r.xrange(keys.listings))):
        time.sleep(0.1)
    t2 = time.monotonic()
    done.set()
    worker.terminate()
    wcpu = _wait_rusage(worker)
    info = {k.decode(): v.decode() for k, v in r.hgetall(keys.run("lazada")).items()}
    return {"what": f"distributed, {n} crawler process{'es' if n > 1 else ''}", "processes": n, "pages": hits.n,
            "listings": int(info.get("seen") or 0), "fetch_s": hits.last - hits.first, "e2e_s": t2 - t0,
            "crawl_s": t1 - t0, "indexed_s": t2 - hits.first, "cpu": cpu, "worker_cpu": wcpu,
            "redis_peak_mb": peak[0] / 1e6, "ok": all(p.returncode == 0 for p in procs) and info.get("state") == "finished"}


def shopee(base, redis_url: str, es_factory, n_listings: int = 90, processes: tuple[int, ...] = (0, 2)) -> list[dict[str, Any]]:
    """Shopee's pages go through Chromium (the site signs its API in the page): the costly case. One
    embedded crawl (processes 0) and distributed crawls; CPU per page from the crawl processes' rusage
    (Chromium is their descendant, reaped by Playwright's driver: counted as far as it was reaped)."""
    import redis

    from cluster.keys import Keys
    from sandbox.server import SandboxServer
    from sandbox.world import build_world

    w = build_world(seed=17, n_licences=300, n_listings=n_listings, vanish_share=0)
    rows = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with SandboxServer(w) as srv:
        cats = [f"{srv.url}/shopee/x-cat.{c[0]}" for c in srv.sandbox.categories("shopee")]
        for n in processes:
            es = es_factory() if n else None
            store = f'[store]\nbackend = "elasticsearch"\nes_url = "{es.url}"\nes_replicas = 0\n' if es else ""
            dist = f'[distributed]\nredis_url = "{redis_url}"\nlease_seconds = 60\npoll_seconds = 0.3\n' if n else ""
            s, cfg = make_home(base, w, f"shopee{n}", store, dist)
            cfg_text = Path(cfg).read_text().replace("concurrency = 8\n", "concurrency = 4\nbrowser_pages = 4\n", 1)
            Path(cfg).write_text(cfg_text)
            r = redis.Redis.from_url(redis_url)
            r.flushall()
            from crawlers.runner import crawl_command

            def cmd(extra: list[str], s=s, cfg=cfg) -> list[str]:
                return crawl_command(s, "shopee", base_url=f"{srv.url}/shopee", categories=cats, config=cfg) + extra

            t0 = time.monotonic()
            if n == 0:
                procs = [subprocess.Popen(cmd(["--log-file", str(s.log_dir / "c.log")]), cwd=str(ROOT), env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
            else:
                procs = [subprocess.Popen(cmd(["--distributed", "--name", f"s{i}", "--log-file", str(s.log_dir / f"s{i}.log")]),
                                          cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for i in range(n)]
            cpu = sum(_wait_rusage(p) for p in procs)
            secs = time.monotonic() - t0
            if n == 0:
                reps = [json.loads((s.crawl_dir / "shopee" / "last_run.json").read_text())]
            else:
                from cluster.crawl import report_path

                reps = [json.loads(report_path(s, "shopee", f"s{i}").read_text()) for i in range(n)]
            pages = sum(int(x["stats"].get("response_received_count", 0)) for x in reps)
            listings = sum(int(x["stats"].get("tiswatch/listings", 0)) for x in reps)
            ok = all(x["reason"] == "finished" for x in reps) and all(p.returncode == 0 for p in procs)
            if n:
                ok = ok and r.hget(Keys("tiswatch").run("shopee"), "state") == b"finished"
            rows.append({"processes": n, "pages": pages, "listings": listings, "secs": secs, "cpu": cpu, "ok": ok,
                         "expected": len(w.for_marketplace("shopee"))})
            if es is not None:
                es.close()
    return rows


# ---- 3. workers alone ------------------------------------------------------------------------------------
def workers_alone(base, world, redis_url: str, es_factory, counts=(1, 2), n_listings: int = 1500) -> list[dict[str, Any]]:
    import redis

    from cluster import streams
    from cluster.keys import Keys
    from listings.model import Listing
    from sandbox.world import build_world

    w = build_world(seed=5, n_licences=3000, n_listings=n_listings, vanish_share=0)
    payloads = [{"listing": Listing.model_validate({**x.listing, "observed_at": "2026-11-24T03:00:00+00:00"}).record()}
                for x in w.listings]
    rows = []
    keys = Keys("tiswatch")
    r = redis.Redis.from_url(redis_url)
    tiswatch = str(Path(sys.executable).with_name("tiswatch"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for k in counts:
        es = es_factory()
        store = f'[store]\nbackend = "elasticsearch"\nes_url = "{es.url}"\nes_replicas = 0\n'
        s, cfg = make_home(base, w, f"workers{k}", store, f'[distributed]\nredis_url = "{redis_url}"\n')
        r.flushall()
        pipe = r.pipeline(transaction=False)
        for p in payloads:
            pipe.xadd(keys.listings, {"t": "listing", "d": json.dumps(p, ensure_ascii=False)})
        pipe.execute()
        # each worker first warms up (tokenizer dictionary, registry) on nothing, then the clock starts
        t0 = time.monotonic()
        procs = [subprocess.Popen([tiswatch, "--home", str(s.home), "--config", cfg, "worker", "--drain", "--name", f"w{i}"],
                                  cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for i in range(k)]
        first = None
        while True:
            st = streams.group_state(r, keys.listings, "check")
            if first is None and st["exists"] and (st["pending"] or st.get("lag") == 0 or r.xlen(keys.listings) < len(payloads)):
                first = time.monotonic()
            if st["exists"] and streams.drained(r, keys):
                break
            time.sleep(0.05)
        t1 = time.monotonic()
        cpu = sum(_wait_rusage(p) for p in procs)
        es.close()
        rows.append({"workers": k, "listings": len(payloads), "secs": t1 - (first or t0), "e2e_s": t1 - t0, "cpu": cpu})
    return rows


# ---- running and reporting -------------------------------------------------------------------------------
PARTS = ("filters", "crawls", "shopee", "workers")


def run(fingerprints: int = 1_000_000, n_listings: int = 1200, processes: tuple[int, ...] = (1, 2, 4),
        parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    from osmem_server import OsmemServer
    from redis_helpers import RedisServer

    from sandbox.world import build_world

    base = Path(tempfile.mkdtemp(prefix="scaleout-bench-"))
    red = RedisServer(base / "redis").start()
    osm = OsmemServer.start(addr="127.0.0.1:0", japanese=False)
    out: dict[str, Any] = {"cores": os.cpu_count(), "load_before": os.getloadavg()}
    try:
        r = red.client()
        if "filters" in parts:
            out["filters"] = filter_memory(r, fingerprints)
            out["ops"] = frontier_ops(r)
        world = build_world(seed=13, n_licences=1000, n_listings=n_listings, vanish_share=0)
        hits = Hits()
        srv = start_sandbox(world, hits) if "crawls" in parts else None
        try:
            if srv is not None:
                cats = [f"{srv.url}/lazada/{c[2]}/" for c in srv.sandbox.categories("lazada")]
                out["lazada_listings"] = len(world.for_marketplace("lazada"))
                out["startup_cpu"] = startup_cpu(base, world, srv)
                rows = [embedded(base, world, srv, hits, cats)]
                for n in processes:
                    clone = osm.clone()
                    try:
                        rows.append(distributed(base, world, srv, hits, cats, n, red.url, clone.url))
                    finally:
                        clone.close()
                out["crawls"] = rows
        finally:
            if srv is not None:
                srv.stop()
        if "shopee" in parts:
            out["shopee"] = shopee(base, red.url, osm.clone)
        if "workers" in parts:
            out["workers"] = workers_alone(base, world, red.url, osm.clone)
        out["load_after"] = os.getloadavg()
    finally:
        osm.close()
        red.stop()
        shutil.rmtree(base, ignore_errors=True)
    return out


def report(o: dict[str, Any]) -> None:
    print(f"\nscale-out benchmark on {o['cores']} cores (load average before {o['load_before'][0]:.1f}, "
          f"after {o['load_after'][0]:.1f}: a shared machine)")
    if "filters" in o:
        report_filters(o)
    if "crawls" in o:
        report_crawls(o)
    if "shopee" in o:
        report_shopee(o)
    if "workers" in o:
        report_workers(o)


def report_filters(o: dict[str, Any]) -> None:
    print("\n1. Redis memory of a crawl run's duplicate filter")
    base = o["filters"][0]["per_key"]
    print(f"{'filter':<30} {'MB per million':>15} {'vs baseline':>12} {'inserts/s':>10} {'false positives':>16}")
    for f in o["filters"]:
        n = f["bytes"] / f["per_key"] if f["per_key"] else 0
        fp = "-" if f["false_positives"] is None else f"{f['false_positives']:.2e}"
        print(f"{f['filter']:<30} {f['per_key']:>15.1f} {f['per_key'] / base:>12.2f} {n / f['secs']:>10,.0f} {fp:>16}")
    ops = o["ops"]
    print(f"frontier scripts, one client on loopback: push {ops['push']:,.0f}/s, pop {ops['pop']:,.0f}/s, ack "
          f"{ops['ack']:,.0f}/s: {ops['page']:,.0f} pages/s of frontier work (one push, pop and ack a page)")


def report_crawls(o: dict[str, Any]) -> None:
    rows = o["crawls"]
    b = rows[0]
    st = o["startup_cpu"]
    print(f"\n2. crawling the sandbox's Lazada: {o['lazada_listings']} listings, {b['pages']} pages; one `tiswatch "
          f"worker` process; osmem-server as the index")
    print(f"   (a crawler process costs {st:.1f} CPU s to start: imports, registry, Thai tokenizer; subtracted below)")
    print(f"{'run':<36} {'pages':>6} {'pages/s fetching':>17} {'vs base':>8} {'pages/s e2e':>12} {'listings/s':>11} "
          f"{'crawler CPU ms/page':>20} {'worker CPU ms/listing':>22} {'Redis peak MB':>14}")
    for x in rows:
        pps = x["pages"] / x["fetch_s"] if x["fetch_s"] else 0
        base_pps = b["pages"] / b["fetch_s"] if b["fetch_s"] else 1
        cpu_page = max(0.0, x["cpu"] - x["processes"] * st) / max(1, x["pages"]) * 1000
        wcpu = f"{x['worker_cpu'] / max(1, x['listings']) * 1000:.1f}" if "worker_cpu" in x else "(in crawl)"
        peak = f"{x['redis_peak_mb']:.1f}" if "redis_peak_mb" in x else "-"
        print(f"{x['what'] + ('' if x['ok'] else ' FAILED'):<36} {x['pages']:>6} {pps:>17.1f} {pps / base_pps:>8.2f} "
              f"{x['pages'] / x['e2e_s']:>12.1f} {x['listings'] / x['indexed_s']:>11.1f} {cpu_page:>20.1f} {wcpu:>22} {peak:>14}")


def report_shopee(o: dict[str, Any]) -> None:
    print("\n   Shopee in Chromium (sandbox; pages are browser navigations; a crawler's start-up included)")
    print(f"{'run':<36} {'pages':>6} {'listings':>9} {'seconds':>8} {'pages/s':>8} {'CPU s/page':>11}")
    for x in o["shopee"]:
        what = "embedded, 1 process" if x["processes"] == 0 else f"distributed, {x['processes']} processes"
        what += "" if x["ok"] and x["listings"] == x["expected"] else f" (listings {x['listings']}/{x['expected']}, check)"
        print(f"{what:<36} {x['pages']:>6} {x['listings']:>9} {x['secs']:>8.1f} {x['pages'] / x['secs']:>8.2f} "
              f"{x['cpu'] / max(1, x['pages']):>11.2f}")


def report_workers(o: dict[str, Any]) -> None:
    print("\n3. workers alone: a preloaded listing stream drained by `tiswatch worker --drain` processes")
    w0 = o["workers"][0]
    print(f"{'workers':>8} {'listings':>9} {'listings/s':>11} {'vs 1':>6} {'CPU ms/listing':>15}")
    for w in o["workers"]:
        print(f"{w['workers']:>8} {w['listings']:>9} {w['listings'] / w['secs']:>11.1f} "
              f"{(w['listings'] / w['secs']) / (w0['listings'] / w0['secs']):>6.2f} {w['cpu'] / w['listings'] * 1000:>15.1f}")


def test_scaleout_benchmark():
    report(run(fingerprints=1_000_000))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fingerprints", type=int, default=1_000_000)
    ap.add_argument("--listings", type=int, default=1200, help="listings in the sandbox world (a third on Lazada)")
    ap.add_argument("--processes", default="1,2,4")
    ap.add_argument("--parts", default=",".join(PARTS), help="which parts to run (comma-separated): " + ", ".join(PARTS))
    ap.add_argument("--json", default="", help="also write the figures to this file")
    a = ap.parse_args()
    parts = tuple(x for x in a.parts.split(",") if x)
    if set(parts) - set(PARTS):
        ap.error(f"--parts: unknown {sorted(set(parts) - set(PARTS))}; choose from {', '.join(PARTS)}")
    o = run(a.fingerprints, a.listings, tuple(int(x) for x in a.processes.split(",")), parts)
    report(o)
    if a.json:
        Path(a.json).write_text(json.dumps(o, indent=1, default=str))


if __name__ == "__main__":
    main()
