"""The listing store's interface. One contract, two implementations: SQLite (embedded default,
listings/sqlite_store.py) and Elasticsearch/OpenSearch (listings/es_store.py). Both pass the same
contract tests (tests/integration/test_store_contract.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from listings.model import Listing

REVIEW_STATUSES = ("new", "confirmed", "dismissed", "escalated", "taken_down")


@dataclass
class IngestResult:
    key: str
    new_listing: bool = False
    new_observation: bool = False
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    verdict_changed: bool = False
    previous_verdict: str | None = None  # the listing's verdict before this ingest


@dataclass
class FetchState:
    """What the crawl knows about one thing it may fetch again (a listing's product page, or a shop
    page): the search card it last fetched it for, when, and the state of the listing(s) found there.
    `ref` is what a crawl sees before fetching: the item id on marketplaces whose search cards carry
    ids, the page URL on shop sites."""

    ref: str
    keys: list[str] = field(default_factory=list)
    card_hash: str | None = None
    fetched_at: datetime | None = None
    status: str | None = None          # the listing's status: active or delisted (None: not stored)
    last_seen: datetime | None = None
    verdict: str | None = None
    content_hash: str | None = None
    has_evidence: bool = False


@dataclass
class SearchQuery:
    text: str = ""
    marketplace: str | None = None
    verdict: str | None = None
    tis: str | None = None
    seller: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    price_min: float | None = None
    price_max: float | None = None
    flagged_only: bool = False
    review_status: str | None = None
    order: str = "relevance"  # relevance, risk, recent, price
    limit: int = 50
    offset: int = 0


@dataclass
class SearchResult:
    total: int
    hits: list[dict[str, Any]]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class ListingStore(Protocol):
    def ingest(self, listing: Listing, verdict: Any | None, observed_at: datetime | None = None) -> IngestResult: ...
    def mark_delisted(self, marketplace: str, seen: set[str], since: datetime, at: datetime | None = None) -> list[str]: ...
    def get(self, key: str) -> dict[str, Any] | None: ...
    def history(self, key: str) -> dict[str, list[dict[str, Any]]]: ...
    def seller(self, marketplace: str, seller_id: str) -> dict[str, Any] | None: ...
    def search(self, q: SearchQuery) -> SearchResult: ...
    def counts(self) -> dict[str, Any]: ...
    def add_evidence(self, key: str, kind: str, path: str, sha256: str, size: int, created_at: datetime) -> None: ...
    def evidence(self, key: str) -> list[dict[str, Any]]: ...
    def set_review_status(self, key: str, status: str) -> None: ...
    def export(self) -> Iterator[dict[str, Any]]: ...
    # ---- crawl bookkeeping for incremental crawls (crawlers/incremental.py decides) ---------------
    # fetch_states: what was fetched for these refs, when, for which search card, and the state of
    #   the listings found there; refs never fetched but whose item id is a stored listing come back
    #   with that listing and fetched_at None.
    # record_fetch: a ref was fetched (for the search card with hash card_hash) and gave these listings.
    # touch: these listings were seen again, unchanged, without fetching them (last_seen moves on,
    #   for the listing and its latest observation); delisted listings are left alone.
    # delist: one listing is gone (its page says so); returns its last-seen time, None when it was
    #   not active.
    # due_refetch: active listings of a marketplace not seen since `unseen_since` whose last fetch is
    #   older than `before` (`flagged_before` for flagged ones), oldest first: what a crawl revisits.
    def fetch_states(self, marketplace: str, refs: Iterable[str]) -> dict[str, FetchState]: ...
    def record_fetch(self, marketplace: str, ref: str, keys: list[str], card_hash: str | None, at: datetime) -> None: ...
    def touch(self, keys: Iterable[str], at: datetime) -> int: ...
    def delist(self, key: str, at: datetime) -> datetime | None: ...
    def due_refetch(self, marketplace: str, before: datetime, flagged_before: datetime, unseen_since: datetime,
                    limit: int) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


def open_store(settings) -> ListingStore:
    """The store the configuration asks for ([store] backend)."""
    if settings.store.backend == "elasticsearch":
        from listings.es_store import ElasticStore

        return ElasticStore(settings.store.es_url, prefix=settings.store.es_prefix)
    from listings.sqlite_store import SqliteStore

    settings.ensure_home()
    return SqliteStore(settings.listings_db)
