"""Review app benchmark: server time of the queue and listing pages with N flagged listings in the
SQLite store (goal: p95 <= 150 ms at 100,000), next to the bare store calls they are built on, and
the seller page (which looks for the same operator's other shops: review/linking.py; every seller
here shares names with many others, a worst case for name links). The
queue is measured as served (its facet counts kept briefly, review/counts.py) and with the counts
made on every request (what a page costs right after a bulk decision or once the counts expire).

    .venv/bin/python -m tests.bench.bench_review [N]        # default 100000

Listings are real checked listings of the sandbox world, copied under new item ids with spread risks,
sellers and dates, written straight into the store's tables (the ingest path is not what is measured
here). Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def build(home: Path, n: int) -> None:
    from listings.model import Listing
    from listings.store import open_store
    from matching import check
    from registry.index import Registry
    from sandbox.world import build_world
    from settings import load_settings

    s = load_settings(home=home, environ={})
    st = open_store(s)
    w = build_world(seed=7, n_licences=600, n_listings=400)
    reg = Registry(w.licences, w.catalogue, version="bench")
    at = datetime(2026, 11, 22, 3, tzinfo=UTC)
    seeds = []
    for x in w.listings:
        li = Listing(**x.listing)
        v = check(li, reg)
        if v.flagged:
            st.ingest(li, v, at)
            seeds.append(li.key)
    rows = [dict(st.db.execute("SELECT * FROM listings WHERE key=?", (k,)).fetchone()) for k in seeds]
    rnd = random.Random(1)
    cols = [c for c in rows[0] if c != "id"]  # the store numbers listings itself (schema v2)
    batch = []
    for i in range(n - len(rows)):
        r = dict(rows[i % len(rows)])
        r["item_id"] = f"b{i}"
        r["key"] = f"{r['marketplace']}:b{i}"
        r["risk"] = rnd.randint(40, 99)
        r["seller_id"] = f"s{rnd.randint(0, n // 40)}"
        seen = at - timedelta(days=rnd.randint(0, 60), minutes=rnd.randint(0, 1440))
        r["first_seen"] = r["flagged_at"] = seen.isoformat(timespec="seconds")
        r["last_seen"] = at.isoformat(timespec="seconds")
        batch.append(tuple(r[c] for c in cols))
        if len(batch) == 20_000:
            _flush(st, cols, batch)
    _flush(st, cols, batch)
    st.db.execute("ANALYZE")
    st.close()


def _flush(st, cols, batch) -> None:
    st.db.execute("BEGIN")
    last = st.db.execute("SELECT coalesce(max(id), 0) FROM listings").fetchone()[0]
    st.db.executemany(f"INSERT INTO listings({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", batch)
    st.db.execute("INSERT INTO search_tri(rowid, text) SELECT id, 'x' FROM listings WHERE id > ?", (last,))
    st.db.execute("COMMIT")
    batch.clear()


def timed(fn, runs: int) -> tuple[list[float], list[float]]:
    """Wall time and CPU time (this process: the app runs in the TestClient's thread) of each run, ms.
    On a shared machine the CPU time says what the page costs; the wall time adds the waiting."""
    fn()  # warm
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return wall, cpu


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(round(0.95 * len(xs))) - 1)]


def main(n: int = 100_000, runs: int = 30) -> None:
    from fastapi.testclient import TestClient

    from listings.store import SearchQuery
    from review.app import create_app
    from review.db import open_appdb
    from settings import load_settings

    home = Path(tempfile.mkdtemp(prefix="review-bench-")) / "home"
    t0 = time.perf_counter()
    build(home, n)
    s = load_settings(home=home, environ={})
    db = open_appdb(s)
    db.add_user("bench", "bench-pass-123", "officer")
    db.close()
    app = create_app(s)
    st = app.state.store
    total = st.search(SearchQuery(flagged_only=True, limit=0)).total
    print(f"\n{total:,} flagged listings in the SQLite store (built in {time.perf_counter() - t0:.0f}s)")
    c = TestClient(app)
    tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    c.post("/login", data={"username": "bench", "password": "bench-pass-123", "csrf": tok})
    key = st.search(SearchQuery(flagged_only=True, order="risk", limit=1)).hits[0]["key"]
    mp = st.get(key)["marketplace"]
    seller = st.get(key)["seller_id"]

    def page(url, keep_counts=True):
        def f():
            app.state.counts.ttl = ttl if keep_counts else 0
            r = c.get(url)
            assert r.status_code == 200, (url, r.status_code)
        return f

    ttl = app.state.counts.ttl
    q_new = SearchQuery(flagged_only=True, review_status="new", order="risk", limit=50)
    cases = [
        ("store.search: flagged, by risk, 50 (baseline)", lambda: st.search(q_new)),
        ("store.search: the same, rows only (no facets)", lambda: st.search(replace(q_new, facets=False))),
        ("queue page / (counts kept, as served)", page("/")),
        ("queue page / (counts on every request)", page("/", keep_counts=False)),
        ("store.search: + marketplace, verdict", lambda: st.search(replace(q_new, marketplace=mp, verdict="unlicensed"))),
        ("queue page, filtered (counts kept)", page(f"/?marketplace={mp}&verdict=unlicensed")),
        ("queue page, filtered (counts every request)", page(f"/?marketplace={mp}&verdict=unlicensed", keep_counts=False)),
        ("queue page 200 (deep offset, counts kept)", page("/?page=200")),
        ("API /api/v1/queue (counts kept)", page("/api/v1/queue")),
        ("store.get + history + seller (baseline)", lambda: (st.get(key), st.history(key),
                                                             st.seller(mp, st.get(key)["seller_id"]))),
        ("listing page", page("/listing/" + key)),
        ("seller page (its shops across marketplaces)", page(f"/seller/{mp}/{seller}")),
    ]
    listing_from = 9
    res = []
    for name, fn in cases:
        xs, cs = timed(fn, runs)
        res.append((name, statistics.median(xs), p95(xs), statistics.median(cs), p95(cs)))
    base_q, base_l = res[0][2], res[listing_from][2]
    print(f"\n{'what':46} {'p50 ms':>8} {'p95 ms':>8} {'p95 / baseline':>15} {'CPU p50':>8} {'CPU p95':>8}")
    for i, (name, p50, p, c50, c95) in enumerate(res):
        base = base_l if i >= listing_from else base_q
        print(f"{name:46} {p50:8.1f} {p:8.1f} {p / base:14.1f}x {c50:8.1f} {c95:8.1f}")
    print(f"counts kept for {ttl:g} s ([review] count_cache_seconds); the rows and the list's total are read every time")
    print("goal: queue and listing page p95 <= 150 ms (machine shared with other work; see the ratios)")
    json.dumps(res)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
