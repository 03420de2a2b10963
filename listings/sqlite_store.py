"""The embedded listing store: SQLite in WAL mode, in the data directory (listings.sqlite).

Tables: listings (current state and latest verdict), observations (each distinct view with first and
last seen: identical consecutive views are one row), changes (what changed between views), verdicts
(each verdict with the registry version it used), evidence (files with SHA-256), and two FTS5 indexes:
`search_words` holds Thai pre-tokenised by pythainlp (word search), `search_tri` the folded text under
the trigram tokenizer (substrings of 3+ characters).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from listings.model import FLAGGED, Listing
from listings.store import REVIEW_STATUSES, FetchState, IngestResult, SearchQuery, SearchResult
from matching.normalise import fold, tokenised, tokens

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS listings (
  key TEXT PRIMARY KEY, marketplace TEXT NOT NULL, item_id TEXT NOT NULL, shop_id TEXT, url TEXT, title TEXT,
  description TEXT, brand TEXT, seller TEXT, seller_id TEXT, price REAL, currency TEXT, sold INTEGER,
  location TEXT, category TEXT, attributes TEXT, images TEXT,
  first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active', delisted_at TEXT,
  content_hash TEXT, verdict TEXT, risk INTEGER, tis_no TEXT, licence_no TEXT, reasons TEXT, detail TEXT,
  checked_at TEXT, registry_version TEXT, review_status TEXT NOT NULL DEFAULT 'new', flagged_at TEXT
);
CREATE INDEX IF NOT EXISTS listings_queue ON listings(verdict, risk DESC);
CREATE INDEX IF NOT EXISTS listings_seller ON listings(marketplace, seller_id);
CREATE INDEX IF NOT EXISTS listings_mp_seen ON listings(marketplace, last_seen);
CREATE INDEX IF NOT EXISTS listings_tis ON listings(tis_no);
CREATE TABLE IF NOT EXISTS observations (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL, content_hash TEXT NOT NULL, first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL, times INTEGER NOT NULL DEFAULT 1, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS observations_key ON observations(key, id);
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
  size INTEGER, created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_key ON evidence(key);
CREATE TABLE IF NOT EXISTS crawl_state (
  marketplace TEXT NOT NULL, ref TEXT NOT NULL, key TEXT, keys TEXT NOT NULL DEFAULT '[]', card_hash TEXT,
  fetched_at TEXT NOT NULL, PRIMARY KEY (marketplace, ref)
);
CREATE INDEX IF NOT EXISTS crawl_state_key ON crawl_state(key);
CREATE VIRTUAL TABLE IF NOT EXISTS search_words USING fts5(key UNINDEXED, words, tokenize='unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE IF NOT EXISTS search_tri USING fts5(key UNINDEXED, text, tokenize='trigram');
"""
_TRACKED = ("title", "price", "seller", "seller_id", "brand", "description", "sold", "url")
_CHANGE_NAME = {"title": "title", "price": "price", "seller": "seller", "seller_id": "seller", "brand": "brand",
                "description": "description", "sold": "stock", "url": "url"}


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime | None) -> str:
    dt = dt or _now()
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def _j(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def _chunks(items: list[Any], n: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class SqliteStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    # ---- writing -------------------------------------------------------------------------------
    def ingest(self, listing: Listing, verdict: Any | None = None, observed_at: datetime | None = None) -> IngestResult:
        """Store one view of a listing and its verdict. Idempotent: the same view twice is one observation."""
        at = _iso(observed_at or listing.observed_at)
        key = listing.key
        h = listing.content_hash()
        rec = listing.record()
        res = IngestResult(key)
        with self._lock:
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                old = cur.execute("SELECT * FROM listings WHERE key=?", (key,)).fetchone()
                last = cur.execute("SELECT id, content_hash, first_seen, last_seen FROM observations WHERE key=? ORDER BY id DESC LIMIT 1",
                                   (key,)).fetchone()
                if last is not None and last["content_hash"] == h:
                    if at > last["last_seen"]:
                        cur.execute("UPDATE observations SET last_seen=?, times=times+1 WHERE id=?", (at, last["id"]))
                    elif at < last["first_seen"]:
                        cur.execute("UPDATE observations SET first_seen=? WHERE id=?", (at, last["id"]))
                else:
                    cur.execute("INSERT INTO observations(key, content_hash, first_seen, last_seen, data) VALUES (?,?,?,?,?)",
                                (key, h, at, at, _j(rec)))
                    res.new_observation = True
                if old is None:
                    res.new_listing = True
                    cur.execute(
                        "INSERT INTO listings(key, marketplace, item_id, shop_id, url, title, description, brand, seller, seller_id,"
                        " price, currency, sold, location, category, attributes, images, first_seen, last_seen, content_hash)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (key, listing.marketplace, listing.item_id, listing.shop_id, listing.url, listing.title,
                         listing.description, listing.brand, listing.seller, listing.seller_id, listing.price,
                         listing.currency, listing.sold, listing.location, _j(listing.category), _j(listing.attributes),
                         _j(listing.images), at, at, h))
                    self._index(cur, key, listing)
                else:
                    if at >= old["last_seen"]:
                        if old["status"] == "delisted":
                            res.changes.append(("relisted", old["delisted_at"], at))
                        if old["content_hash"] != h:
                            for f in _TRACKED:
                                a, b = old[f], getattr(listing, f)
                                if (a if a not in ("", None) else None) != (b if b not in ("", None) else None):
                                    res.changes.append((_CHANGE_NAME[f], a, b))
                            cur.execute(
                                "UPDATE listings SET shop_id=?, url=?, title=?, description=?, brand=?, seller=?, seller_id=?,"
                                " price=?, currency=?, sold=?, location=?, category=?, attributes=?, images=?, content_hash=? WHERE key=?",
                                (listing.shop_id, listing.url, listing.title, listing.description, listing.brand,
                                 listing.seller, listing.seller_id, listing.price, listing.currency, listing.sold,
                                 listing.location, _j(listing.category), _j(listing.attributes), _j(listing.images), h, key))
                            self._index(cur, key, listing)
                        cur.execute("UPDATE listings SET last_seen=?, status='active', delisted_at=NULL WHERE key=?", (at, key))
                    elif at < old["first_seen"]:
                        cur.execute("UPDATE listings SET first_seen=? WHERE key=?", (at, key))
                if verdict is not None and (old is None or at >= old["last_seen"]):
                    res.verdict_changed = self._verdict(cur, key, verdict, at, old, res)
                for name, a, b in res.changes:
                    cur.execute("INSERT INTO changes(key, at, field, old, new) VALUES (?,?,?,?,?)",
                                (key, at, name, None if a is None else str(a), None if b is None else str(b)))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return res

    def _verdict(self, cur: sqlite3.Cursor, key: str, v: Any, at: str, old: sqlite3.Row | None, res: IngestResult) -> bool:
        reasons = _j(v.reasons)
        prev = cur.execute("SELECT verdict, risk, tis_no, licence_no, reasons, registry_version FROM verdicts WHERE key=? ORDER BY id DESC LIMIT 1",
                           (key,)).fetchone()
        same = prev is not None and (prev["verdict"], prev["risk"], prev["tis_no"], prev["licence_no"], prev["reasons"]) == \
            (v.verdict, v.risk, v.tis_no, v.licence_no, reasons)
        if not same or prev["registry_version"] != v.registry_version:
            cur.execute("INSERT INTO verdicts(key, at, verdict, risk, tis_no, licence_no, reasons, registry_version) VALUES (?,?,?,?,?,?,?,?)",
                        (key, at, v.verdict, v.risk, v.tis_no, v.licence_no, reasons, v.registry_version))
        res.previous_verdict = prev["verdict"] if prev is not None else None
        if prev is not None and prev["verdict"] != v.verdict:
            res.changes.append(("verdict", prev["verdict"], v.verdict))
        old_claims = {c["value"] for c in json.loads(old["detail"] or "{}").get("claims", []) if c.get("kind") != "vague"} if old else set()
        new_claims = {c["value"] for c in v.claims if c.get("kind") != "vague"}
        if old is not None and old_claims != new_claims:
            res.changes.append(("claim", ", ".join(sorted(old_claims)) or None, ", ".join(sorted(new_claims)) or None))
        flagged_at = None
        if v.verdict in FLAGGED:
            flagged_at = old["flagged_at"] if old is not None and old["flagged_at"] and old["verdict"] in FLAGGED else at
        cur.execute("UPDATE listings SET verdict=?, risk=?, tis_no=?, licence_no=?, reasons=?, detail=?, checked_at=?,"
                    " registry_version=?, flagged_at=? WHERE key=?",
                    (v.verdict, v.risk, v.tis_no, v.licence_no, reasons, _j(v.detail()), at, v.registry_version, flagged_at, key))
        return not same

    @staticmethod
    def _index(cur: sqlite3.Cursor, key: str, listing: Listing) -> None:
        text = " ".join(x for x in (listing.title, listing.brand, listing.seller, listing.description) if x)
        cur.execute("DELETE FROM search_words WHERE key=?", (key,))
        cur.execute("DELETE FROM search_tri WHERE key=?", (key,))
        cur.execute("INSERT INTO search_words(key, words) VALUES (?,?)", (key, tokenised(text)))
        cur.execute("INSERT INTO search_tri(key, text) VALUES (?,?)", (key, fold(text)))

    def mark_delisted(self, marketplace: str, seen: set[str], since: datetime, at: datetime | None = None) -> list[str]:
        """Listings of a marketplace last seen before `since` (a crawl that saw everything started then)
        and not in `seen` are marked delisted, with a change event. Returns their keys."""
        when = _iso(at)
        with self._lock:
            rows = self.db.execute("SELECT key, last_seen FROM listings WHERE marketplace=? AND status='active' AND last_seen < ?",
                                   (marketplace, _iso(since))).fetchall()
            gone = [r["key"] for r in rows if r["key"] not in seen]
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            for k in gone:
                last = next(r["last_seen"] for r in rows if r["key"] == k)
                cur.execute("UPDATE listings SET status='delisted', delisted_at=? WHERE key=?", (when, k))
                cur.execute("INSERT INTO changes(key, at, field, old, new) VALUES (?,?,?,?,?)", (k, when, "delisted", last, when))
            cur.execute("COMMIT")
        return gone

    # ---- crawl bookkeeping ---------------------------------------------------------------------
    def fetch_states(self, marketplace: str, refs: Iterable[str]) -> dict[str, FetchState]:
        refs = list(dict.fromkeys(refs))
        out: dict[str, FetchState] = {}
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
                                     f" EXISTS(SELECT 1 FROM evidence e WHERE e.key=listings.key) AS ev"
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
            self.db.execute("INSERT OR REPLACE INTO crawl_state(marketplace, ref, key, keys, card_hash, fetched_at) VALUES (?,?,?,?,?,?)",
                            (marketplace, ref, keys[0] if keys else None, _j(list(keys)), card_hash, _iso(at)))

    def touch(self, keys: Iterable[str], at: datetime) -> int:
        when = _iso(at)
        n = 0
        with self._lock:
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for k in dict.fromkeys(keys):
                    c = cur.execute("UPDATE listings SET last_seen=? WHERE key=? AND status='active' AND last_seen < ?", (when, k, when))
                    if c.rowcount:
                        n += 1
                        cur.execute("UPDATE observations SET last_seen=?, times=times+1 WHERE id=(SELECT max(id) FROM observations WHERE key=?)"
                                    " AND last_seen < ?", (when, k, when))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return n

    def delist(self, key: str, at: datetime) -> datetime | None:
        when = _iso(at)
        with self._lock:
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                r = cur.execute("SELECT last_seen FROM listings WHERE key=? AND status='active'", (key,)).fetchone()
                if r is not None:
                    cur.execute("UPDATE listings SET status='delisted', delisted_at=? WHERE key=?", (when, key))
                    cur.execute("INSERT INTO changes(key, at, field, old, new) VALUES (?,?,?,?,?)", (key, when, "delisted", r["last_seen"], when))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return _dt(r["last_seen"]) if r is not None else None

    def due_refetch(self, marketplace: str, before: datetime, flagged_before: datetime, unseen_since: datetime,
                    limit: int) -> list[dict[str, Any]]:
        flagged = ",".join(f"'{v}'" for v in sorted(FLAGGED))
        rows = self.db.execute(
            "SELECT l.key, l.item_id, l.shop_id, l.url, l.verdict, coalesce(cs.ref, l.item_id) AS ref, cs.card_hash,"
            " coalesce(cs.fetched_at, l.last_seen) AS fetched FROM listings l"
            " LEFT JOIN crawl_state cs ON cs.marketplace=l.marketplace AND cs.key=l.key"
            " WHERE l.marketplace=? AND l.status='active' AND l.last_seen < ?"
            f" AND coalesce(cs.fetched_at, l.last_seen) < CASE WHEN l.verdict IN ({flagged}) THEN ? ELSE ? END"
            " ORDER BY fetched LIMIT ?",
            (marketplace, _iso(unseen_since), _iso(flagged_before), _iso(before), max(0, limit))).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for r in rows:  # a listing found under two refs (a shop page that moved) is revisited once
            out.setdefault(r["key"], dict(r))
        return list(out.values())

    def add_evidence(self, key: str, kind: str, path: str, sha256: str, size: int, created_at: datetime | None = None) -> None:
        with self._lock:
            self.db.execute("INSERT INTO evidence(key, kind, path, sha256, size, created_at) VALUES (?,?,?,?,?,?)",
                            (key, kind, path, sha256, size, _iso(created_at)))

    def set_review_status(self, key: str, status: str) -> None:
        if status not in REVIEW_STATUSES:
            raise ValueError(f"{status!r} is not a review status ({', '.join(REVIEW_STATUSES)})")
        with self._lock:
            n = self.db.execute("UPDATE listings SET review_status=? WHERE key=?", (status, key)).rowcount
        if not n:
            raise KeyError(key)

    # ---- reading -------------------------------------------------------------------------------
    @staticmethod
    def _row(r: sqlite3.Row) -> dict[str, Any]:
        d = dict(r)
        for k in ("category", "attributes", "images", "reasons"):
            d[k] = json.loads(d[k]) if d.get(k) else ([] if k != "attributes" else {})
        d["detail"] = json.loads(d["detail"]) if d.get("detail") else {}
        return d

    def get(self, key: str) -> dict[str, Any] | None:
        r = self.db.execute("SELECT * FROM listings WHERE key=?", (key,)).fetchone()
        return self._row(r) if r else None

    def history(self, key: str) -> dict[str, list[dict[str, Any]]]:
        q = self.db.execute
        return {
            "observations": [{**dict(r), "data": json.loads(r["data"])} for r in
                             q("SELECT content_hash, first_seen, last_seen, times, data FROM observations WHERE key=? ORDER BY id", (key,))],
            "changes": [dict(r) for r in q("SELECT at, field, old, new FROM changes WHERE key=? ORDER BY id", (key,))],
            "verdicts": [{**dict(r), "reasons": json.loads(r["reasons"] or "[]")} for r in
                         q("SELECT at, verdict, risk, tis_no, licence_no, reasons, registry_version FROM verdicts WHERE key=? ORDER BY id", (key,))],
        }

    def seller(self, marketplace: str, seller_id: str) -> dict[str, Any] | None:
        r = self.db.execute(
            "SELECT marketplace, seller_id, max(seller) AS name, count(*) AS listings, min(first_seen) AS first_seen,"
            " max(last_seen) AS last_seen, sum(verdict IN ('unlicensed','mislabeled','needs_review')) AS flagged"
            " FROM listings WHERE marketplace=? AND seller_id=? GROUP BY marketplace, seller_id", (marketplace, seller_id)).fetchone()
        if r is None:
            return None
        d = dict(r)
        d["flagged_share"] = round(d["flagged"] / d["listings"], 3) if d["listings"] else 0.0
        d["items"] = [self._row(x) for x in self.db.execute(
            "SELECT * FROM listings WHERE marketplace=? AND seller_id=? ORDER BY risk DESC, last_seen DESC LIMIT 500", (marketplace, seller_id))]
        return d

    def evidence(self, key: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT kind, path, sha256, size, created_at FROM evidence WHERE key=? ORDER BY id", (key,))]

    def counts(self) -> dict[str, Any]:
        q = self.db.execute
        return {
            "listings": q("SELECT count(*) FROM listings").fetchone()[0],
            "observations": q("SELECT count(*) FROM observations").fetchone()[0],
            "by_marketplace": dict(q("SELECT marketplace, count(*) FROM listings GROUP BY marketplace").fetchall()),
            "by_verdict": dict(q("SELECT verdict, count(*) FROM listings WHERE verdict IS NOT NULL GROUP BY verdict").fetchall()),
            "delisted": q("SELECT count(*) FROM listings WHERE status='delisted'").fetchone()[0],
        }

    def _match_keys(self, text: str) -> tuple[str, list[Any]] | None:
        """SQL (a subquery of keys) matching the query text: every word, Thai tokenised like the index;
        words of 3+ characters may also match as substrings (trigram)."""
        toks = [t for t in tokens(text) if t.strip()]
        if not toks:
            return None
        parts, params = [], []
        for t in toks:
            phrase = '"' + t.replace('"', '""') + '"'
            if len(t) >= 3:
                parts.append("key IN (SELECT key FROM search_words WHERE search_words MATCH ? UNION SELECT key FROM search_tri WHERE search_tri MATCH ?)")
                params += [f"words:{phrase}", f"text:{phrase}"]
            else:
                parts.append("key IN (SELECT key FROM search_words WHERE search_words MATCH ?)")
                params.append(f"words:{phrase}")
        return " AND ".join(parts), params

    def search(self, q: SearchQuery) -> SearchResult:
        where, params = ["1=1"], []
        if q.text.strip():
            m = self._match_keys(q.text)
            if m is None:
                return SearchResult(0, [])
            where.append(m[0])
            params += m[1]
        for col, val in (("marketplace", q.marketplace), ("verdict", q.verdict), ("review_status", q.review_status)):
            if val:
                where.append(f"{col}=?")
                params.append(val)
        if q.tis:
            where.append("(tis_no=? OR tis_no LIKE ?)")
            params += [q.tis, q.tis.split("-")[0] + "-%" if "-" in q.tis else q.tis + "-%"]
        if q.seller:
            where.append("(seller_id=? OR seller LIKE ? ESCAPE '\\')")
            params += [q.seller, "%" + q.seller.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"]
        if q.flagged_only:
            where.append("verdict IN ('unlicensed','mislabeled','needs_review')")
        if q.date_from:
            where.append("last_seen >= ?")
            params.append(_iso(q.date_from))
        if q.date_to:
            where.append("first_seen <= ?")
            params.append(_iso(q.date_to))
        if q.price_min is not None:
            where.append("price >= ?")
            params.append(q.price_min)
        if q.price_max is not None:
            where.append("price <= ?")
            params.append(q.price_max)
        sql_where = " AND ".join(where)
        order = {"risk": "risk DESC, last_seen DESC", "recent": "last_seen DESC", "price": "price ASC"}.get(q.order, "risk DESC, last_seen DESC")
        total = self.db.execute(f"SELECT count(*) FROM listings WHERE {sql_where}", params).fetchone()[0]
        rows = self.db.execute(f"SELECT * FROM listings WHERE {sql_where} ORDER BY {order} LIMIT ? OFFSET ?",
                               [*params, max(0, min(q.limit, 1000)), max(0, q.offset)]).fetchall()
        facets = {}
        for col in ("marketplace", "verdict", "tis_no", "seller"):
            facets[col] = [(r[0], r[1]) for r in self.db.execute(
                f"SELECT {col}, count(*) FROM listings WHERE {sql_where} AND {col} IS NOT NULL GROUP BY {col} ORDER BY count(*) DESC LIMIT 20",
                params)]
        hits = [self._row(r) for r in rows]
        if q.text.strip():
            toks = [fold(t) for t in tokens(q.text)]
            for h in hits:
                hay = fold(" ".join(x for x in (h["title"], h["brand"], h["seller"]) if x))
                h["matched"] = [t for t in toks if t in hay] or [t for t in toks if t in fold(h.get("description") or "")]
        return SearchResult(total, hits, facets)

    def export(self) -> Iterator[dict[str, Any]]:
        for r in self.db.execute("SELECT * FROM listings ORDER BY key"):
            d = self._row(r)
            d["history"] = self.history(d["key"])
            d["evidence"] = self.evidence(d["key"])
            yield d
