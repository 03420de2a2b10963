"""The embedded listing store: SQLite in WAL mode, in the data directory (listings.sqlite).

Tables (schema v2; listings/sqlite_migrate.py moves a v1 database forward in place):
- listings: current state and latest verdict, one row a listing (`id` is stable: the search indexes
  refer to it);
- observations: each distinct view with first and last seen and how many sightings it merges
  (identical consecutive views are one row); the view is kept as compressed JSON;
- changes, verdicts: what changed between views; each verdict with the registry version it used;
- evidence: files with SHA-256 (rows stay when the retention policy deletes the files: pruned_at);
- crawl_state: the crawl's bookkeeping of what it fetched;
- search_words (FTS5, words pre-cut by pythainlp, unicode61 keeping Thai marks) and search_tri (FTS5
  trigram over the folded text, for substrings), rowid = listings.id.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from listings import plan as P
from listings import query as Q
from listings.model import FLAGGED, Listing
from listings.sqlite_util import enable_wal
from listings.store import (
    FACETS,
    REVIEW_STATUSES,
    SCHEMA_VERSION,
    FetchState,
    IngestItem,
    IngestResult,
    SchemaError,
    SearchQuery,
    SearchResult,
    StoreError,
    dump_record_batches,
    gc_paused,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS listings (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE, marketplace TEXT NOT NULL, item_id TEXT NOT NULL, shop_id TEXT, url TEXT, title TEXT,
  description TEXT, brand TEXT, seller TEXT, seller_id TEXT, price REAL, currency TEXT, sold INTEGER,
  location TEXT, category TEXT, attributes TEXT, images TEXT,
  first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active', delisted_at TEXT,
  content_hash TEXT, verdict TEXT, risk INTEGER, tis_no TEXT, licence_no TEXT, reasons TEXT, detail TEXT,
  checked_at TEXT, registry_version TEXT, review_status TEXT NOT NULL DEFAULT 'new', flagged_at TEXT,
  tis_base TEXT, seller_norm TEXT
);
CREATE INDEX IF NOT EXISTS listings_queue ON listings(verdict, risk DESC);
CREATE INDEX IF NOT EXISTS listings_risk ON listings(risk DESC, last_seen DESC);
CREATE INDEX IF NOT EXISTS listings_seller ON listings(marketplace, seller_id);
CREATE INDEX IF NOT EXISTS listings_mp_seen ON listings(marketplace, last_seen);
CREATE INDEX IF NOT EXISTS listings_tis ON listings(tis_base);
CREATE INDEX IF NOT EXISTS listings_url ON listings(url);
CREATE INDEX IF NOT EXISTS listings_item ON listings(item_id);
-- covering indexes of what searches filter, sort and count by, so that searches, counts and facets
-- read narrow index entries rather than whole listing rows: by filter (no text), and by id (the
-- listings a text search found)
CREATE INDEX IF NOT EXISTS listings_filter ON listings(verdict, marketplace, review_status, status, risk, last_seen,
  first_seen, price, tis_base, tis_no, seller, seller_id, seller_norm, key);
CREATE INDEX IF NOT EXISTS listings_by_id ON listings(id, marketplace, verdict, tis_no, seller, review_status, risk,
  last_seen, price, key);
-- the review queue's order (flagged listings by risk) as a partial index: a page of the queue reads
-- its 50 entries in order instead of sorting every flagged listing (the WHERE must stay exactly the
-- text search() writes for flagged_only: _FLAGGED_SQL)
CREATE INDEX IF NOT EXISTS listings_flagged_risk ON listings(risk DESC, last_seen DESC, key, review_status, marketplace,
  verdict, status, tis_base) WHERE verdict IN ('mislabeled','needs_review','unlicensed');
CREATE TABLE IF NOT EXISTS observations (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL, content_hash TEXT NOT NULL, first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL, times INTEGER NOT NULL DEFAULT 1, data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS observations_key_seen ON observations(key, first_seen);
CREATE TABLE IF NOT EXISTS changes (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL, at TEXT NOT NULL, field TEXT NOT NULL, old TEXT, new TEXT
);
CREATE INDEX IF NOT EXISTS changes_key ON changes(key, id);
CREATE TABLE IF NOT EXISTS verdicts (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL, at TEXT NOT NULL, verdict TEXT NOT NULL, risk INTEGER,
  tis_no TEXT, licence_no TEXT, reasons TEXT, registry_version TEXT
);
CREATE INDEX IF NOT EXISTS verdicts_key ON verdicts(key, id);
CREATE TABLE IF NOT EXISTS evidence (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
  size INTEGER, created_at TEXT NOT NULL, pruned_at TEXT
);
CREATE INDEX IF NOT EXISTS evidence_key ON evidence(key);
CREATE INDEX IF NOT EXISTS evidence_created ON evidence(created_at);
CREATE TABLE IF NOT EXISTS crawl_state (
  marketplace TEXT NOT NULL, ref TEXT NOT NULL, key TEXT, keys TEXT NOT NULL DEFAULT '[]', card_hash TEXT,
  fetched_at TEXT NOT NULL, PRIMARY KEY (marketplace, ref)
);
CREATE INDEX IF NOT EXISTS crawl_state_key ON crawl_state(key);
CREATE TABLE IF NOT EXISTS listing_images (
  key TEXT NOT NULL, idx INTEGER NOT NULL, url TEXT, sha256 TEXT NOT NULL, phash TEXT NOT NULL,
  p0 INTEGER NOT NULL, p1 INTEGER NOT NULL, p2 INTEGER NOT NULL, p3 INTEGER NOT NULL,
  width INTEGER, height INTEGER, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, PRIMARY KEY (key, idx)
);
CREATE INDEX IF NOT EXISTS listing_images_p0 ON listing_images(p0);
CREATE INDEX IF NOT EXISTS listing_images_p1 ON listing_images(p1);
CREATE INDEX IF NOT EXISTS listing_images_p2 ON listing_images(p2);
CREATE INDEX IF NOT EXISTS listing_images_p3 ON listing_images(p3);
CREATE INDEX IF NOT EXISTS listing_images_sha ON listing_images(sha256);
CREATE VIRTUAL TABLE IF NOT EXISTS search_words USING fts5(words, tokenize="unicode61 remove_diacritics 0 categories 'L* N* Co M*'");
CREATE VIRTUAL TABLE IF NOT EXISTS search_tri USING fts5(text, tokenize='trigram');
"""
# Facet counts kept up to date by triggers: how many listings have each combination of the columns
# the review queue filters and counts by. A search that filters by these columns only (the queue, its
# status tabs, the dashboard's counts) takes its total and facets from here instead of reading every
# matching listing. Two tables: `facet_counts` without the seller (a few hundred rows: total and the
# marketplace, verdict, standard and review status facets), `seller_counts` with it (about one row a
# seller and status: the seller facet, read in seller order through its covering index). Not in
# SCHEMA: trigger bodies hold ';' and the migrations run SCHEMA statement by statement. Derived data,
# rebuilt by _ensure_facet_counts when missing (a database written by an older tiswatch).
_FC_COLS = ("verdict", "marketplace", "review_status", "status", "tis_base", "tis_no")
_SC_COLS = ("seller", "verdict", "marketplace", "review_status", "status", "tis_base")
_FC_VERSION = "2"


def _fc_match(cols: tuple[str, ...], row: str) -> str:
    return " AND ".join(f"{c} IS {row}.{c}" for c in cols)


def _fc_add(table: str, cols: tuple[str, ...], row: str) -> str:
    vals = ", ".join(f"{row}.{c}" for c in cols)
    return (f"INSERT INTO {table}({', '.join(cols)}, n) SELECT {vals}, 0 WHERE NOT EXISTS "
            f"(SELECT 1 FROM {table} WHERE {_fc_match(cols, row)});\n"
            f"  UPDATE {table} SET n = n + 1 WHERE {_fc_match(cols, row)};\n")


def _fc_remove(table: str, cols: tuple[str, ...], row: str) -> str:
    return (f"UPDATE {table} SET n = n - 1 WHERE {_fc_match(cols, row)};\n"
            f"  DELETE FROM {table} WHERE {_fc_match(cols, row)} AND n <= 0;\n")


def _fc_script() -> str:
    out = []
    both = tuple(dict.fromkeys(_FC_COLS + _SC_COLS))
    for table, cols, extra in (("facet_counts", _FC_COLS, ""), ("seller_counts", _SC_COLS, ", n")):
        out.append(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{c} TEXT' for c in cols)}, n INTEGER NOT NULL);\n"
                   f"CREATE INDEX IF NOT EXISTS {table}_all ON {table}({', '.join(cols)}{extra});\n")
    add = "".join(_fc_add(t, c, "NEW") for t, c in (("facet_counts", _FC_COLS), ("seller_counts", _SC_COLS)))
    rem = "".join(_fc_remove(t, c, "OLD") for t, c in (("facet_counts", _FC_COLS), ("seller_counts", _SC_COLS)))
    out.append(f"CREATE TRIGGER IF NOT EXISTS listings_fc_insert AFTER INSERT ON listings BEGIN\n  {add}END;\n"
               f"CREATE TRIGGER IF NOT EXISTS listings_fc_delete AFTER DELETE ON listings BEGIN\n  {rem}END;\n"
               f"CREATE TRIGGER IF NOT EXISTS listings_fc_update AFTER UPDATE OF {', '.join(both)} ON listings\n"
               f"WHEN {' OR '.join(f'OLD.{c} IS NOT NEW.{c}' for c in both)} BEGIN\n  {rem}  {add}END;\n")
    return "".join(out)


FACET_COUNTS = _fc_script()

# what `get` and search hits show of a listing row (the internal columns stay in)
INTERNAL = ("id", "tis_base", "seller_norm")
_JSON_COLS = {"category": list, "attributes": dict, "images": list, "reasons": list}
_STATE_COLS = (*P.VIEW_FIELDS, "first_seen", "last_seen", "status", "delisted_at", "content_hash", *P.VERDICT_FIELDS,
               "tis_base", "seller_norm")
_FLAGGED_SQL = "(" + ",".join(f"'{v}'" for v in sorted(FLAGGED)) + ")"

# Observation data is JSON compressed with a preset dictionary of the listing's field names (they
# repeat in every row): about 2.5x smaller than plain JSON. First byte: the format.
_ZDICT = (b'{"marketplace":"shopee","item_id":"","title":"","shop_id":"","url":"https://","description":"",'
          b'"brand":null,"seller":"","seller_id":"","price":.0,"currency":"THB","sold":,"location":"",'
          b'"category":[],"attributes":{},"images":[],"observed_at":null,"expected":null}')
_FORMAT_ZDICT = b"\x01"  # this dictionary, for ever: a new dictionary needs a new format byte


# json.dumps(v, ensure_ascii=False, ...) builds a JSONEncoder per call (a third of a small value's
# cost); these are the same encoders, built once (encode() keeps no state between calls)
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_PLAIN_JSON = json.JSONEncoder(ensure_ascii=False).encode


def pack(record: dict[str, Any]) -> bytes:
    co = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _ZDICT)
    return _FORMAT_ZDICT + co.compress(_COMPACT(record).encode()) + co.flush()


def unpack(data: bytes | str) -> dict[str, Any]:
    if isinstance(data, str):  # schema v1 kept plain JSON text
        return json.loads(data)
    if data[:1] == _FORMAT_ZDICT:
        do = zlib.decompressobj(-15, _ZDICT)
        return json.loads(do.decompress(data[1:]) + do.flush())
    raise StoreError(f"observation data in an unknown format (first byte {data[:1]!r})")


def _now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | str | None) -> str:
    """A time as stored: ISO 8601 in UTC, to the second. Naive times are taken as UTC."""
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    dt = dt or _now()
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


_iso = iso


def _j(v: Any) -> str:
    return _PLAIN_JSON(v)  # json.dumps(v, ensure_ascii=False)


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def _phash_int(phash: str | int) -> int:
    v = phash if isinstance(phash, int) else int(phash, 16)
    if not 0 <= v < 1 << 64:
        raise ValueError(f"{phash!r} is not a 64-bit perceptual hash")
    return v


def _phash_parts(ph: int) -> tuple[int, int, int, int]:
    """The hash in four 16-bit parts: two hashes within 3 bits share at least one part (pigeonhole),
    so near-duplicates are found through four indexes instead of a scan."""
    return (ph >> 48) & 0xFFFF, (ph >> 32) & 0xFFFF, (ph >> 16) & 0xFFFF, ph & 0xFFFF


def _chunks(items: list[Any], n: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _script_statements(script: str) -> list[str]:
    """The statements of a script, trigger bodies kept whole (sqlite3.complete_statement)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return [x for x in out if x]


def _facets(combos: Iterable[Any]) -> dict[str, list[tuple[str, int]]]:
    """Facet counts from rows of (*FACETS, count): the most frequent 20 values of each, then by value."""
    counters: dict[str, dict[Any, int]] = {f: {} for f in FACETS}
    for r in combos:
        n = r[-1]
        for f, v in zip(FACETS, r, strict=False):
            if v is not None:
                c = counters[f]
                c[v] = c.get(v, 0) + n
    return {f: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:20] for f, c in counters.items()}


def read_version(db: sqlite3.Connection) -> int | None:
    """The schema version of an open database; None when it holds no listing store yet."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "listings" not in tables:
        return None
    if "meta" not in tables:
        return 1
    r = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(r[0]) if r else 1


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db.row_factory = sqlite3.Row
    enable_wal(db)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute("PRAGMA cache_size=-32000")
    db.execute("PRAGMA mmap_size=1073741824")  # read pages through the OS cache without a copy
    return db


class SqliteStore:
    backend = "sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self.db = connect(self.path)
            version = read_version(self.db)
            if version != SCHEMA_VERSION:
                version = self._create_or_read_version()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a usable SQLite database ({e})") from None
        if version != SCHEMA_VERSION:
            self.db.close()
            if version < SCHEMA_VERSION:
                raise SchemaError(f"{self.path} holds listing store schema v{version}; this tiswatch needs "
                                  f"v{SCHEMA_VERSION}: run `tiswatch store migrate` (it makes a backup first)")
            raise SchemaError(f"{self.path} holds listing store schema v{version}, newer than this tiswatch "
                              f"(v{SCHEMA_VERSION}): upgrade tiswatch")
        self.db.executescript(SCHEMA)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._ensure_facet_counts()
        self._ensure_words()
        self._written = 0
        self._batch = False  # begin_batch(): writes share one transaction until commit_batch()
        # in a batch, the full-text rows of the listings written: {listing id: (words, folded text)};
        # those of the write in progress are staged until its SAVEPOINT is released (see _index)
        self._fts_pending: dict[int, tuple[str, str]] = {}
        self._fts_staged: dict[int, tuple[str, str]] = {}
        self.use_facet_counts = True  # False: every search counts by reading the listings (tests compare both)

    def _create_or_read_version(self) -> int:
        """Under the database's write lock: a new database gets the whole schema in one transaction;
        otherwise its version is read again. Several crawl processes open a new data directory at once:
        without this, one could read another's half-made schema (tables there, the version row not yet)
        as an old one and stop with "run tiswatch store migrate"."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = read_version(self.db)
            if version is None:
                for stmt in _script_statements(SCHEMA):
                    self.db.execute(stmt)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                version = SCHEMA_VERSION
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return version

    def _ensure_facet_counts(self) -> None:
        """Create the facet count tables and their triggers; fill them when this database has none of
        this version yet (in one transaction with the triggers in place, so a concurrent writer cannot
        be missed)."""
        def current() -> bool:
            r = self.db.execute("SELECT value FROM meta WHERE key='facet_counts'").fetchone()
            return bool(r) and r[0] == _FC_VERSION

        if current():
            return
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if not current():
                    for t in ("insert", "delete", "update"):
                        self.db.execute(f"DROP TRIGGER IF EXISTS listings_fc_{t}")
                    self.db.execute("DROP TABLE IF EXISTS facet_counts")
                    self.db.execute("DROP TABLE IF EXISTS seller_counts")
                    for stmt in _script_statements(FACET_COUNTS):
                        self.db.execute(stmt)
                    self.rebuild_facet_counts()
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES ('facet_counts', ?)", (_FC_VERSION,))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _ensure_words(self) -> None:
        """Cut every listing's text into words again when the database's word index was cut by
        another version of listings/query.py index_words (WORDS_VERSION; a database written by an
        older tiswatch): once, about 10 s per 100,000 listings, in chunks that other writers (crawls
        opening the same store) can come between. Interrupted, it starts again at the next open."""
        def current() -> bool:
            r = self.db.execute("SELECT value FROM meta WHERE key='words_version'").fetchone()
            return bool(r) and r[0] == Q.WORDS_VERSION

        if current():
            return
        with self._lock:
            r = self.rebuild_words()
            if r["changed"]:
                log.info("%s: search words cut again (word index v%s): %d of %d listings changed", self.path,
                         Q.WORDS_VERSION, r["changed"], r["listings"])
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('words_version', ?)", (Q.WORDS_VERSION,))
            self.db.commit()

    def rebuild_words(self, progress: Callable[[int], None] | None = None, chunk: int = 2000) -> dict[str, int]:
        """Cut every listing's search text into words again (listings/query.py index_words) and
        rewrite the rows whose words changed: {"listings": read, "changed": rewritten}. In
        transactions of `chunk` listings each (a listing written meanwhile by another process was cut
        the new way by it), or inside the caller's transaction when there is one."""
        n = changed = 0
        last = -1
        with self._lock:
            own = not self.db.in_transaction
            while True:
                if own:
                    self.db.execute("BEGIN IMMEDIATE")
                try:
                    rows = self.db.execute(
                        "SELECT l.id, l.title, l.brand, l.seller, l.description, w.words FROM listings l "
                        "LEFT JOIN search_words w ON w.rowid = l.id WHERE l.id > ? ORDER BY l.id LIMIT ?", (last, chunk)).fetchall()
                    new = []
                    for lid, title, brand, seller, description, old in rows:
                        words = Q.search_words({"title": title, "brand": brand, "seller": seller, "description": description})
                        if words != old:
                            new.append((lid, words))
                    cur = self.db.cursor()
                    cur.executemany("DELETE FROM search_words WHERE rowid=?", [(lid,) for lid, _ in new])
                    cur.executemany("INSERT INTO search_words(rowid, words) VALUES (?,?)", new)
                    if own:
                        self.db.execute("COMMIT")
                except BaseException:
                    if own:
                        self.db.execute("ROLLBACK")
                    raise
                n += len(rows)
                changed += len(new)
                if progress is not None and rows:
                    progress(n)
                if len(rows) < chunk:
                    return {"listings": n, "changed": changed}
                last = rows[-1][0]

    def rebuild_facet_counts(self) -> int:
        """Recount the facet count tables from the listings (inside the caller's transaction)."""
        n = 0
        for table, cols in (("facet_counts", _FC_COLS), ("seller_counts", _SC_COLS)):
            c = ", ".join(cols)
            self.db.execute(f"DELETE FROM {table}")
            n += self.db.execute(f"INSERT INTO {table}({c}, n) SELECT {c}, count(*) FROM listings GROUP BY {c}").rowcount
        return n

    def close(self) -> None:
        try:
            self.db.execute("PRAGMA optimize")  # keeps the planner's statistics fresh (SQLite's advice)
        except sqlite3.Error:
            pass
        self.db.close()

    def flush(self) -> None:
        """Writes are visible as soon as they commit (see begin_batch for a crawl's batched writes)."""

    # ---- batched writes (a crawl) -----------------------------------------------------------------
    def begin_batch(self) -> None:
        """From now on writes share one transaction, opened by the first of them and committed by
        commit_batch(): a crawl stores hundreds of listings per commit instead of one (each commit
        costs a WAL write, and the full-text indexes merge a new segment per commit). Every write
        method keeps its own all-or-nothing behaviour inside the batch (a SAVEPOINT). This
        connection reads its own uncommitted writes; other connections see them at commit_batch().
        The write lock is held from the first write to the commit, so the caller commits often
        (crawlers/batch.py: every N listings or T seconds). What is not committed when the process
        dies is lost: the caller must be able to do it again (the crawl re-fetches those pages)."""
        with self._lock:
            self._batch = True

    def commit_batch(self) -> None:
        """Commit the batch's open transaction, if any; batching goes on."""
        with self._lock:
            if self.db.in_transaction:
                self._write_fts()
                self.db.execute("COMMIT")

    def _write_fts(self) -> None:
        """Write the batch's full-text rows (see _index), inside its transaction and outside any
        SAVEPOINT. Kept until written: a failed write is tried again at the next commit (the same
        rows deleted and inserted again)."""
        if not self._fts_pending:
            return
        rows = list(self._fts_pending.items())
        ids = [(lid,) for lid, _ in rows]
        cur = self.db.cursor()
        cur.executemany("DELETE FROM search_words WHERE rowid=?", ids)
        cur.executemany("DELETE FROM search_tri WHERE rowid=?", ids)
        cur.executemany("INSERT INTO search_words(rowid, words) VALUES (?,?)", [(lid, w) for lid, (w, _) in rows])
        cur.executemany("INSERT INTO search_tri(rowid, text) VALUES (?,?)", [(lid, f) for lid, (_, f) in rows])
        self._fts_pending = {}

    def end_batch(self) -> None:
        """Commit and go back to one transaction per write."""
        with self._lock:
            self.commit_batch()
            self._batch = False

    def _open(self) -> None:
        """In a batch: open its transaction when no write has yet."""
        if self._batch and not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")

    def _begin(self, cur: sqlite3.Cursor) -> None:
        if self._batch:
            self._open()
            cur.execute("SAVEPOINT write")
        else:
            cur.execute("BEGIN IMMEDIATE")

    def _commit(self, cur: sqlite3.Cursor) -> None:
        cur.execute("RELEASE write" if self._batch else "COMMIT")
        if self._fts_staged:
            self._fts_pending.update(self._fts_staged)
            self._fts_staged = {}

    def _rollback(self, cur: sqlite3.Cursor) -> None:
        self._fts_staged = {}
        if self._batch:
            cur.execute("ROLLBACK TO write")
            cur.execute("RELEASE write")
        else:
            cur.execute("ROLLBACK")

    # ---- writing -------------------------------------------------------------------------------
    def ingest(self, listing: Listing, verdict: Any | None = None, observed_at: datetime | None = None) -> IngestResult:
        """Store one view of a listing and its verdict (rules: listings/plan.py), in one transaction:
        the per-item path (a crawl's pipeline); `ingest_many` is the bulk path with the same results."""
        with self._lock:
            cur = self.db.cursor()
            self._begin(cur)
            try:
                r = self._ingest_one(cur, listing, verdict, _iso(observed_at or listing.observed_at))
                self._commit(cur)
            except BaseException:
                self._rollback(cur)
                raise
        return r

    def ingest_many(self, items: Iterable[IngestItem], batch: int = 2000) -> list[IngestResult]:
        """The bulk path: sightings and delistings in transactions of `batch` items, each read with a
        few queries and written with executemany (listings/sqlite_bulk.py); the same stored state,
        history and results as `ingest` and `delist` one by one. A crawl writing meanwhile waits for
        one batch (about a second of CPU for 2,000 items), well within the 30 s busy timeout."""
        out: list[IngestResult] = []
        part: list[IngestItem] = []
        for it in items:
            part.append(it)
            if len(part) >= batch:
                out += self._ingest_batch(part)
                part = []
        if part:
            out += self._ingest_batch(part)
        self._written += len(out)
        if self._written >= 200_000:  # after big loads, fresh statistics for the query planner
            self._written = 0
            with self._lock:
                self.db.execute("PRAGMA optimize")
        return out

    def _ingest_batch(self, items: list[IngestItem]) -> list[IngestResult]:
        from listings.sqlite_bulk import Batch

        with self._lock, gc_paused():
            self._write_fts()  # the batch's pending full-text rows first: Batch writes its own at once
            cur = self.db.cursor()
            self._begin(cur)
            try:
                out = Batch(self, cur).run(items)
                self._commit(cur)
            except BaseException:
                self._rollback(cur)
                raise
        return out

    def _runs(self, cur: sqlite3.Cursor, key: str, all_runs: bool) -> list[P.Run]:
        sql = "SELECT id, content_hash, first_seen, last_seen, times FROM observations WHERE key=? ORDER BY first_seen DESC, id DESC"
        rows = cur.execute(sql if all_runs else sql + " LIMIT 1", (key,)).fetchall()
        return [P.Run(r["id"], r["content_hash"], r["first_seen"], r["last_seen"], r["times"], r["id"]) for r in rows]

    def _ingest_one(self, cur: sqlite3.Cursor, listing: Listing, verdict: Any | None, at: str) -> IngestResult:
        key = listing.key
        rec, h = listing.view()  # record() and content_hash() with one serialisation
        old = cur.execute("SELECT * FROM listings WHERE key=?", (key,)).fetchone()
        prior = self._row(old, internal=True) if old is not None else None
        runs = self._runs(cur, key, False) if prior is not None else []
        if runs and P.needs_all_runs(runs[0], at):
            runs = self._runs(cur, key, True)
        pl = P.plan_ingest(prior, runs, rec, h, at, verdict, key)
        reindex = prior is None or Q.listing_text(prior) != Q.listing_text(rec)
        self._write_plan(cur, key, pl, rec, old["id"] if old is not None else None, reindex)
        return pl.result

    def _write_plan(self, cur: sqlite3.Cursor, key: str, pl: P.Plan, rec: dict[str, Any] | None, lid: int | None,
                    reindex: bool = True) -> None:
        o = pl.obs
        if o.action == "insert" and rec is not None:
            cur.execute("INSERT INTO observations(key, content_hash, first_seen, last_seen, times, data) VALUES (?,?,?,?,?,?)",
                        (key, o.content_hash, o.first_seen, o.last_seen, o.times, pack(rec)))
        elif o.action in ("extend", "backdate"):
            cur.execute("UPDATE observations SET first_seen=?, last_seen=?, times=? WHERE id=?", (o.first_seen, o.last_seen, o.times, o.ref))
        if pl.state:
            vals = {k: (_j(v) if k in _JSON_COLS or k == "detail" else v) for k, v in pl.state.items()}
            if lid is None:
                cols = ["key", *vals]
                cur.execute(f"INSERT INTO listings({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", [key, *vals.values()])
                lid = cur.lastrowid
            else:
                cur.execute(f"UPDATE listings SET {', '.join(f'{k}=?' for k in vals)} WHERE id=?", [*vals.values(), lid])
            if rec is not None and "content_hash" in pl.state and reindex:  # the searchable text changed
                self._index(cur, lid, rec)
        if pl.verdict_row is not None:
            r = pl.verdict_row
            cur.execute("INSERT INTO verdicts(key, at, verdict, risk, tis_no, licence_no, reasons, registry_version) VALUES (?,?,?,?,?,?,?,?)",
                        (key, r["at"], r["verdict"], r["risk"], r["tis_no"], r["licence_no"], _j(r["reasons"]), r["registry_version"]))
        for name, a, b in pl.changes:
            cur.execute("INSERT INTO changes(key, at, field, old, new) VALUES (?,?,?,?,?)", (key, pl.at, name, a, b))

    def _index(self, cur: sqlite3.Cursor, lid: int, rec: dict[str, Any]) -> None:
        """The listing's full-text rows. In a batch they are written at its commit (_write_fts), all
        at once: FTS5 writes the rows it holds in memory to a new segment of its index at every
        SAVEPOINT and RELEASE, so rows written inside each write's SAVEPOINT cost a segment (and the
        merges that follow) per listing, three times the CPU of the rows themselves. This connection's
        searches write them first (search), so it still reads its own uncommitted writes."""
        words, folded = Q.search_fields(rec)
        if self._batch:
            self._fts_staged[lid] = (words, folded)
            return
        cur.execute("DELETE FROM search_words WHERE rowid=?", (lid,))
        cur.execute("DELETE FROM search_tri WHERE rowid=?", (lid,))
        cur.execute("INSERT INTO search_words(rowid, words) VALUES (?,?)", (lid, words))
        cur.execute("INSERT INTO search_tri(rowid, text) VALUES (?,?)", (lid, folded))

    def record_verdict(self, key: str, verdict: Any, at: datetime | None = None) -> IngestResult | None:
        when = _iso(at)
        with self._lock:
            cur = self.db.cursor()
            self._begin(cur)
            try:
                old = cur.execute("SELECT * FROM listings WHERE key=?", (key,)).fetchone()
                if old is None:
                    self._commit(cur)
                    return None
                pl = P.plan_verdict(self._row(old, internal=True), verdict, when, key)
                self._write_plan(cur, key, pl, None, old["id"])
                self._commit(cur)
            except BaseException:
                self._rollback(cur)
                raise
        return pl.result

    # ---- re-checks and revisits (the scheduler) ------------------------------------------------
    def affected_keys(self, bases: Iterable[str], licence_nos: Iterable[str]) -> list[str]:
        b = json.dumps(sorted(set(bases)), ensure_ascii=False)
        lic = json.dumps(sorted(set(licence_nos)), ensure_ascii=False)
        # the main standard and the matched licence by index; from the verdict detail, the standards
        # that apply with the main one (listings with several only; a base matches its editions) and
        # the claimed licence numbers (listings whose detail names a licence claim only)
        rows = self._q(
            "SELECT key FROM listings WHERE licence_no IN (SELECT value FROM json_each(:l))"
            " UNION SELECT key FROM listings WHERE tis_base IN (SELECT value FROM json_each(:b))"
            " UNION SELECT l.key FROM listings l WHERE json_array_length(l.detail, '$.standards') > 1"
            "   AND EXISTS (SELECT 1 FROM json_each(l.detail, '$.standards') s, json_each(:b) x"
            "               WHERE s.value = x.value OR s.value LIKE x.value || '-%')"
            " UNION SELECT l.key FROM listings l WHERE instr(l.detail, '\"licence\"') > 0"
            "   AND EXISTS (SELECT 1 FROM json_each(l.detail, '$.claims') c WHERE json_extract(c.value, '$.kind') = 'licence'"
            "               AND json_extract(c.value, '$.value') IN (SELECT value FROM json_each(:l)))"
            " ORDER BY 1", {"b": b, "l": lic})
        return [r[0] for r in rows]

    def changed_keys(self, marketplace: str, since: datetime) -> set[str]:
        rows = self._q("SELECT DISTINCT c.key FROM changes c JOIN listings l ON l.key = c.key"
                       " WHERE l.marketplace=? AND c.at >= ? AND c.field NOT IN ('stock', 'delisted')",
                       (marketplace, _iso(since)))
        return {r[0] for r in rows}

    def mark_delisted(self, marketplace: str, seen: set[str], since: datetime, at: datetime | None = None) -> list[str]:
        """Listings of a marketplace last seen before `since` (a crawl that saw everything started then)
        and not in `seen` are marked delisted, with a change event. Returns their keys."""
        when = _iso(at)
        with self._lock:
            rows = self.db.execute("SELECT key FROM listings WHERE marketplace=? AND status='active' AND last_seen < ?",
                                   (marketplace, _iso(since))).fetchall()
            gone = [r["key"] for r in rows if r["key"] not in seen]
            cur = self.db.cursor()
            self._begin(cur)
            try:
                done = [k for k in gone if self._delist(cur, k, when) is not None]
                self._commit(cur)
            except BaseException:
                self._rollback(cur)
                raise
        return done

    def _delist(self, cur: sqlite3.Cursor, key: str, when: str) -> str | None:
        r = cur.execute("SELECT status, last_seen FROM listings WHERE key=?", (key,)).fetchone()
        d = P.plan_delist(dict(r) if r is not None else None, when)
        if d is None:
            return None
        cur.execute("UPDATE listings SET status=?, delisted_at=? WHERE key=?", (d[0]["status"], d[0]["delisted_at"], key))
        cur.execute("INSERT INTO changes(key, at, field, old, new) VALUES (?,?,?,?,?)", (key, when, *d[1]))
        return r["last_seen"]

    # ---- crawl bookkeeping ---------------------------------------------------------------------
    def fetch_states(self, marketplace: str, refs: Iterable[str]) -> dict[str, FetchState]:
        refs = list(dict.fromkeys(refs))
        out: dict[str, FetchState] = {}
        with self._lock:
            for part in _chunks(refs):
                marks = ",".join("?" * len(part))
                for r in self.db.execute(f"SELECT ref, keys, card_hash, fetched_at FROM crawl_state WHERE marketplace=? AND ref IN ({marks})",
                                         [marketplace, *part]):
                    out[r["ref"]] = FetchState(r["ref"], json.loads(r["keys"]), r["card_hash"], _dt(r["fetched_at"]))
                missing = [x for x in part if x not in out]
                if missing:
                    marks = ",".join("?" * len(missing))
                    for r in self.db.execute(f"SELECT item_id, key FROM listings WHERE marketplace=? AND item_id IN ({marks})",
                                             [marketplace, *missing]):
                        out[r["item_id"]] = FetchState(r["item_id"], [r["key"]])
            keys = list({s.keys[0] for s in out.values() if s.keys})
            info: dict[str, sqlite3.Row] = {}
            for part in _chunks(keys):
                marks = ",".join("?" * len(part))
                for r in self.db.execute(f"SELECT key, status, last_seen, verdict, content_hash,"
                                         f" EXISTS(SELECT 1 FROM evidence e WHERE e.key=listings.key AND e.pruned_at IS NULL) AS ev"
                                         f" FROM listings WHERE key IN ({marks})", part):
                    info[r["key"]] = r
        for s in out.values():
            r = info.get(s.keys[0]) if s.keys else None
            if r is not None:
                s.status, s.last_seen, s.verdict = r["status"], _dt(r["last_seen"]), r["verdict"]
                s.content_hash, s.has_evidence = r["content_hash"], bool(r["ev"])
        return out

    def record_fetch(self, marketplace: str, ref: str, keys: list[str], card_hash: str | None, at: datetime) -> None:
        with self._lock:
            self._open()
            self.db.execute("INSERT OR REPLACE INTO crawl_state(marketplace, ref, key, keys, card_hash, fetched_at) VALUES (?,?,?,?,?,?)",
                            (marketplace, ref, keys[0] if keys else None, _j(list(keys)), card_hash, _iso(at)))

    def touch(self, keys: Iterable[str], at: datetime) -> int:
        when = _iso(at)
        n = 0
        with self._lock:
            cur = self.db.cursor()
            self._begin(cur)
            try:
                for k in dict.fromkeys(keys):
                    c = cur.execute("UPDATE listings SET last_seen=? WHERE key=? AND status='active' AND last_seen < ?", (when, k, when))
                    if c.rowcount:
                        n += 1
                        cur.execute("UPDATE observations SET last_seen=?, times=times+1 WHERE id=(SELECT id FROM observations"
                                    " WHERE key=? ORDER BY first_seen DESC, id DESC LIMIT 1) AND last_seen < ?", (when, k, when))
                self._commit(cur)
            except BaseException:
                self._rollback(cur)
                raise
        return n

    def delist(self, key: str, at: datetime) -> datetime | None:
        with self._lock:
            cur = self.db.cursor()
            self._begin(cur)
            try:
                last = self._delist(cur, key, _iso(at))
                self._commit(cur)
            except BaseException:
                self._rollback(cur)
                raise
        return _dt(last)

    def due_refetch(self, marketplace: str, before: datetime, flagged_before: datetime, unseen_since: datetime,
                    limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT l.key, l.item_id, l.shop_id, l.url, l.verdict, coalesce(cs.ref, l.item_id) AS ref, cs.card_hash,"
                " coalesce(cs.fetched_at, l.last_seen) AS fetched FROM listings l"
                " LEFT JOIN crawl_state cs ON cs.marketplace=l.marketplace AND cs.key=l.key"
                " WHERE l.marketplace=? AND l.status='active' AND l.last_seen < ?"
                f" AND coalesce(cs.fetched_at, l.last_seen) < CASE WHEN l.verdict IN {_FLAGGED_SQL} THEN ? ELSE ? END"
                " ORDER BY fetched, l.key LIMIT ?",
                (marketplace, _iso(unseen_since), _iso(flagged_before), _iso(before), max(0, limit))).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for r in rows:  # a listing found under two refs (a shop page that moved) is revisited once
            out.setdefault(r["key"], dict(r))
        return list(out.values())

    # ---- the listings' pictures (perceptual hashes: re-used photos) -----------------------------
    def add_images(self, key: str, images: list[dict[str, Any]], seen_at: datetime | None = None) -> None:
        at = _iso(seen_at)
        rows = []
        for im in images:
            ph = _phash_int(im["phash"])
            rows.append((key, int(im["index"]), im.get("url"), im["sha256"], f"{ph:016x}", *_phash_parts(ph),
                         im.get("width"), im.get("height"), at, at))
        with self._lock:
            cur = self.db.cursor()
            self._begin(cur)
            try:
                old = {(r["idx"], r["sha256"]): r["first_seen"]
                       for r in cur.execute("SELECT idx, sha256, first_seen FROM listing_images WHERE key=?", (key,))}
                cur.execute("DELETE FROM listing_images WHERE key=?", (key,))
                for r in rows:
                    first = min(old.get((r[1], r[3]), at), at)
                    cur.execute("INSERT INTO listing_images(key, idx, url, sha256, phash, p0, p1, p2, p3, width, height,"
                                " first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (*r[:11], first, r[12]))
                self._commit(cur)
            except BaseException:
                self._rollback(cur)
                raise

    def _load_images(self, cur: sqlite3.Cursor, rec: dict[str, Any]) -> None:
        """A dumped listing's pictures, as they were (their first and last sightings kept)."""
        key = rec["key"]
        cur.execute("DELETE FROM listing_images WHERE key=?", (key,))
        for im in rec.get("images") or []:
            ph = _phash_int(im["phash"])
            cur.execute("INSERT INTO listing_images(key, idx, url, sha256, phash, p0, p1, p2, p3, width, height, first_seen,"
                        " last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (key, int(im["index"]), im.get("url"), im["sha256"], f"{ph:016x}", *_phash_parts(ph), im.get("width"),
                         im.get("height"), im["first_seen"], im["last_seen"]))

    def images_of(self, key: str) -> list[dict[str, Any]]:
        return [{"index": r["idx"], "url": r["url"], "sha256": r["sha256"], "phash": r["phash"], "width": r["width"],
                 "height": r["height"], "first_seen": r["first_seen"], "last_seen": r["last_seen"]}
                for r in self.db.execute("SELECT * FROM listing_images WHERE key=? ORDER BY idx", (key,))]

    def find_images(self, phash: str, max_distance: int = 4, limit: int = 100, exclude_key: str | None = None) -> list[dict[str, Any]]:
        ph = _phash_int(phash)
        parts = _phash_parts(ph)
        rows = self.db.execute(
            "SELECT i.key, i.idx, i.url, i.sha256, i.phash, l.marketplace, l.item_id, l.title, l.seller, l.seller_id,"
            " l.verdict, l.risk, l.url AS listing_url, l.status FROM listing_images i JOIN listings l ON l.key=i.key"
            " WHERE (i.p0=? OR i.p1=? OR i.p2=? OR i.p3=?) LIMIT 20000", parts).fetchall()
        out = []
        for r in rows:
            if r["key"] == exclude_key:
                continue
            dist = (int(r["phash"], 16) ^ ph).bit_count()
            if dist <= max_distance:
                out.append({"key": r["key"], "index": r["idx"], "image_url": r["url"], "sha256": r["sha256"],
                            "phash": r["phash"], "distance": dist, "marketplace": r["marketplace"], "item_id": r["item_id"],
                            "title": r["title"], "seller": r["seller"], "seller_id": r["seller_id"], "verdict": r["verdict"],
                            "risk": r["risk"], "url": r["listing_url"], "status": r["status"]})
        out.sort(key=lambda d: (d["distance"], d["key"], d["index"]))
        return out[:limit]

    def same_images(self, key: str, max_distance: int = 4, limit: int = 100) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[tuple[str, int]] = set()
        for im in self.images_of(key):
            for hit in self.find_images(im["phash"], max_distance, limit, exclude_key=key):
                if (hit["key"], hit["index"]) in seen:
                    continue
                seen.add((hit["key"], hit["index"]))
                out.append({**hit, "image": im["index"]})
        out.sort(key=lambda d: (d["distance"], d["key"], d["index"]))
        return out[:limit]

    def add_evidence(self, key: str, kind: str, path: str, sha256: str, size: int, created_at: datetime | None = None) -> None:
        with self._lock:
            self._open()
            self.db.execute("INSERT INTO evidence(key, kind, path, sha256, size, created_at) VALUES (?,?,?,?,?,?)",
                            (key, kind, path, sha256, size, _iso(created_at)))

    def set_review_status(self, key: str, status: str) -> None:
        if status not in REVIEW_STATUSES:
            raise ValueError(f"{status!r} is not a review status ({', '.join(REVIEW_STATUSES)})")
        with self._lock:
            self._open()
            n = self.db.execute("UPDATE listings SET review_status=? WHERE key=?", (status, key)).rowcount
        if not n:
            raise KeyError(key)

    # ---- reading -------------------------------------------------------------------------------
    @staticmethod
    def _row(r: sqlite3.Row, internal: bool = False) -> dict[str, Any]:
        d = dict(r)
        for k, empty in _JSON_COLS.items():
            d[k] = json.loads(d[k]) if d.get(k) else empty()
        d["detail"] = json.loads(d["detail"]) if d.get("detail") else ({} if not internal else None)
        if not internal:
            for k in INTERNAL:
                d.pop(k, None)
        return d

    def _q(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def get(self, key: str) -> dict[str, Any] | None:
        r = self._q("SELECT * FROM listings WHERE key=?", (key,))
        return self._row(r[0]) if r else None

    def history(self, key: str) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            q = self.db.execute
            return {
                "observations": [{"content_hash": r["content_hash"], "first_seen": r["first_seen"], "last_seen": r["last_seen"],
                                  "times": r["times"], "data": unpack(r["data"])} for r in
                                 q("SELECT content_hash, first_seen, last_seen, times, data FROM observations WHERE key=?"
                                   " ORDER BY first_seen, id", (key,))],
                "changes": [dict(r) for r in q("SELECT at, field, old, new FROM changes WHERE key=? ORDER BY at, id", (key,))],
                "verdicts": [{**dict(r), "reasons": json.loads(r["reasons"] or "[]")} for r in
                             q("SELECT at, verdict, risk, tis_no, licence_no, reasons, registry_version FROM verdicts"
                               " WHERE key=? ORDER BY at, id", (key,))],
            }

    _PROFILE = ("SELECT marketplace, seller_id, max(seller) AS name, max(shop_id) AS shop_id, count(*) AS listings,"
                " min(first_seen) AS first_seen, max(last_seen) AS last_seen,"
                f" sum(verdict IN {_FLAGGED_SQL}) AS flagged, sum(status='delisted') AS delisted,"
                " sum(status='active') AS active FROM listings")

    @staticmethod
    def _profile(r: sqlite3.Row) -> dict[str, Any]:
        d = dict(r)
        d["flagged"] = d["flagged"] or 0
        d["flagged_share"] = round(d["flagged"] / d["listings"], 3) if d["listings"] else 0.0
        return d

    def seller(self, marketplace: str, seller_id: str) -> dict[str, Any] | None:
        r = self._q(self._PROFILE + " WHERE marketplace=? AND seller_id=? GROUP BY marketplace, seller_id", (marketplace, seller_id))
        if not r:
            return None
        d = self._profile(r[0])
        d["by_verdict"] = dict(self._q("SELECT verdict, count(*) FROM listings WHERE marketplace=? AND seller_id=? AND verdict IS NOT NULL"
                                       " GROUP BY verdict ORDER BY verdict", (marketplace, seller_id)))
        d["names"] = [x[0] for x in self._q("SELECT DISTINCT seller FROM listings WHERE marketplace=? AND seller_id=? AND seller IS NOT NULL"
                                            " ORDER BY seller", (marketplace, seller_id))]
        d["items"] = [self._row(x) for x in self._q(
            "SELECT * FROM listings WHERE marketplace=? AND seller_id=? ORDER BY risk DESC, last_seen DESC, key LIMIT 500",
            (marketplace, seller_id))]
        return d

    def sellers(self, text: str, limit: int = 20) -> list[dict[str, Any]]:
        t = (text or "").strip()
        if not t:
            return []
        mp, _, sid = t.partition(":")
        rows = self._q(self._PROFILE + " WHERE seller_id IS NOT NULL AND (seller_id=? OR shop_id=? OR (marketplace=? AND seller_id=?)"
                       " OR seller_norm LIKE ? ESCAPE '\\') GROUP BY marketplace, seller_id"
                       " ORDER BY flagged DESC, listings DESC, marketplace, seller_id LIMIT ?",
                       (t, t, mp, sid, "%" + _escape_like(Q.fold(t)) + "%", max(1, min(limit, 500))))
        return [self._profile(r) for r in rows]

    def seller_history(self, marketplace: str, seller_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._q(
            "SELECT * FROM ("
            " SELECT l.first_seen AS at, l.key, l.title, 'listed' AS kind, NULL AS old, l.url AS new FROM listings l"
            "  WHERE l.marketplace=? AND l.seller_id=?"
            " UNION ALL SELECT c.at, c.key, l.title, c.field, c.old, c.new FROM changes c JOIN listings l ON l.key=c.key"
            "  WHERE l.marketplace=? AND l.seller_id=?"
            " UNION ALL SELECT v.at, v.key, l.title, 'verdict', NULL, v.verdict || ' (' || coalesce(v.risk, '') || ')'"
            "  FROM verdicts v JOIN listings l ON l.key=v.key WHERE l.marketplace=? AND l.seller_id=?"
            ") ORDER BY at, key LIMIT ?", (marketplace, seller_id) * 3 + (max(1, limit),))
        return [dict(r) for r in rows]

    def resolve(self, ref: str) -> list[str]:
        ref = (ref or "").strip()
        if not ref:
            return []
        if self._q("SELECT 1 FROM listings WHERE key=?", (ref,)):
            return [ref]
        rows = self._q("SELECT key FROM listings WHERE url=? OR item_id=? ORDER BY key LIMIT 50", (ref, ref))
        return [r[0] for r in rows]

    def evidence(self, key: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._q("SELECT kind, path, sha256, size, created_at, pruned_at FROM evidence WHERE key=? ORDER BY id", (key,))]

    def counts(self) -> dict[str, Any]:
        with self._lock:
            q = self.db.execute
            return {
                "listings": q("SELECT count(*) FROM listings").fetchone()[0],
                "observations": q("SELECT count(*) FROM observations").fetchone()[0],
                "by_marketplace": dict(q("SELECT marketplace, count(*) FROM listings GROUP BY marketplace").fetchall()),
                "by_verdict": dict(q("SELECT verdict, count(*) FROM listings WHERE verdict IS NOT NULL GROUP BY verdict").fetchall()),
                "delisted": q("SELECT count(*) FROM listings WHERE status='delisted'").fetchone()[0],
            }

    def info(self) -> dict[str, Any]:
        files = [self.path, Path(str(self.path) + "-wal")]
        with self._lock:
            q = self.db.execute
            n = {t: q(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("listings", "observations", "changes", "verdicts", "evidence")}
        return {"backend": "sqlite", "location": str(self.path), "schema_version": SCHEMA_VERSION, "counts": n,
                "bytes": sum(f.stat().st_size for f in files if f.exists())}

    # ---- search --------------------------------------------------------------------------------
    def _where(self, q: SearchQuery, terms: list[str]) -> tuple[list[str], list[Any], list[str], list[Any]]:
        """(conditions, params, word-match score expressions, their params)."""
        where: list[str] = []
        params: list[Any] = []
        score: list[str] = []
        sparams: list[Any] = []
        for t in terms:
            words = Q.fts_phrase(Q.term_words(t))
            sub = "SELECT rowid FROM search_words WHERE search_words MATCH ?"
            p: list[Any] = [words]
            if Q.substring_ok(t):
                sub += " UNION SELECT rowid FROM search_tri WHERE search_tri MATCH ?"
                p.append(Q.fts_phrase([t]))
            where.append(f"id IN ({sub})")
            params += p
            score.append("(id IN (SELECT rowid FROM search_words WHERE search_words MATCH ?))")
            sparams.append(words)
        for col, val in (("marketplace", q.marketplace), ("verdict", q.verdict), ("review_status", q.review_status),
                         ("status", q.status)):
            if val:
                where.append(f"{col}=?")
                params.append(val)
        if q.tis:
            where.append("tis_base=?")
            params.append(P.tis_base(q.tis))
        if q.seller:
            where.append("(seller_id=? OR seller_norm LIKE ? ESCAPE '\\')")
            params += [q.seller, "%" + _escape_like(Q.fold(q.seller)) + "%"]
        if q.flagged_only:
            where.append(f"verdict IN {_FLAGGED_SQL}")
        if q.date_from:
            where.append("last_seen >= ?")
            params.append(_iso(q.date_from))
        if q.date_to:
            where.append("first_seen <= ?")
            params.append(_iso(q.date_to))
        if q.flagged_before:
            where.append("flagged_at <= ?")
            params.append(_iso(q.flagged_before))
        if q.price_min is not None:
            where.append("price >= ?")
            params.append(q.price_min)
        if q.price_max is not None:
            where.append("price <= ?")
            params.append(q.price_max)
        return where, params, score, sparams

    def _counted(self, q: SearchQuery) -> bool:
        """Whether the facet count table answers this query's total and facets: it filters by none but
        the table's columns (no text, seller, dates, prices or flag age)."""
        return (self.use_facet_counts and not q.seller and q.date_from is None and q.date_to is None
                and q.price_min is None and q.price_max is None and q.flagged_before is None)

    def _facet_combos(self, scan: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Facet counts of the listings `scan` reads, as rows of (*FACETS, count): one GROUP BY of the
        few-valued facets (its counts add up to the total; seller None) and one of the seller (the
        others None). Grouping by all five at once makes about one group a listing: a sort of every
        match, twice the time."""
        small = [f for f in FACETS if f != "seller"]
        cols = ", ".join(small)
        out: list[tuple[Any, ...]] = []
        for r in self.db.execute(f"SELECT {cols}, count(*) FROM {scan} GROUP BY {cols}", params):
            got = dict(zip(small, r, strict=False))
            out.append((*(got.get(f) for f in FACETS), r[-1]))
        i = FACETS.index("seller")
        for r in self.db.execute(f"SELECT seller, count(*) FROM {scan} AND seller IS NOT NULL GROUP BY seller", params):
            out.append((*([None] * i), r[0], *([None] * (len(FACETS) - i - 1)), r[1]))
        return out

    def search(self, q: SearchQuery) -> SearchResult:
        if self._fts_pending:
            with self._lock:
                self._write_fts()
        q = Q.normalized(q)
        terms = Q.terms(q.text)
        if Q.fold(q.text).strip() and not terms:
            return SearchResult(0, [], {f: [] for f in FACETS} if q.facets else {}, [])
        where, params, score, sparams = self._where(q, terms)
        sql_where = " AND ".join(where) or "1=1"
        limit, offset = max(0, min(q.limit, 1000)), max(0, q.offset)
        order = {"risk": "risk DESC, last_seen DESC", "recent": "last_seen DESC", "price": "price IS NULL, price"}.get(q.order)
        oparams: list[Any] = []
        if order is None:
            order = ("(" + " + ".join(score) + ") DESC, " if score else "") + "risk DESC, last_seen DESC"
            oparams = sparams
        from_counts = not terms and self._counted(q)
        with self._lock:
            if terms:
                # the matches once into a temporary table; the count, the facets and the page read them
                # through the covering index by id (listings_by_id), not the listing rows
                self.db.execute("CREATE TEMP TABLE IF NOT EXISTS _hits(id INTEGER PRIMARY KEY)")
                self.db.execute("DELETE FROM _hits")
                total = self.db.execute(f"INSERT INTO _hits SELECT id FROM listings WHERE {sql_where}", params).rowcount
                src, sparams2 = "listings WHERE id IN (SELECT id FROM _hits)", []
                scan = src
            else:
                src, sparams2 = f"listings WHERE {sql_where}", params
                # counts and facets read the covering filter index (the planner might pick the partial
                # queue index, which lacks the facet columns)
                scan = f"listings INDEXED BY listings_filter WHERE {sql_where}"
            combos: list[Any] = []
            if from_counts:
                small = [f for f in FACETS if f != "seller"]
                for r in self.db.execute(f"SELECT {', '.join(small)}, n FROM facet_counts WHERE {sql_where}", params):
                    got = dict(zip(small, r, strict=False))
                    combos.append((*(got.get(f) for f in FACETS), r[-1]))
                total = sum(r[-1] for r in combos)
            elif not terms and q.facets:
                combos = self._facet_combos(scan, sparams2)  # the total too: no count(*) pass
                total = sum(r[-1] for r in combos if r[FACETS.index("seller")] is None)
            elif not terms:
                total = self.db.execute(f"SELECT count(*) FROM {scan}", sparams2).fetchone()[0]
            page_src = src
            if not terms and q.flagged_only and q.order in ("risk", "relevance") and not q.seller:
                # the queue: walk the partial index in its order, stopping at the page, instead of
                # sorting every flagged listing (the planner, without statistics, would sort); its
                # columns cover the queue's filters and dates, a price is read from the row. Not with a
                # seller: few listings match one, so walking in risk order would read most of the index.
                page_src = f"listings INDEXED BY listings_flagged_risk WHERE {sql_where}"
            ids = [r[0] for r in self.db.execute(f"SELECT id FROM {page_src} ORDER BY {order}, key LIMIT ? OFFSET ?",
                                                 [*sparams2, *oparams, limit, offset])] if limit and total else []
            rows = {r["id"]: r for r in self.db.execute(
                f"SELECT * FROM listings WHERE id IN ({','.join('?' * len(ids))})", ids)} if ids else {}
            facets: dict[str, list[tuple[str, int]]] = {}
            if q.facets:
                if terms and total:
                    combos = self._facet_combos(scan, sparams2)
                facets = _facets(combos)
                if from_counts:  # the seller facet: in seller order through seller_counts_all, top 20 kept
                    facets["seller"] = [(r[0], r[1]) for r in self.db.execute(
                        f"SELECT seller, sum(n) AS c FROM seller_counts WHERE seller IS NOT NULL AND {sql_where} "
                        "GROUP BY seller ORDER BY c DESC, seller LIMIT 20", params)]
        hits = [self._row(rows[i]) for i in ids]
        if terms:
            for h in hits:
                h["why"] = Q.explain(h, terms)
                h["matched"] = [w["term"] for w in h["why"]]
        return SearchResult(total, hits, facets, terms)

    # ---- export, reindex, retention ------------------------------------------------------------
    def export(self) -> Iterator[dict[str, Any]]:
        """Every listing with its history and evidence, by key."""
        for r in self._iter("SELECT * FROM listings ORDER BY key"):
            d = self._row(r)
            d["history"] = self.history(d["key"])
            d["evidence"] = self.evidence(d["key"])
            yield d

    def _iter(self, sql: str, params: Any = (), page: int = 1000) -> Iterator[sqlite3.Row]:
        """Rows of a query in pages (keyset on `key`), without holding the lock between pages."""
        last = ""
        base = sql.replace(" ORDER BY key", "")
        glue = " AND " if " WHERE " in base else " WHERE "
        while True:
            rows = self._q(f"{base}{glue}key > ? ORDER BY key LIMIT {page}", (*params, last))
            if not rows:
                return
            yield from rows
            last = rows[-1]["key"]

    def dump(self) -> Iterator[dict[str, Any]]:
        yield {"type": "meta", "schema_version": SCHEMA_VERSION, "backend": "sqlite"}
        for d in self.export():
            d["type"] = "listing"
            yield d
        for r in self._q("SELECT marketplace, ref, keys, card_hash, fetched_at FROM crawl_state ORDER BY marketplace, ref"):
            yield {"type": "crawl_state", **dict(r), "keys": json.loads(r["keys"])}
        yield from self._dump_images()

    def _dump_images(self) -> Iterator[dict[str, Any]]:
        """The listings' pictures (images/), one record per listing: a reindex keeps the re-used photos."""
        key, pics = None, []
        for r in self._q("SELECT * FROM listing_images ORDER BY key, idx"):
            if r["key"] != key and pics:
                yield {"type": "listing_images", "key": key, "images": pics}
                pics = []
            key = r["key"]
            pics.append({"index": r["idx"], "url": r["url"], "sha256": r["sha256"], "phash": r["phash"], "width": r["width"],
                         "height": r["height"], "first_seen": r["first_seen"], "last_seen": r["last_seen"]})
        if pics:
            yield {"type": "listing_images", "key": key, "images": pics}

    def load(self, records: Iterable[dict[str, Any]], batch: int = 200) -> int:
        """Write dump records (listings with their history, crawl state) as they are: a listing already
        stored is replaced with the record's. Returns the number of records written."""
        n = sum(self._load(part) for part in dump_record_batches(records, batch))
        return n

    def _load(self, recs: list[dict[str, Any]]) -> int:
        with self._lock:
            cur = self.db.cursor()
            self._begin(cur)
            try:
                for rec in recs:
                    if rec.get("type") == "crawl_state":
                        cur.execute("INSERT OR REPLACE INTO crawl_state(marketplace, ref, key, keys, card_hash, fetched_at) VALUES (?,?,?,?,?,?)",
                                    (rec["marketplace"], rec["ref"], (rec.get("keys") or [None])[0], _j(rec.get("keys") or []),
                                     rec.get("card_hash"), rec["fetched_at"]))
                        continue
                    if rec.get("type") == "listing_images":
                        self._load_images(cur, rec)
                        continue
                    self._load_listing(cur, rec)
                self._commit(cur)
            except BaseException:
                self._rollback(cur)
                raise
        return len(recs)

    def _load_listing(self, cur: sqlite3.Cursor, rec: dict[str, Any]) -> None:
        key = rec["key"]
        hist = rec.get("history") or {}
        state = {c: rec.get(c) for c in _STATE_COLS}
        state["tis_base"] = P.tis_base(rec.get("tis_no"))
        state["seller_norm"] = P.seller_norm(rec.get("seller"))
        state["review_status"] = rec.get("review_status") or "new"
        for c in ("category", "attributes", "images", "reasons"):
            state[c] = _j(state[c] if state[c] is not None else _JSON_COLS[c]())
        state["detail"] = _j(rec.get("detail") or {})
        old = cur.execute("SELECT id FROM listings WHERE key=?", (key,)).fetchone()
        if old is not None:
            lid = old["id"]
            cur.execute(f"UPDATE listings SET {', '.join(f'{k}=?' for k in state)}, marketplace=?, item_id=? WHERE id=?",
                        [*state.values(), rec["marketplace"], rec["item_id"], lid])
            for t in ("observations", "changes", "verdicts", "evidence"):
                cur.execute(f"DELETE FROM {t} WHERE key=?", (key,))
        else:
            cols = ["key", "marketplace", "item_id", *state]
            cur.execute(f"INSERT INTO listings({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                        [key, rec["marketplace"], rec["item_id"], *state.values()])
            lid = cur.lastrowid
        cur.executemany("INSERT INTO observations(key, content_hash, first_seen, last_seen, times, data) VALUES (?,?,?,?,?,?)",
                        [(key, o["content_hash"], o["first_seen"], o["last_seen"], o.get("times", 1), pack(o["data"]))
                         for o in hist.get("observations", [])])
        cur.executemany("INSERT INTO changes(key, at, field, old, new) VALUES (?,?,?,?,?)",
                        [(key, c["at"], c["field"], c.get("old"), c.get("new")) for c in hist.get("changes", [])])
        cur.executemany("INSERT INTO verdicts(key, at, verdict, risk, tis_no, licence_no, reasons, registry_version) VALUES (?,?,?,?,?,?,?,?)",
                        [(key, v["at"], v["verdict"], v.get("risk"), v.get("tis_no"), v.get("licence_no"), _j(v.get("reasons") or []),
                          v.get("registry_version")) for v in hist.get("verdicts", [])])
        cur.executemany("INSERT INTO evidence(key, kind, path, sha256, size, created_at, pruned_at) VALUES (?,?,?,?,?,?,?)",
                        [(key, e["kind"], e["path"], e["sha256"], e.get("size"), e["created_at"], e.get("pruned_at"))
                         for e in rec.get("evidence", [])])
        self._index(cur, lid, rec)

    def evidence_captures(self, before: datetime) -> Iterator[dict[str, Any]]:
        """Evidence captures (the files of one listing taken at one time) older than `before` whose
        files are still there, with what the retention policy needs to know about the listing."""
        rows = self._q(
            "SELECT e.key, e.created_at, l.verdict, l.review_status, l.status,"
            " (SELECT max(created_at) FROM evidence x WHERE x.key=e.key AND x.pruned_at IS NULL) AS newest,"
            " json_group_array(json_object('kind', e.kind, 'path', e.path, 'sha256', e.sha256, 'size', e.size)) AS files"
            " FROM evidence e LEFT JOIN listings l ON l.key=e.key WHERE e.pruned_at IS NULL AND e.created_at < ?"
            " GROUP BY e.key, e.created_at ORDER BY e.created_at, e.key", (_iso(before),))
        for r in rows:
            d = dict(r)
            d["files"] = json.loads(d["files"])
            d["newest"] = d["newest"] == d["created_at"]
            yield d

    def mark_evidence_pruned(self, key: str, created_at: str, at: datetime) -> int:
        with self._lock:
            return self.db.execute("UPDATE evidence SET pruned_at=? WHERE key=? AND created_at=? AND pruned_at IS NULL",
                                   (_iso(at), key, created_at)).rowcount

    def prune_observations(self, before: datetime, keep: Iterable[str] = (), dry_run: bool = False) -> int:
        """The observation retention policy (see the protocol), in batches of one short transaction each
        (a crawl writing meanwhile waits for one batch, not for the whole pass)."""
        cut, kept, done, last = _iso(before), set(keep), 0, 0
        sel = ("SELECT o.id, o.key FROM observations o JOIN listings l ON l.key = o.key "
               "WHERE o.id > ? AND o.last_seen < ? AND l.review_status = 'new' AND o.id != "
               "(SELECT o2.id FROM observations o2 WHERE o2.key = o.key ORDER BY o2.first_seen DESC, o2.id DESC LIMIT 1) "
               "ORDER BY o.id LIMIT 2000")
        while True:
            with self._lock:
                self.db.execute("BEGIN" if dry_run else "BEGIN IMMEDIATE")
                try:
                    rows = self.db.execute(sel, (last, cut)).fetchall()
                    ids = [r[0] for r in rows if r[1] not in kept]
                    if ids and not dry_run:
                        self.db.execute(f"DELETE FROM observations WHERE id IN ({','.join('?' * len(ids))})", ids)
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
            if not rows:
                return done
            done += len(ids)
            last = rows[-1][0]
