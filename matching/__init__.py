"""Matching: from a listing to a verdict. `check(listing, registry) -> Verdict` is pure: no network,
no disk, no clock. Steps: normalise (normalise.py) → read claims (claims.py) → decide the product
(product.py) → find the licence (licence.py) → verdict (engine.py, verdict.py, reasons.py).

The package imports lazily so that registry/ can use matching.normalise without a cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FLAGGED", "VERDICTS", "Verdict", "check"]


def __getattr__(name: str) -> Any:
    if name == "check":
        from matching.engine import check

        return check
    if name in ("Verdict", "FLAGGED", "VERDICTS"):
        from matching import verdict

        return getattr(verdict, name)
    raise AttributeError(name)
