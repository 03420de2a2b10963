"""Verdict: DOMAIN.md §4.3. One of five verdicts, a risk 0–100, the standard, the licence, reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matching.reasons import sentence

VERDICTS = ("not_controlled", "licensed", "unlicensed", "mislabeled", "needs_review")
FLAGGED = frozenset({"unlicensed", "mislabeled", "needs_review"})


@dataclass
class Verdict:
    marketplace: str
    item_id: str
    verdict: str
    risk: int
    tis_no: str | None = None
    licence_no: str | None = None
    reasons: list[str] = field(default_factory=list)
    # detail for the review page and evidence; not part of the §4.3 line
    claims: list[dict[str, Any]] = field(default_factory=list)
    standards: list[str] = field(default_factory=list)
    candidates: list[tuple[str, float]] = field(default_factory=list)
    brand: str | None = None  # the brand as the listing writes it, when one was found
    model: str | None = None  # the model code that names a model of the brand
    registry_version: str = ""

    @property
    def flagged(self) -> bool:
        return self.verdict in FLAGGED

    def record(self) -> dict[str, Any]:
        """The §4.3 object."""
        return {"marketplace": self.marketplace, "item_id": self.item_id, "verdict": self.verdict,
                "risk": self.risk, "tis_no": self.tis_no, "licence_no": self.licence_no, "reasons": list(self.reasons)}

    def detail(self) -> dict[str, Any]:
        return {**self.record(), "claims": self.claims, "standards": self.standards, "brand": self.brand,
                "model": self.model, "candidates": [list(c) for c in self.candidates],
                "registry_version": self.registry_version}

    def sentences(self, lang: str = "en") -> list[str]:
        return [sentence(r, lang) for r in self.reasons]
