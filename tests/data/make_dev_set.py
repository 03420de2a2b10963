"""Write the generated part of the labeled development set (see README.md beside this file).

    .venv/bin/python -m tests.data.make_dev_set

One seeded world of sandbox/world.py (the generator the sandbox marketplaces and the benchmarks use
too): its licence file, 800 listings for development and the next 300, never looked at while tuning,
as the held-out check. The truth of each listing comes from the scenario it was made from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SEED, LICENCES, DEV, HELDOUT = 2026, 2000, 800, 300


def main(out: Path = Path(__file__).resolve().parent) -> None:
    from registry.licences import write_licence_csv
    from sandbox.world import build_world

    w = build_world(seed=SEED, n_licences=LICENCES, n_listings=DEV + HELDOUT, vanish_share=0)
    write_licence_csv(w.licences, out / "dev_registry.csv")
    for name, part in (("dev.jsonl", w.listings[:DEV]), ("heldout.jsonl", w.listings[DEV:])):
        with open(out / name, "w", encoding="utf-8") as f:
            for x in part:
                f.write(json.dumps({**x.listing, "scenario": x.scenario, "expected": x.expected}, ensure_ascii=False) + "\n")
    print(f"{out}: {len(w.licences)} licences, {DEV} dev and {HELDOUT} held-out listings (seed {SEED})")


if __name__ == "__main__":
    main()
