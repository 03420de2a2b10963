"""Licence registry benchmark: import of a generated registry the size of the real one (29,183 licences),
the licence check (pure function and through the app over HTTP/ASGI) and registry search.

    .venv/bin/python -m tests.bench.bench_registry [N]     # default 29183
    make bench                                             # every benchmark in tests/bench

Prints a table of figures with ratios against baselines measured in the same run (a plain csv parse of
the same file for the import; the pure function for the HTTP path; a primary-key lookup for search).
Asserts nothing about time: the machine may be shared.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import random
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


CPU: dict[str, float] = {}  # seconds of CPU of the last _timed call, by function name


def _timed(fn, *a, **kw):
    """(result, wall seconds); the CPU seconds go to CPU[fn name]: on a shared machine the wall time
    includes waiting for a core, the CPU time does not."""
    gc.collect()
    c, t = time.process_time(), time.perf_counter()
    out = fn(*a, **kw)
    CPU[getattr(fn, "__name__", "fn")] = time.process_time() - c
    return out, time.perf_counter() - t


def _peak(fn, *a, **kw) -> float:
    """Peak Python heap (MiB) while fn runs, by tracemalloc (a separate, slower run)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn(*a, **kw)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _queries(reg, n: int, seed: int = 1) -> list[dict]:
    """A mix of what platforms send: a licence named with its brand and model, a standard and brand,
    a brand with a model it does not hold, a licence of another brand, an unknown brand."""
    rng = random.Random(seed)
    lics = [x for x in reg.by_no.values() if x.trademarks]
    out = []
    for i in range(n):
        x = rng.choice(lics)
        kind = i % 5
        if kind == 0:
            out.append({"licence_no": x.licence_no, "brand": x.trademarks[0], "model": x.models[0] if x.models else None})
        elif kind == 1:
            out.append({"tis_no": x.tis_no, "brand": x.trademarks[-1], "model": x.models[-1] if x.models else None})
        elif kind == 2:
            out.append({"tis_no": x.tis_no, "brand": x.trademarks[0], "model": "ZZ-99999"})
        elif kind == 3:
            out.append({"licence_no": x.licence_no, "brand": "Nonexistent Brand"})
        else:
            out.append({"tis_no": x.tis_no, "brand": f"Brand{rng.randrange(10**6)}"})
    return [{k: v for k, v in q.items() if v is not None} for q in out]


def run(n: int = 29183, checks: int = 2000, searches: int = 300) -> list[tuple[str, str, str]]:
    import httpx

    from registry.catalogue import load_catalogue
    from registry.check import check_licence
    from registry.index import Registry
    from registry.licences import read_licence_file, write_licence_csv
    from registry.store import RegistryStore
    from review.app import create_app
    from sandbox.world import generate_licences
    from settings import load_settings

    rows: list[tuple[str, str, str]] = []
    cat = load_catalogue()
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        tmpd = Path(tmp)
        (lics, _), t_gen = _timed(generate_licences, n, 7, cat)
        path = tmpd / "licences.csv"
        write_licence_csv(lics, path, thai_headers=True)
        rows.append(("generate", f"{n} licences", f"{t_gen:.2f} s  (cpu {CPU['generate_licences']:.2f} s)"))

        # baseline: a plain csv parse of the same file, no validation
        def plain():
            with path.open(encoding="utf-8-sig", newline="") as f:
                return list(csv.reader(f))

        _, t_csv = _timed(plain)
        c_csv = CPU["plain"]
        parsed, t_parse = _timed(read_licence_file, path)
        c_parse = CPU["read_licence_file"]
        assert len(parsed.licences) == n and not parsed.errors
        rows.append(("baseline: csv.reader", f"{path.stat().st_size / 2**20:.1f} MiB",
                     f"{t_csv:.2f} s  (cpu {c_csv:.2f} s)"))
        rows.append(("read + validate", f"{n / c_parse:,.0f} rows per cpu-s",
                     f"{t_parse:.2f} s  (cpu {c_parse:.2f} s, {c_parse / c_csv:.1f}× csv)"))

        home = tmpd / "home"
        settings = load_settings(home=home, environ={})
        settings.ensure_home()
        store = RegistryStore(settings.registry_db)
        rep, t_import = _timed(store.import_file, path, as_of=date(2025, 11, 30))
        c_import = CPU["import_file"]
        assert rep.added == n
        rows.append(("import (read + store)", f"{n / c_import:,.0f} licences per cpu-s",
                     f"{t_import:.2f} s  (cpu {c_import:.2f} s, {c_import / c_csv:.1f}× csv)"))
        rep2, t_again = _timed(store.import_file, path, as_of=date(2025, 11, 30))
        assert rep2.unchanged == n
        rows.append(("re-import, nothing changed", "", f"{t_again:.2f} s  (cpu {CPU['import_file']:.2f} s)"))

        peak_parse = _peak(read_licence_file, path)
        scratch = RegistryStore(tmpd / "scratch.sqlite")
        peak_import = _peak(scratch.import_file, path)
        scratch.close()
        rows.append(("peak memory: read", "tracemalloc", f"{peak_parse:.0f} MiB"))
        rows.append(("peak memory: import", "tracemalloc", f"{peak_import:.0f} MiB"))

        reg, t_index = _timed(Registry.from_store, store, cat)
        rows.append(("build in-memory index", f"{len(reg)} licences", f"{t_index:.2f} s  (cpu {CPU['from_store']:.2f} s)"))

        # the licence check, pure
        qs = _queries(reg, checks)
        pure, pure_cpu = [], []
        backed = 0
        for q in qs:
            c, t = time.process_time(), time.perf_counter()
            r = check_licence(reg, **q)
            pure.append(time.perf_counter() - t)
            pure_cpu.append(time.process_time() - c)
            backed += r.backed
        p50, p95 = _pct(pure, 50) * 1e3, _pct(pure, 95) * 1e3
        cp50, cp95 = _pct(pure_cpu, 50) * 1e3, _pct(pure_cpu, 95) * 1e3
        rows.append(("check, pure function", f"{checks} checks, {backed} backed",
                     f"p50 {p50:.3f} ms  p95 {p95:.3f} ms  (cpu p50 {cp50:.3f} ms  p95 {cp95:.3f} ms)"))

        # the licence check through the app (ASGI, httpx), with its per-request registry-version check
        app = create_app(settings)

        async def http() -> tuple[list[float], list[float]]:
            out, cpu = [], []
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
                r = await c.get("/api/v1/licences/check", params=qs[0])  # builds the index once
                assert r.status_code == 200, r.text
                for q in qs:
                    c0, t = time.process_time(), time.perf_counter()
                    r = await c.get("/api/v1/licences/check", params=q)
                    out.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c0)
                    assert r.status_code == 200
            return out, cpu

        lat, lat_cpu = asyncio.run(http())
        h50, h95 = _pct(lat, 50) * 1e3, _pct(lat, 95) * 1e3
        ch50, ch95 = _pct(lat_cpu, 50) * 1e3, _pct(lat_cpu, 95) * 1e3
        rows.append(("check, HTTP (ASGI, client included)", f"{checks} requests",
                     f"p50 {h50:.2f} ms  p95 {h95:.2f} ms  (cpu p50 {ch50:.2f} ms  p95 {ch95:.2f} ms; "
                     f"{ch50 / cp50:.0f}× pure cpu at p50)"))

        # search
        rng = random.Random(2)
        sample = rng.sample(list(reg.by_no.values()), searches)
        terms = []
        for i, x in enumerate(sample):
            k = i % 5
            terms.append(x.trademarks[0] if k == 0 else x.trademarks[-1] if k == 1 else
                         (x.models[0] if x.models else x.licence_no) if k == 2 else
                         x.licensee.split()[1] if k == 3 and len(x.licensee.split()) > 1 else x.licence_no)
        base_lat = []
        for x in sample:
            t = time.perf_counter()
            store.get(x.licence_no)
            base_lat.append(time.perf_counter() - t)
        s_lat, s_cpu, hits = [], [], 0
        for q in terms:
            c, t = time.process_time(), time.perf_counter()
            hits += len(store.search(q, 30))
            s_lat.append(time.perf_counter() - t)
            s_cpu.append(time.process_time() - c)
        b50 = _pct(base_lat, 50) * 1e3
        s50, s95 = _pct(s_lat, 50) * 1e3, _pct(s_lat, 95) * 1e3
        rows.append(("baseline: get by licence no", f"{searches} lookups", f"p50 {b50:.3f} ms"))
        rows.append(("search (brand, Thai brand, model, licensee, no)", f"{searches} queries, {hits} hits",
                     f"p50 {s50:.2f} ms  p95 {s95:.2f} ms  (cpu p50 {_pct(s_cpu, 50) * 1e3:.2f} ms  "
                     f"p95 {_pct(s_cpu, 95) * 1e3:.2f} ms; {s50 / b50:.0f}× get at p50)"))
        store.close()
    return rows


def report(rows: list[tuple[str, str, str]]) -> str:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{'registry benchmark':<{w0}}  {'':<{w1}}  figure (wall time; cpu time where the machine is shared)",
             "-" * (w0 + w1 + 40)]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def test_registry_benchmark():
    """`make bench`: prints the table (pytest -s)."""
    print("\n" + report(run()))


if __name__ == "__main__":
    print(report(run(int(sys.argv[1]) if len(sys.argv) > 1 else 29183)))
