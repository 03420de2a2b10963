"""The listing store's interface. One contract, two implementations: SQLite (embedded default,
listings/sqlite_store.py) and Elasticsearch/OpenSearch (listings/es_store.py). Both pass the same
contract tests (tests/integration/test_store_contract.py).

What a store keeps: listings (current state and latest verdict), observations (each distinct view
with first and last seen; identical consecutive views are one observation), change events, the
verdict history (with the registry version of each verdict), evidence references and the crawl's
bookkeeping. Sellers are profiles computed from their listings. The rules of ingestion (idempotent,
order-tolerant) are in listings/plan.py, the search semantics in listings/query.py.

Times are ISO 8601 strings in UTC ("2026-11-01T03:00:00+00:00") in everything a store returns.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from listings.model import Listing

REVIEW_STATUSES = ("new", "confirmed", "dismissed", "escalated", "taken_down")
SCHEMA_VERSION = 2  # of the stored data, both backends; listings/sqlite_migrate.py moves a store forward
SEARCH_ORDERS = ("relevance", "risk", "recent", "price")
FACETS = ("marketplace", "verdict", "tis_no", "seller", "review_status")


class StoreError(Exception):
    """A store problem the user can act on; the message names the database file or cluster URL."""


class SchemaError(StoreError):
    """The stored data has another schema version than this tiswatch (run `tiswatch store migrate`)."""


@dataclass
class IngestResult:
    key: str
    new_listing: bool = False
    new_observation: bool = False
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    verdict_changed: bool = False
    previous_verdict: str | None = None  # the listing's verdict before this ingest


@dataclass(frozen=True)
class Delisting:
    """An item of `ingest_many` besides (listing, verdict, observed_at): the listing's page says it is
    gone at `at`, exactly as `delist(key, at)` (a bulk load or a replayed history keeps its delistings
    in order, in the same transaction or bulk request as the sightings around them). Its result has
    the change ("delisted", last seen, at), or no change when the listing was not active or was seen
    after `at`."""

    key: str
    at: datetime


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
    order: str = "relevance"  # relevance (words before substrings, then risk), risk, recent, price
    limit: int = 50
    offset: int = 0
    status: str | None = None  # active or delisted
    facets: bool = True        # False: skip the facet counts (faster when nobody shows them)
    flagged_before: datetime | None = None  # flagged (continuously) since this time or earlier: backlog age


@dataclass
class SearchResult:
    """`hits` are listings (as `get` returns them); with query text each hit also has `matched` (the
    terms found) and `why` (listings.query.explain: term, field, word or substring, snippet).
    `facets` maps marketplace, verdict, tis_no, seller and review_status to [(value, count)], most
    frequent first (at most 20 each)."""

    total: int
    hits: list[dict[str, Any]]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    terms: list[str] = field(default_factory=list)  # the query terms searched for


IngestItem = tuple[Listing, Any | None, datetime | None] | Delisting


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for one bulk batch. A batch makes hundreds of
    thousands of short-lived, acyclic objects (records, plans, rows) that reference counting frees;
    left on, the collector walks the whole heap again and again meanwhile (a bulk load's caller
    often holds much more: a replayed history, a world of listings): a quarter of the bulk path's
    CPU at 135,000 events, more with a bigger heap. Process-wide, so only for the length of a batch;
    nested uses and a collector the application turned off are left as they are."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def dump_record_batches(records: Iterable[dict[str, Any]], batch: int) -> Iterator[list[dict[str, Any]]]:
    """The records of a dump (ListingStore.dump) to write with ListingStore.load, in batches of at most
    `batch`: the meta record is checked (a dump of a newer schema is refused before anything is
    written) and left out; a record of an unknown type is refused."""
    part: list[dict[str, Any]] = []
    for rec in records:
        t = rec.get("type", "listing")
        if t == "meta":
            v = rec.get("schema_version")
            if v is not None and int(v) > SCHEMA_VERSION:
                raise StoreError(f"records of schema v{v} are newer than this tiswatch (v{SCHEMA_VERSION})")
            continue
        if t not in ("listing", "crawl_state", "listing_images"):
            raise StoreError(f"unknown record type {t!r}")
        part.append(rec)
        if len(part) >= batch:
            yield part
            part = []
    if part:
        yield part


def item_key(item: IngestItem) -> str:
    return item.key if isinstance(item, Delisting) else item[0].key


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
    # ---- store engineer's additions (issue 6) -------------------------------------------------
    # ingest_many: bulk ingestion of (listing, verdict, observed_at) and Delisting items, in order, one
    #   result each: the same stored state, history and results as ingest/delist one by one (the
    #   contract tests run through both paths), written in a few transactions or bulk requests.
    # record_verdict: a verdict made again for the stored view (registry re-check), no new sighting;
    #   None when the listing is not stored.
    # sellers: seller accounts across marketplaces whose id, shop id or name matches `text`
    #   (profiles without their items), most flagged first.
    # seller_history: what happened to a seller's listings (listed, changes, verdicts), oldest first.
    # resolve: the keys a user may mean by a key, a URL or an item id.
    # dump / load: every record of the store (JSON-ready; listings with their history and evidence,
    #   crawl state), for `tiswatch store export` and `reindex`; load is idempotent.
    # evidence_captures / mark_evidence_pruned: evidence by capture, for the retention policy.
    # info: backend, location, schema version and sizes; flush: make writes visible to search.
    # prune_observations: delete observations last seen before `before`, except the newest of each
    #   listing, every observation of a listing whose review status is not `new` and of the listings in
    #   `keep` (the observation retention policy, listings/retention.py); changes and verdicts stay.
    #   Returns how many were (dry_run: would be) deleted.
    def ingest_many(self, items: Iterable[IngestItem]) -> list[IngestResult]: ...
    def record_verdict(self, key: str, verdict: Any, at: datetime | None = None) -> IngestResult | None: ...
    def sellers(self, text: str, limit: int = 20) -> list[dict[str, Any]]: ...
    def seller_history(self, marketplace: str, seller_id: str, limit: int = 1000) -> list[dict[str, Any]]: ...
    def resolve(self, ref: str) -> list[str]: ...
    def dump(self) -> Iterator[dict[str, Any]]: ...
    def load(self, records: Iterable[dict[str, Any]]) -> int: ...
    def evidence_captures(self, before: datetime) -> Iterator[dict[str, Any]]: ...
    def mark_evidence_pruned(self, key: str, created_at: str, at: datetime) -> int: ...
    def info(self) -> dict[str, Any]: ...
    def flush(self) -> None: ...
    def prune_observations(self, before: datetime, keep: Iterable[str] = (), dry_run: bool = False) -> int: ...
    # rebuild_words: cut every listing's search text into words again (after a change of
    #   listings/query.py WORDS_VERSION), rewriting those whose words changed; progress(n) with the
    #   listings read so far, as it goes. {"listings": read, "changed": rewritten}.
    def rebuild_words(self, progress: Callable[[int], None] | None = None) -> dict[str, int]: ...
    # ---- re-checks and revisits (ops/: the scheduler, issue 9) ------------------------------------
    # affected_keys: stored listings (active or delisted) whose verdict may depend on these standards
    #   (base numbers: '2432', '685 เล่ม 1') or licences: the listing's standard or one that applies
    #   with it (detail.standards) has one of the bases, or its matched licence or a claimed one (text
    #   or image, detail.claims) is one of the licence numbers. Sorted.
    # changed_keys: listings of a marketplace with a recorded change (not stock counts, not delisting)
    #   at or after `since`.
    def affected_keys(self, bases: Iterable[str], licence_nos: Iterable[str]) -> list[str]: ...
    def changed_keys(self, marketplace: str, since: datetime) -> set[str]: ...
    # ---- the listings' pictures, for re-used photos (images/ writes them during the crawl) ----------
    # add_images: the listing's current pictures [{index (1-based), url, sha256, phash (16 hex digits),
    #   width, height}], replacing the ones stored before (first_seen kept for the same picture).
    # images_of: those pictures, by index.
    # find_images: pictures of any listing whose perceptual hash is within max_distance bits of phash,
    #   closest first, with their listing (key, marketplace, seller, title, verdict, url); within 3 bits
    #   none is missed, beyond that most are found.
    # same_images: for each picture of `key`, the pictures of other listings that look the same, with
    #   "image" (the index in `key`) added: other shops using the same photo.
    def add_images(self, key: str, images: list[dict[str, Any]], seen_at: datetime | None = None) -> None: ...
    def images_of(self, key: str) -> list[dict[str, Any]]: ...
    def find_images(self, phash: str, max_distance: int = 4, limit: int = 100,
                    exclude_key: str | None = None) -> list[dict[str, Any]]: ...
    def same_images(self, key: str, max_distance: int = 4, limit: int = 100) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


def open_store(settings, *, migrate: bool = False) -> ListingStore:
    """The store the configuration asks for ([store] backend). A SQLite store of an older schema
    raises SchemaError unless `migrate` (then it is migrated in place, after a backup)."""
    if settings.store.backend == "elasticsearch":
        from listings.es_store import ElasticStore

        return ElasticStore.from_settings(settings.store)
    from listings.sqlite_store import SqliteStore

    settings.ensure_home()
    if migrate:
        from listings.sqlite_migrate import migrate as run_migrate

        run_migrate(settings.listings_db)
    return SqliteStore(settings.listings_db)
