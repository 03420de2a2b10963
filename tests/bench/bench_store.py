"""Listing store benchmark: ingest rate, search and history latency, size on disk, on SQLite and on
osmem-server (or a real cluster: --es-url), with the same simulated history for each.

    python -m tests.bench.bench_store                        # full size: 200,000 listings, 1,000,000 observations
    python -m tests.bench.bench_store --listings 20000 --observations 100000   # a quick run
    python -m tests.bench.bench_store --backends sqlite --keep --dir /tmp/b    # SQLite only, keep the file
    python -m tests.bench.bench_store --reuse /tmp/b/bench-store-…/listings.sqlite   # queries only, on a kept file
    python -m tests.bench.bench_store --minutes 35,10        # at most 35 min of SQLite ingest, 10 of the cluster's

On a shared machine run it under `flock /tmp/tiswatch-bench.lock …` and read the CPU figures.

The listings come from the one world generator (sandbox/world.py: 20,000 made listings and their
variants, `grow`) and live through a simulated history (sandbox/history.py: prices move, sales grow,
claims appear, listings vanish and return, verdicts change with the registry); every backend ingests
the same events in the same order through the bulk path (`ingest_many` in chunks of 5,000 events,
delistings as `Delisting` items in their place). The ingest figures count the time spent in the
store's calls only (wall and CPU; the cluster's CPU included), not generating the events.

Search: a Thai product word with two filters (marketplace and verdict), the same word alone, and a
filter-only query, each with facets and the first page of 50; the review queue, its status tabs, and
the queue narrowed by date, seller or price; `--queries` times each with rotating words and filters.
History: one listing's full history (observations, changes, verdicts). Prints a table with p50/p95,
wall and CPU, and ratios; asserts nothing about time (goal on SQLite: search p95 <= 50 ms, history
p95 <= 10 ms).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# product words buyers type (from the standards catalogue), a Thai word query each
WORDS = ["ปลั๊กพ่วง", "พัดลม", "หม้อหุงข้าว", "พาวเวอร์แบงค์", "หมวกกันน็อค", "เตารีด", "หลอดไฟ", "ของเล่น", "ไดร์เป่าผม",
         "กาต้มน้ำ", "สายไฟ", "เครื่องซักผ้า", "ปลั๊ก", "ตู้เย็น", "หม้อ"]
MARKETPLACES = ["shopee", "lazada", "shop"]
BASE_WORLD = 20_000  # listings made by the world generator; the rest are its variants (sandbox.world.grow)
VERDICTS = ["unlicensed", "mislabeled", "licensed", "not_controlled"]


@dataclass
class Result:
    backend: str
    events: int = 0
    observations: int = 0
    ingest_s: float = 0.0
    bytes: int = 0
    ingest_cpu: float = 0.0
    total_s: float = 0.0  # generating and ingesting
    listings: int = 0
    timings: dict[str, list[float]] = field(default_factory=dict)
    hits: dict[str, float] = field(default_factory=dict)
    note: str = ""


def events(n_listings: int, n_obs: int, seed: int) -> Iterator[Any]:
    from sandbox.history import simulate
    from sandbox.world import build_world, grow

    base = min(n_listings, BASE_WORLD)
    w = grow(build_world(seed=seed, n_licences=max(600, base // 40), n_listings=base), n_listings, seed)
    yield from simulate(w, n_obs, seed=seed)


def ingest(st: Any, evs: Callable[[], Iterator[Any]], chunk: int = 5000, say: Callable[[str], None] = print,
           budget_s: float = 0) -> tuple[int, float, float]:
    """Feed every event through the bulk path (`ingest_many` per chunk; delistings as `Delisting` items
    in their place); returns (events, wall seconds and CPU seconds spent in the store: this process
    inside the store's calls, plus the search server). With `budget_s`, stops after that much wall
    time (generating included): on a busy machine, the largest history that fits."""
    from listings.store import Delisting

    spent = cpu = 0.0
    n = 0
    buf: list[Any] = []
    start = last = time.monotonic()

    def flush() -> None:
        nonlocal spent, cpu, buf
        c, t = _cpu(), time.perf_counter()
        if buf:
            st.ingest_many(buf)
            buf = []
        spent += time.perf_counter() - t
        cpu += _cpu() - c

    for e in evs():
        n += 1
        buf.append((e.listing, e.verdict, e.at) if e.kind == "ingest" else Delisting(e.key, e.at))
        if len(buf) >= chunk:
            flush()
            if budget_s and time.monotonic() - start > budget_s:
                say(f"    time budget spent: stopped after {n:,} events")
                break
        if spent and time.monotonic() - last > 60:
            last = time.monotonic()
            say(f"    … {n:,} events, {n / max(spent, 1e-9):,.0f}/s in the store (wall), {n / max(cpu, 1e-9):,.0f}/CPU-s")
    flush()
    c, t = _cpu(), time.perf_counter()
    st.flush()
    spent += time.perf_counter() - t
    cpu += _cpu() - c
    return n, spent, cpu


SERVER_PID: list[int] = []  # osmem-server's pid: its CPU time counts too


def _cpu() -> float:
    """CPU seconds of this process and of the search server: on a machine shared with other work,
    CPU time shows what a query costs when wall time mostly shows the queue for a core."""
    t = time.process_time()
    for pid in SERVER_PID:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            t += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return t


def timed(fn: Callable[[], Any], runs: list[Any], cpu: list[float] | None = None) -> list[float]:
    out = []
    for arg in runs:
        c = _cpu()
        t = time.perf_counter()
        fn(arg)
        out.append((time.perf_counter() - t) * 1000)
        if cpu is not None:
            cpu.append((_cpu() - c) * 1000)
    return out


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(p * len(s))) - 1))]


def measure(st: Any, keys: list[str], queries: int, seed: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    from listings.store import SearchQuery

    rnd = random.Random(seed)
    word_filters = [SearchQuery(text=rnd.choice(WORDS), marketplace=rnd.choice(MARKETPLACES), verdict=rnd.choice(VERDICTS),
                                limit=50) for _ in range(queries)]
    word_only = [SearchQuery(text=q.text, limit=50) for q in word_filters]
    filters_only = [SearchQuery(marketplace=q.marketplace, verdict=q.verdict, order="risk", limit=50) for q in word_filters]
    no_facets = [SearchQuery(text=q.text, marketplace=q.marketplace, verdict=q.verdict, limit=50, facets=False) for q in word_filters]
    # the review queue's two calls (review/pages.py queue): a page of flagged listings in review status
    # `new` by risk, with total and facets, then the status tabs' counts (all statuses, no page)
    queue_page = [SearchQuery(flagged_only=True, review_status="new", order="risk", limit=50,
                              offset=50 * rnd.randint(0, 20)) for _ in range(queries)]
    queue_tabs = [SearchQuery(flagged_only=True, order="risk", limit=0,
                              marketplace=rnd.choice([None, *MARKETPLACES])) for _ in range(queries)]
    some = [rnd.choice(keys) for _ in range(queries)]
    # the queue narrowed by an officer (review/pages.py _filters): by date, by seller, by price
    sellers = [g["seller"] for g in (st.get(k) for k in keys[:200]) if g and g.get("seller")] or ["ร้าน"]
    latest = max((st.get(k) or {}).get("last_seen", "") for k in keys[:50])
    since = datetime.fromisoformat(latest) - timedelta(days=3) if latest else None
    queue_date = [SearchQuery(flagged_only=True, review_status="new", order="risk", limit=50, date_from=since)
                  for _ in range(queries)]
    queue_seller = [SearchQuery(flagged_only=True, review_status="new", order="risk", limit=50, seller=rnd.choice(sellers))
                    for _ in range(queries)]
    queue_price = [SearchQuery(flagged_only=True, review_status="new", order="risk", limit=50,
                               price_min=(lo := rnd.choice((0, 100, 300, 1000))), price_max=lo * 3 + 200) for _ in range(queries)]
    for q in word_filters[:10]:  # warm caches the way a running service has them
        st.search(q)
    for k in some[:10]:
        st.history(k)
    out: dict[str, list[float]] = {}
    totals: dict[str, float] = {}
    for name, qs in (("search: Thai word + 2 filters", word_filters), ("search: Thai word, no filter", word_only),
                     ("search: 2 filters, no word", filters_only), ("search: word + 2 filters, no facets", no_facets),
                     ("queue: flagged new by risk + facets", queue_page), ("queue: status tab counts", queue_tabs),
                     ("queue: + seen in the last 3 days", queue_date), ("queue: + seller", queue_seller),
                     ("queue: + price range", queue_price)):
        res: list[int] = []
        cpu: list[float] = []
        out[name] = timed(lambda q, res=res: res.append(st.search(q).total), qs, cpu)
        out[name + " (CPU)"] = cpu
        totals[name] = statistics.mean(res)
    cpu = []
    out["history of one listing"] = timed(st.history, some, cpu)
    out["history of one listing (CPU)"] = cpu
    out["get one listing"] = timed(st.get, some)
    return out, totals


def run_backend(name: str, make: Callable[[], Any], evs: Callable[[], Iterator[Any]] | None, queries: int, seed: int,
                size: Callable[[Any], int], budget_s: float = 0) -> Result:
    r = Result(name)
    print(f"\n[{name}] ingesting …", flush=True)
    st = make()
    try:
        if evs is not None:
            t0 = time.perf_counter()
            r.events, r.ingest_s, r.ingest_cpu = ingest(st, evs, say=lambda m: print(m, flush=True), budget_s=budget_s)
            r.total_s = time.perf_counter() - t0
        c = st.counts()
        r.observations, r.listings = c["observations"], c["listings"]
        print(f"[{name}] {r.events:,} events in {r.ingest_s:,.1f}s in the store ({r.ingest_cpu:,.1f} CPU s; "
              f"{r.total_s:,.0f}s with generating): {c['listings']:,} listings, {r.observations:,} observations", flush=True)
        r.bytes = size(st)
        keys = [h["key"] for h in st.search(__import__("listings.store", fromlist=["SearchQuery"]).SearchQuery(
            order="recent", limit=1000, facets=False)).hits]
        gc.collect()
        print(f"[{name}] measuring {queries} queries of each kind …", flush=True)
        r.timings, r.hits = measure(st, keys, queries, seed)
    finally:
        st.close()
    return r


def sqlite_size(st: Any) -> int:
    st.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in (st.path, Path(str(st.path) + "-wal")) if p.exists())


def es_size(st: Any) -> int:
    st.flush()
    return int(st.info()["bytes"])


def main(argv: list[str] | None = None) -> list[Result]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listings", type=int, default=200_000)
    ap.add_argument("--observations", type=int, default=1_000_000)
    ap.add_argument("--backends", default="sqlite,osmem", help="sqlite, osmem, es (es needs --es-url or TISWATCH_ES_URL)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", default="", help="where the SQLite file goes (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the SQLite file (in --dir) afterwards")
    ap.add_argument("--es-url", default=os.environ.get("TISWATCH_ES_URL", ""))
    ap.add_argument("--timeout", type=float, default=120, help="seconds per cluster request (a busy machine needs more)")
    ap.add_argument("--minutes", default="", help="time budget of each backend's ingest, e.g. 40,12 (sqlite, then the "
                    "cluster): stop feeding there and measure what is stored (the figures say how much)")
    ap.add_argument("--reuse", default="", help="a SQLite file a --keep run filled: measure its queries, ingest nothing")
    a = ap.parse_args(argv)

    def evs() -> Iterator[Any]:
        return events(a.listings, a.observations, a.seed)

    budgets = [float(x) * 60 for x in a.minutes.split(",") if x.strip()]
    results: list[Result] = []
    tmp = _Dir(tempfile.mkdtemp(prefix="bench-store-", dir=a.dir or None), keep=a.keep)
    try:
        for i, b in enumerate(x.strip() for x in a.backends.split(",") if x.strip()):
            budget = budgets[min(i, len(budgets) - 1)] if budgets else 0
            if b == "sqlite":
                from listings.sqlite_store import SqliteStore

                path = Path(a.reuse) if a.reuse else Path(tmp.name) / "listings.sqlite"
                results.append(run_backend("SQLite", lambda path=path: SqliteStore(path), None if a.reuse else evs, a.queries,
                                           a.seed, sqlite_size, budget))
            elif b in ("osmem", "es"):
                from listings.es_store import ElasticStore

                srv = None
                if b == "osmem":
                    from osmem_server import OsmemServer

                    srv = OsmemServer.start(addr="127.0.0.1:0", japanese=False)
                    url, label = srv.url, "osmem-server"
                    SERVER_PID[:] = [srv.pid]
                else:
                    if not a.es_url:
                        print("es: no --es-url / TISWATCH_ES_URL; skipped")
                        continue
                    url, label = a.es_url, "cluster"
                prefix = f"bench{random.randrange(1 << 30):x}"
                try:
                    results.append(run_backend(label, lambda url=url, prefix=prefix: ElasticStore(url, prefix, replicas=0,
                                                                                                 rollover="client",
                                                                                                 timeout=a.timeout),
                                               evs, a.queries, a.seed, es_size, budget))
                finally:
                    if b == "es":
                        ElasticStore(url, prefix, replicas=0).drop()
                    if srv is not None:
                        rss = _rss(srv.pid)
                        if results and results[-1].backend == label and rss:
                            results[-1].note = f"server RSS {rss / 1e9:.1f} GB"
                        srv.close()
                        SERVER_PID.clear()
    finally:
        if a.keep:
            print(f"kept: {tmp.name}")
        tmp.cleanup()
    report(results, a)
    return results


class _Dir:
    def __init__(self, name: str, keep: bool):
        self.name, self.keep = name, keep

    def cleanup(self) -> None:
        if not self.keep:
            import shutil

            shutil.rmtree(self.name, ignore_errors=True)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def report(results: list[Result], a: Any) -> None:
    if not results:
        return
    print(f"\nlisting store benchmark: {a.listings:,} listings, {a.observations:,} observations asked "
          f"({os.cpu_count()} cores, shared machine: compare the ratios)")
    head = f"{'':38}" + "".join(f"{r.backend:>18}" for r in results)
    print(head)
    print("-" * len(head))

    def row(label: str, vals: list[str]) -> None:
        print(f"{label:38}" + "".join(f"{v:>18}" for v in vals))

    def rate(n: float, s: float) -> str:
        return f"{n / s:,.0f}" if s else "-"

    row("listings stored", [f"{r.listings:,}" for r in results])
    row("observations stored", [f"{r.observations:,}" for r in results])
    row("ingest events (sightings, delistings)", [f"{r.events:,}" for r in results])
    row("ingest: wall s in the store", [f"{r.ingest_s:,.0f}" for r in results])
    row("ingest: CPU s in the store", [f"{r.ingest_cpu:,.0f}" for r in results])
    row("ingest: events/s (wall)", [rate(r.events, r.ingest_s) for r in results])
    row("ingest: events/CPU-s", [rate(r.events, r.ingest_cpu) for r in results])
    row("ingest: observations/s (wall)", [rate(r.observations, r.ingest_s) for r in results])
    row("ingest: observations/CPU-s", [rate(r.observations, r.ingest_cpu) for r in results])
    row("size (MB)", [f"{r.bytes / 1e6:,.0f}" for r in results])
    row("size per 1M observations (MB)", [f"{r.bytes / 1e6 / max(r.observations, 1) * 1e6:,.0f}" for r in results])
    for name in results[0].timings:
        for p, label in ((0.5, "p50"), (0.95, "p95")):
            row(f"{name} {label} ms", [f"{pct(r.timings[name], p):,.1f}" for r in results])
    row("  mean hits, word + 2 filters", [f"{r.hits['search: Thai word + 2 filters']:,.0f}" for r in results])
    row("  mean hits, word alone", [f"{r.hits['search: Thai word, no filter']:,.0f}" for r in results])
    for r in results:
        if r.note:
            print(f"{r.backend}: {r.note}")
    base = results[0]
    if len(results) > 1 and all(r.events for r in results):
        print(f"\nratios against {base.backend} (>1: slower or bigger than {base.backend})")
        for r in results[1:]:
            print(f"  {r.backend}: ingest time per event x{(r.ingest_s / r.events) / (base.ingest_s / base.events):.1f}, "
                  f"size x{r.bytes / base.bytes:.1f}, search p95 x{pct(r.timings['search: Thai word + 2 filters'], 0.95) / pct(base.timings['search: Thai word + 2 filters'], 0.95):.1f}, "
                  f"history p95 x{pct(r.timings['history of one listing'], 0.95) / pct(base.timings['history of one listing'], 0.95):.1f}")
    for r in results:
        wf = pct(r.timings["search: Thai word + 2 filters"], 0.95)
        print(f"{r.backend}: word + 2 filters vs word alone (p95) x{wf / pct(r.timings['search: Thai word, no filter'], 0.95):.2f}; "
              f"facets cost (p95 with / without) x{wf / pct(r.timings['search: word + 2 filters, no facets'], 0.95):.2f}")
    s = next((r for r in results if r.backend == "SQLite"), None)
    if s:
        for kind in ("", " (CPU)"):
            sp = pct(s.timings["search: Thai word + 2 filters" + kind], 0.95)
            hp = pct(s.timings["history of one listing" + kind], 0.95)
            print(f"goal on SQLite{kind or ' (wall)'}: search p95 <= 50 ms ({sp:.1f}: {'met' if sp <= 50 else 'NOT met'}), "
                  f"history p95 <= 10 ms ({hp:.1f}: {'met' if hp <= 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
