"""Operations benchmark: the re-check after a registry change, a /metrics scrape and a backup, on a
generated world of N listings (default 10,000) and 5,000 licences.

    .venv/bin/python -m tests.bench.bench_ops [N]
    make bench                                   # every benchmark in tests/bench

Printed with ratios against baselines measured in the same run:
- finding the affected listings (`affected_keys`) against reading every listing's standards and claims
  in Python (what a re-check without the store's help would do);
- the whole re-check against `check()` alone on the same listings (the overhead of reading, comparing,
  recording and the events);
- a metrics scrape against the store's own `counts()`;
- `tiswatch backup` of the data directory against a plain copy of its files (not consistent while
  written to, so not a backup: only a yardstick).
Asserts nothing about time: the machine may be shared.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _timed(fn, *a, **kw):
    gc.collect()
    c, t = time.process_time(), time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t, time.process_time() - c


def run(n_listings: int = 10_000, n_licences: int = 5_000) -> list[tuple[str, str, str]]:
    from listings.model import Listing
    from listings.store import open_store
    from matching import check
    from ops.backup import make_backup
    from ops.history import open_history
    from ops.metrics import TiswatchCollector
    from ops.recheck import CURSOR, image_claims_from_detail, listing_from_row, recheck
    from registry.catalogue import load_catalogue
    from registry.index import Registry
    from registry.licences import Licence
    from registry.store import RegistryStore, bulk
    from registry.tisno import parse_tis
    from sandbox.world import build_world
    from settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    rows: list[tuple[str, str, str]] = []
    try:
        s = load_settings(home=tmp / "home", environ={})
        s.ensure_home()
        cat = load_catalogue()
        (world, t_world, _) = _timed(build_world, seed=11, n_licences=n_licences, n_listings=n_listings, catalogue=cat)
        rs = RegistryStore(s.registry_db)
        rs.import_licences(bulk(world.licences), today=date(2026, 11, 1))
        reg = Registry.from_store(rs, cat)
        st = open_store(s)
        items = []
        for w in world.listings:
            x = Listing.model_validate({**w.listing, "observed_at": "2026-11-20T10:00:00+00:00"})
            items.append((x, check(x, reg), None))
        _, t_ingest, _ = _timed(st.ingest_many, items)
        rows.append(("world + store", f"{len(world.listings)} listings, {len(world.licences)} licences",
                     f"built {t_world:.1f}s, stored {t_ingest:.1f}s"))

        # a registry update: 20 licences revoked (the ones most listings rest on), 10 granted
        counts: dict[str, int] = {}
        for _, v, _ in items:
            if v.licence_no:
                counts[v.licence_no] = counts.get(v.licence_no, 0) + 1
        revoke = set(sorted(counts, key=lambda k: -counts[k])[:20])
        lics = [dataclasses.replace(lic, status="revoked", status_date=date(2026, 11, 20)) if lic.licence_no in revoke
                else lic for lic in world.licences]
        for i, lic in enumerate(world.licences[:10]):
            lics.append(Licence(licence_no=f"ท9{i:03d}-1/2569", tis_no=lic.tis_no, licence_type="ท",
                                trademarks=(f"NewBrand{i}",), status="active", issued=date(2026, 11, 21)))
        rs.import_licences(bulk(lics), today=date(2026, 11, 22))
        new_reg = Registry.from_store(rs, cat)
        deltas = rs.changes_since(1)
        bases = {parse_tis(c.tis_no).base for c in deltas}
        nos = {c.licence_no for c in deltas}
        rs.close()

        keys, t_aff, _ = _timed(st.affected_keys, bases, nos)

        def scan() -> list[str]:
            out = []
            for r in st.db.execute("SELECT key, tis_base, licence_no, detail FROM listings"):
                d = json.loads(r["detail"] or "{}")
                sb = {parse_tis(x).base for x in d.get("standards", []) if parse_tis(x)}
                cl = {c.get("value") for c in d.get("claims", []) if c.get("kind") == "licence"}
                if r["tis_base"] in bases or sb & bases or r["licence_no"] in nos or cl & nos:
                    out.append(r["key"])
            return out

        scanned, t_scan, _ = _timed(scan)
        assert sorted(scanned) == keys
        rows.append(("affected listings", f"{len(keys)} of {len(items)} ({len(bases)} standards, {len(nos)} licences)",
                     f"{t_aff * 1000:.0f} ms vs scan {t_scan * 1000:.0f} ms (x{t_scan / max(t_aff, 1e-9):.1f})"))

        def check_only() -> int:
            n = 0
            for k in keys:
                row = st.get(k)
                check(listing_from_row(row), new_reg, image_claims=image_claims_from_detail(row["detail"]) or None)
                n += 1
            return n

        _, t_check, _ = _timed(check_only)
        hist = open_history(s)
        hist.put(CURSOR, 1)
        now = datetime(2026, 11, 24, tzinfo=UTC)
        res, t_re, c_re = _timed(recheck, s, history=hist, store=st, clock=lambda: now)
        hist.close()
        rows.append(("re-check", f"{res['candidates']} checked, {res['changed']} changed "
                                 f"({', '.join(f'{k} {v}' for k, v in sorted(res['transitions'].items()))})",
                     f"{t_re:.2f}s ({res['candidates'] / max(t_re, 1e-9):.0f}/s; cpu {c_re:.2f}s) vs check alone "
                     f"{t_check:.2f}s (x{t_re / max(t_check, 1e-9):.2f})"))

        # a scrape
        _, t_counts, _ = _timed(st.counts)
        col = TiswatchCollector(s, cache_seconds=0)
        fams, t_scrape, _ = _timed(lambda: list(col.collect()))
        rows.append(("metrics scrape", f"{len(fams)} families",
                     f"{t_scrape * 1000:.0f} ms vs store.counts() {t_counts * 1000:.0f} ms (x{t_scrape / max(t_counts, 1e-9):.1f})"))
        st.close()

        # a backup
        size = sum(p.stat().st_size for p in s.home.rglob("*") if p.is_file())
        m, t_backup, _ = _timed(make_backup, s.home, tmp / "backup")
        _, t_copy, _ = _timed(shutil.copytree, s.home, tmp / "copy")
        rows.append(("backup", f"{size / 2**20:.0f} MiB, {len(m['files'])} files",
                     f"{t_backup:.2f}s vs plain copy {t_copy:.2f}s (x{t_backup / max(t_copy, 1e-9):.1f})"))
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(rows: list[tuple[str, str, str]]) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print()
    print(f"{'what':<{w0}}  {'size':<{w1}}  time (ratio to the baseline of the same run)")
    for a, b, c in rows:
        print(f"{a:<{w0}}  {b:<{w1}}  {c}")


def test_ops_benchmark():
    report(run())


if __name__ == "__main__":
    report(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
