"""Matching benchmark: listings checked per second on one core, against generated registries from
1,000 to 100,000 licences (29,183 is the real November-2025 count). Goal: >= 2,000 listings/s at 29,183.

    .venv/bin/python -m tests.bench.bench_matching [LISTINGS]      # default 3000 listings per size

For each size, one seeded world (sandbox/world.py: `generate_licences` for the registry, the world's
scenarios for the listings, with the hard spellings on) is built; its registry is indexed, the engine's
lookup structures are prepared (`matching.engine.prepare`), and then every listing is checked once.
The listings are the same kind at every size, so the ratio to the first row shows how the cost grows
with the registry. Throughput is given per CPU second of this process (steady on a shared machine)
and per wall-clock second. Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SIZES = (1_000, 3_000, 10_000, 29_183, 100_000)


def run(n_listings: int = 3000, sizes: tuple[int, ...] = SIZES, seed: int = 7) -> list[dict]:
    from listings.model import Listing
    from matching.engine import check, prepare
    from registry.catalogue import load_catalogue
    from registry.index import Registry
    from sandbox.world import build_world

    cat = load_catalogue()
    rows = []
    for size in sizes:
        w = build_world(seed=seed, n_licences=size, n_listings=n_listings, catalogue=cat, hard=True, vanish_share=0)
        listings = [Listing(**x.listing) for x in w.listings]
        t0 = time.perf_counter()
        reg = Registry(w.licences, cat, version=f"bench-{size}")
        t1 = time.perf_counter()
        prepare(reg)
        t2 = time.perf_counter()
        c0, w0 = time.process_time(), time.perf_counter()
        right = 0
        for li, x in zip(listings, w.listings, strict=True):
            v = check(li, reg)
            right += (v.verdict, v.tis_no, v.licence_no) == (x.expected["verdict"], x.expected["tis_no"], x.expected["licence_no"])
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        rows.append({"licences": len(reg), "index_s": t1 - t0, "prepare_s": t2 - t1, "listings": len(listings),
                     "per_cpu_s": len(listings) / cpu, "per_wall_s": len(listings) / wall,
                     "us_per_listing": cpu / len(listings) * 1e6, "agree": right / len(listings)})
    return rows


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rows = run(n)
    base = rows[0]["per_cpu_s"]
    print(f"matching: {n} listings per registry size, one core (the first row is the baseline)")
    print(f"{'licences':>9} {'index s':>8} {'prepare s':>9} {'listings/s cpu':>15} {'listings/s wall':>16} "
          f"{'µs/listing':>11} {'vs first':>9} {'agree':>6}")
    for r in rows:
        print(f"{r['licences']:>9,} {r['index_s']:>8.2f} {r['prepare_s']:>9.2f} {r['per_cpu_s']:>15,.0f} "
              f"{r['per_wall_s']:>16,.0f} {r['us_per_listing']:>11.0f} {r['per_cpu_s'] / base:>9.2f} {r['agree']:>6.3f}")
    real = next((r for r in rows if r["licences"] == 29_183), None)
    if real:
        print(f"at 29,183 licences: {real['per_cpu_s']:,.0f} listings per CPU second (goal >= 2,000)")


if __name__ == "__main__":
    main()
