"""Copying a whole listing store into another (`tiswatch store reindex`): SQLite to a cluster and back.

The copy goes through the stores' `dump`/`load` (listings with their full history, evidence
references and crawl state), in batches, so memory stays flat and either backend can be the source.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any


def copy_store(src: Any, dst: Any, progress: Callable[[int], None] | None = None, batch: int = 500) -> dict[str, Any]:
    t0 = time.monotonic()
    counts = {"listings": 0, "observations": 0, "crawl_state": 0}

    def stream() -> Iterator[dict[str, Any]]:
        for rec in src.dump():
            t = rec.get("type")
            if t == "listing":
                counts["listings"] += 1
                counts["observations"] += len((rec.get("history") or {}).get("observations", []))
                if progress and counts["listings"] % batch == 0:
                    progress(counts["listings"])
            elif t == "crawl_state":
                counts["crawl_state"] += 1
            yield rec

    dst.load(stream())
    dst.flush()
    return {**counts, "to": dst.info()["location"], "seconds": time.monotonic() - t0}
