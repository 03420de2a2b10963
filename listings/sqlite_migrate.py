"""Schema migrations of the SQLite listing store (`tiswatch store migrate`).

Each step moves a database one schema version forward, in place, in one transaction: a failed step
leaves the database as it was. Before the first step the database is copied next to itself
(`listings.sqlite.v1-20261124T101500Z.bak`, with SQLite's online backup, so the copy is consistent)
unless the caller says not to.

v1 -> v2:
- listings get a stable INTEGER PRIMARY KEY `id` (the search indexes refer to it; rowids of a table
  without one may change on VACUUM), `tis_base` (filter by standard, any edition) and `seller_norm`
  (seller search);
- the FTS5 indexes are rebuilt keyed by that id (v1 kept the key in an unindexed column: every
  update scanned the whole index), with Thai vowel and tone marks kept inside words;
- observation data is stored compressed; observations are indexed by (key, first_seen);
- evidence rows get `pruned_at` (the retention policy records what it deleted).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from listings import plan as P
from listings import query as Q
from listings.sqlite_store import SCHEMA, connect, pack, read_version
from listings.store import SCHEMA_VERSION, SchemaError, StoreError

Progress = Callable[[str], None]


def _v1_to_v2(db: sqlite3.Connection, say: Progress) -> None:
    cols = [r[1] for r in db.execute("PRAGMA table_info(listings)")]
    keep = [c for c in cols if c not in ("id", "tis_base", "seller_norm")]
    db.create_function("tis_base", 1, P.tis_base, deterministic=True)
    db.create_function("seller_norm", 1, P.seller_norm, deterministic=True)
    db.create_function("pack_json", 1, lambda s: pack(json.loads(s)) if isinstance(s, str) else s)
    say("listings: adding a stable id, tis_base and seller_norm")
    db.execute("ALTER TABLE listings RENAME TO listings_v1")
    for idx in ("listings_queue", "listings_seller", "listings_mp_seen", "listings_tis"):
        db.execute(f"DROP INDEX IF EXISTS {idx}")
    db.execute("DROP TABLE IF EXISTS search_words")
    db.execute("DROP TABLE IF EXISTS search_tri")
    _run(db, _statements(SCHEMA, fts=False))
    db.execute(f"INSERT INTO listings(id, {', '.join(keep)}, tis_base, seller_norm) SELECT rowid, {', '.join(keep)},"
               " tis_base(tis_no), seller_norm(seller) FROM listings_v1 ORDER BY rowid")
    db.execute("DROP TABLE listings_v1")
    say("observations: compressing the stored views")
    db.execute("DROP INDEX IF EXISTS observations_key")
    db.execute("UPDATE observations SET data = pack_json(data) WHERE typeof(data) = 'text'")
    db.execute("CREATE INDEX IF NOT EXISTS observations_key_seen ON observations(key, first_seen)")
    ev = [r[1] for r in db.execute("PRAGMA table_info(evidence)")]
    if "pruned_at" not in ev:
        db.execute("ALTER TABLE evidence ADD COLUMN pruned_at TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS evidence_created ON evidence(created_at)")
    say("search indexes: rebuilding")
    _run(db, _statements(SCHEMA, fts=True))
    rebuild_search(db)


def _statements(schema: str, fts: bool) -> list[str]:
    return [s.strip() for s in schema.split(";\n") if s.strip() and ("VIRTUAL TABLE" in s) == fts]


def _run(db: sqlite3.Connection, statements: list[str]) -> None:
    # not executescript: it would commit the migration's transaction half-way
    for s in statements:
        db.execute(s)


def rebuild_search(db: sqlite3.Connection, say: Progress | None = None) -> int:
    """Fill both search indexes from the listings (inside the caller's transaction)."""
    db.execute("DELETE FROM search_words")
    db.execute("DELETE FROM search_tri")
    n = 0
    rows = db.execute("SELECT id, title, brand, seller, description FROM listings ORDER BY id").fetchall()
    for r in rows:
        words, folded = Q.search_fields(dict(r))
        db.execute("INSERT INTO search_words(rowid, words) VALUES (?,?)", (r["id"], words))
        db.execute("INSERT INTO search_tri(rowid, text) VALUES (?,?)", (r["id"], folded))
        n += 1
        if say and n % 20000 == 0:
            say(f"  {n:,} of {len(rows):,} listings indexed")
    return n


STEPS: dict[int, Callable[[sqlite3.Connection, Progress], None]] = {1: _v1_to_v2}


def backup(path: Path, version: int) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = path.with_name(f"{path.name}.v{version}-{stamp}.bak")
    src = sqlite3.connect(path)
    try:
        dst = sqlite3.connect(dest)
        with dst:
            src.backup(dst)
        dst.close()
    finally:
        src.close()
    return dest


def migrate(path: str | Path, *, make_backup: bool = True, say: Progress | None = None) -> dict[str, object]:
    """Bring a listing database to the current schema. Returns {from, to, backup, steps}."""
    path = Path(path)
    say = say or (lambda _m: None)
    if not path.exists():
        return {"from": None, "to": SCHEMA_VERSION, "backup": None, "steps": []}
    try:
        db = connect(path)
        version = read_version(db)
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: not a usable SQLite database ({e})") from None
    try:
        if version is None or version == SCHEMA_VERSION:
            return {"from": version, "to": SCHEMA_VERSION, "backup": None, "steps": []}
        if version > SCHEMA_VERSION:
            raise SchemaError(f"{path} holds schema v{version}, newer than this tiswatch (v{SCHEMA_VERSION})")
        start = version
        bak = None
        if make_backup:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            bak = backup(path, version)
            say(f"backup: {bak}")
        steps = []
        while version < SCHEMA_VERSION:
            step = STEPS.get(version)
            if step is None:
                raise SchemaError(f"{path}: no migration from schema v{version}")
            say(f"migrating v{version} -> v{version + 1}")
            db.execute("BEGIN IMMEDIATE")
            try:
                step(db, say)
                db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(version + 1),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            steps.append(f"v{version} -> v{version + 1}")
            version += 1
        return {"from": start, "to": version, "backup": str(bak) if bak else None, "steps": steps}
    finally:
        db.close()
