"""Listing: DOMAIN.md §4.2, what a marketplace shows for one item at one time.

Produced by crawlers/ (and `tiswatch parse`), read from JSON Lines by `tiswatch check`, kept by the
listing store. Only marketplace, item_id and title are required.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

VERDICTS = ("not_controlled", "licensed", "unlicensed", "mislabeled", "needs_review")
FLAGGED = frozenset({"unlicensed", "mislabeled", "needs_review"})


class Expected(BaseModel):
    model_config = ConfigDict(extra="ignore")
    verdict: str
    tis_no: str | None = None
    licence_no: str | None = None

    @field_validator("verdict")
    @classmethod
    def _v(cls, v: str) -> str:
        if v not in VERDICTS:
            raise ValueError(f"{v!r} is not one of {', '.join(VERDICTS)}")
        return v


def _to_str(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return str(int(v)) if float(v).is_integer() else str(v)
    return v


class Listing(BaseModel):
    model_config = ConfigDict(extra="ignore")

    marketplace: str = Field(min_length=1, max_length=64)
    item_id: str = Field(min_length=1, max_length=128)
    title: str = Field(max_length=10_000)
    shop_id: str | None = None
    url: str | None = None
    description: str | None = None
    brand: str | None = None
    seller: str | None = None
    seller_id: str | None = None
    price: float | None = None
    currency: str | None = None
    sold: int | None = None
    location: str | None = None
    category: list[str] = []
    attributes: dict[str, str] = {}
    images: list[str] = []
    observed_at: datetime | None = None
    expected: Expected | None = None

    @field_validator("item_id", "shop_id", "seller_id", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        return _to_str(v)

    @field_validator("attributes", mode="before")
    @classmethod
    def _attrs(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): ("" if x is None else x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) for k, x in v.items()}
        if isinstance(v, list):  # [{"name":..., "value":...}] as marketplaces send them
            return {str(a.get("name")): str(a.get("value") or "") for a in v if isinstance(a, dict) and a.get("name")}
        return v

    @field_validator("category", "images", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, str):
            return [p.strip() for p in v.split(">") if p.strip()]
        return [str(x) for x in v if x is not None and str(x).strip()]

    @property
    def key(self) -> str:
        return f"{self.marketplace}:{self.item_id}"

    def record(self) -> dict[str, Any]:
        """The §4.2 object (without `expected`), as JSON-ready data."""
        d = self.model_dump(mode="json", exclude={"expected"}, exclude_none=False)
        return d

    def content_hash(self) -> str:
        """What identifies one view of the listing: every field but the time it was seen."""
        d = self.model_dump(mode="json", exclude={"expected", "observed_at"})
        return _hash(d)

    def view(self) -> tuple[dict[str, Any], str]:
        """(record(), content_hash()) with one serialisation: what the store's bulk path needs."""
        rec = self.record()
        return rec, _hash({k: v for k, v in rec.items() if k != "observed_at"})


_SORTED_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode  # json.dumps's, built once


def _hash(d: dict[str, Any]) -> str:
    return hashlib.sha256(_SORTED_JSON(d).encode()).hexdigest()[:32]
