"""Incremental crawling: which listings a crawl fetches again. Pure: no I/O, the clock is passed in.

A search card (Shopee search_items, Lazada catalog) already shows a listing's title, price, brand and
seller. A listing seen before is fetched again (its product page) only when
- it was never fetched, or it is delisted (it is back: relisted),
- its card changed since the last fetch (title, price, brand, seller, shop, location, currency), or
- it is due: the last fetch is older than `every` (`flagged_every` for flagged listings, which
  officers act on and whose evidence must be current).
Otherwise the crawl only records that it saw the listing again (store.touch).

Sold counts and ratings are left out of the card on purpose: they change between most crawls, and a
new count alone is no reason to fetch a page again; the next due fetch records it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from listings.model import FLAGGED
from listings.store import FetchState

CARD_FIELDS = ("title", "price", "brand", "seller", "seller_id", "shop_id", "location", "currency")


@dataclass(frozen=True)
class RefetchPolicy:
    every: timedelta = timedelta(days=7)
    flagged_every: timedelta = timedelta(days=1)

    @classmethod
    def from_settings(cls, crawl: Any) -> RefetchPolicy:
        return cls(timedelta(hours=crawl.refetch_hours), timedelta(hours=crawl.refetch_flagged_hours))


@dataclass(frozen=True)
class Decision:
    fetch: bool
    why: str  # new, relisted, changed, due, unchanged


def card_hash(card: Mapping[str, Any], fields: tuple[str, ...] = CARD_FIELDS) -> str:
    """A short hash of what a search card shows that matters for the verdict. Whitespace and case of
    text, and the float formatting of prices, do not change it."""
    norm: dict[str, Any] = {}
    for f in fields:
        v = card.get(f)
        if v in (None, "", [], {}):
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        elif isinstance(v, str):
            v = " ".join(v.split()).casefold()
        norm[f] = v
    return hashlib.sha256(json.dumps(norm, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]


def is_due(state: FetchState, now: datetime, policy: RefetchPolicy) -> bool:
    if state.fetched_at is None:
        return True
    age = now - state.fetched_at
    return age >= (policy.flagged_every if state.verdict in FLAGGED else policy.every)


def decide(card: str | None, state: FetchState | None, now: datetime, policy: RefetchPolicy) -> Decision:
    """Fetch the listing's page again? `card` is the card hash now shown (None when the crawl has no
    card, e.g. a shop page from a sitemap without lastmod); `state` what the store knows."""
    if state is None or not state.keys or state.status is None:
        return Decision(True, "new")
    if state.status == "delisted":
        return Decision(True, "relisted")
    if card is not None and state.card_hash is not None and card != state.card_hash:
        return Decision(True, "changed")
    if is_due(state, now, policy):
        return Decision(True, "due")
    return Decision(False, "unchanged")
