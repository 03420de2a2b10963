"""The licence registry kept in SQLite (registry.sqlite in the data directory), with history.

Importing a licence file updates licences in place (keyed by licence_no) and records every change
(status, models, trademarks and the other fields) with its effective date, so "was licence X active
on date D?" (`status_on`) and "what did licence X say on date D?" (`licence_on`) can be answered.
An import runs in one transaction: a failure leaves the registry as it was.

Effective dates: a status change takes effect on the file's `status_date` when it gives one, other
changes on the date the file describes (`as_of`, the import day unless told). A new licence is active
from its issue date (or from `as_of` when the file has none), then in its status from `status_date`.
No date is later than `as_of`: the file says what holds on that day.

For consumers that act on registry changes (the scheduler re-checks listings, issue 9):
`last_import_id()` is a cursor, `changes_since(import_id)` lists what changed after it (licence,
standard, field, old, new, effective date, import), `changed_since(import_id)` only the licence
numbers, and `version()` changes whenever an import changed something.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from listings.sqlite_util import enable_wal
from matching.normalise import brand_key, fold, model_key
from registry.licences import Licence, LicenceFile, LicenceFileError, Progress, RowError, read_licence_file

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS licences (
  licence_no TEXT PRIMARY KEY, licence_type TEXT, tis_no TEXT NOT NULL, tis_base TEXT NOT NULL,
  licensee TEXT, tax_id TEXT, trademarks TEXT, product TEXT, models TEXT, factory TEXT, origin TEXT,
  issued TEXT, status TEXT NOT NULL, status_date TEXT, first_import INTEGER, last_import INTEGER
);
CREATE INDEX IF NOT EXISTS licences_base ON licences(tis_base);
CREATE TABLE IF NOT EXISTS licence_changes (
  id INTEGER PRIMARY KEY, licence_no TEXT NOT NULL, field TEXT NOT NULL, old TEXT, new TEXT,
  effective TEXT NOT NULL, import_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS licence_changes_no ON licence_changes(licence_no, effective);
CREATE INDEX IF NOT EXISTS licence_changes_import ON licence_changes(import_id);
CREATE TABLE IF NOT EXISTS status_history (
  licence_no TEXT NOT NULL, status TEXT NOT NULL, since TEXT NOT NULL, import_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS status_history_no ON status_history(licence_no, since);
CREATE TABLE IF NOT EXISTS imports (
  id INTEGER PRIMARY KEY, path TEXT, sha256 TEXT, at TEXT, rows INTEGER, added INTEGER,
  updated INTEGER, unchanged INTEGER, rejected INTEGER, as_of TEXT, missing INTEGER
);
CREATE VIRTUAL TABLE IF NOT EXISTS licence_search USING fts5(licence_no UNINDEXED, words, tokenize='trigram');
"""
TRACKED = ("licence_type", "tis_no", "licensee", "tax_id", "trademarks", "product", "models", "factory",
           "origin", "issued", "status", "status_date")


class ImportRefused(LicenceFileError):
    """The file is a licence file but importing it would do harm (it is older than the registry)."""


@dataclass
class ImportReport:
    path: str
    import_id: int | None
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    missing: int = 0  # licences in the registry that this file does not list (left as they are)
    merged: int = 0  # rows that repeated a licence of the file and were merged into it
    as_of: date | None = None
    encoding: str = ""
    header_language: str = ""
    ignored_columns: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    changes: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)


@dataclass(frozen=True)
class LicenceChange:
    """One change of one licence, as the scheduler reads them: field 'added' for a new licence."""

    licence_no: str
    tis_no: str
    field: str
    old: str | None
    new: str | None
    effective: str
    import_id: int


def _cell(lic: Licence, key: str) -> str | None:
    v = getattr(lic, key)
    if isinstance(v, tuple):
        return json.dumps(list(v), ensure_ascii=False)
    if isinstance(v, date):
        return v.isoformat()
    return v if v != "" else None


def _uncell(key: str, v: str | None) -> object:
    """The inverse of _cell, for rebuilding a licence as it was."""
    if key in ("trademarks", "models"):
        return tuple(json.loads(v or "[]"))
    if key in ("issued", "status_date"):
        return date.fromisoformat(v) if v else None
    return v or ("active" if key == "status" else "")


def search_words(lic: Licence) -> str:
    """What the trigram index holds for a licence: its folded text plus the keys of its trademarks and
    models, so 'pb2001' finds PB-2001 and 'tos-hiba' finds Toshiba."""
    text = fold(" ".join([lic.licence_no, lic.licensee, " ".join(lic.trademarks), lic.product, " ".join(lic.models)]))
    keys = " ".join([brand_key(t) for t in lic.trademarks] + [model_key(m) for m in lic.models])
    return f"{text} | {keys}"


class RegistryStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout=10000")
        enable_wal(self.db)
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a registry.sqlite written by an older tiswatch up to date (nothing is lost)."""
        have = self.db.execute("PRAGMA user_version").fetchone()[0]
        if have >= SCHEMA_VERSION:
            return
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(imports)")}
        for c, t in (("as_of", "TEXT"), ("missing", "INTEGER")):
            if c not in cols:
                self.db.execute(f"ALTER TABLE imports ADD COLUMN {c} {t}")
        # version 1 indexed pythainlp tokens; version 2 indexes folded text and brand/model keys
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM licence_search")
            self.db.executemany("INSERT INTO licence_search VALUES (?,?)",
                                ((lic.licence_no, search_words(lic)) for lic in list(self.licences())))
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RegistryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- import ------------------------------------------------------------------------------
    def import_file(self, path: str | Path, today: date | None = None, as_of: date | None = None,
                    progress: Progress | None = None, store_progress: Progress | None = None,
                    force: bool = False) -> ImportReport:
        """Read and import a licence file. Raises LicenceFileError (nothing changed) when it is not one."""
        parsed = read_licence_file(path, progress)  # raises LicenceFileError before anything changes
        sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return self.import_licences(parsed, sha, today=today, as_of=as_of, progress=store_progress, force=force)

    def import_licences(self, parsed: LicenceFile, sha256: str = "", today: date | None = None,
                        as_of: date | None = None, progress: Progress | None = None,
                        force: bool = False) -> ImportReport:
        """Import parsed licences: add new ones, update changed ones in place and record each change.

        `as_of` is the day the file describes (default `today`, default the current UTC date). A file
        dated (`as_of`) before the newest import would roll licences back: it is refused unless `force`."""
        explicit = as_of is not None
        today = today or datetime.now(UTC).date()
        as_of = as_of or today
        newest = self.newest_as_of()
        if explicit and newest and as_of.isoformat() < newest and not force:
            raise ImportRefused(
                f"{parsed.path}: the file is dated {as_of.isoformat()}, older than the registry's newest import "
                f"({newest}); importing it would roll licences back. Pass --force to import it anyway.")
        asof = as_of.isoformat()
        rep = ImportReport(path=parsed.path, import_id=None, rows=parsed.rows, errors=list(parsed.errors),
                           merged=parsed.merged, as_of=as_of, encoding=parsed.encoding,
                           header_language=parsed.header_language, ignored_columns=list(parsed.ignored_columns))
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute("INSERT INTO imports(path, sha256, at, rows, as_of) VALUES (?,?,?,?,?)",
                        (parsed.path, sha256, datetime.now(UTC).isoformat(timespec="seconds"), parsed.rows, asof))
            imp = cur.lastrowid
            assert imp is not None
            rep.import_id = imp
            existing = {r["licence_no"]: r for r in cur.execute("SELECT * FROM licences")}
            new_rows: list[tuple] = []
            history: list[tuple] = []
            search: list[tuple] = []
            changes: list[tuple] = []
            updates: list[tuple] = []
            seen: set[str] = set()
            total = len(parsed.licences)
            for n, lic in enumerate(parsed.licences, 1):
                if progress and n % 2000 == 0:
                    progress(n, total)
                if lic.licence_no in seen:
                    continue  # parse_rows merges repeats; licences made in code may still repeat
                seen.add(lic.licence_no)
                new = {k: _cell(lic, k) for k in TRACKED}
                old = existing.get(lic.licence_no)
                if old is None:
                    new_rows.append((lic.licence_no, lic.base, imp, imp, *new.values()))
                    since = min(lic.issued or as_of, as_of).isoformat()
                    if lic.status != "active":
                        history.append((lic.licence_no, "active", since, imp))
                        since = max(since, min(lic.status_date or as_of, as_of).isoformat())
                    history.append((lic.licence_no, lic.status, since, imp))
                    search.append((lic.licence_no, search_words(lic)))
                    rep.added += 1
                    continue
                diffs = [(k, old[k], new[k]) for k in TRACKED if (old[k] or None) != (new[k] or None)]
                if not diffs:
                    rep.unchanged += 1
                    continue
                status_changed = any(k == "status" for k, _, _ in diffs)
                # the file says the status holds on the day it describes: a later status_date is a slip
                eff = min(lic.status_date or as_of, as_of).isoformat() if status_changed else asof
                for k, o, nv in diffs:
                    changes.append((lic.licence_no, k, o, nv, eff if k in ("status", "status_date") else asof, imp))
                    rep.changes.append((lic.licence_no, k, o, nv))
                if status_changed:
                    history.append((lic.licence_no, lic.status, eff, imp))
                updates.append((lic.base, imp, *new.values(), lic.licence_no))
                search.append((lic.licence_no, search_words(lic)))
                rep.updated += 1
            cols = ", ".join(TRACKED)
            cur.executemany(f"INSERT INTO licences(licence_no, tis_base, first_import, last_import, {cols})"
                            f" VALUES (?,?,?,?,{','.join('?' * len(TRACKED))})", new_rows)
            cur.executemany(f"UPDATE licences SET tis_base=?, last_import=?, {', '.join(f'{k}=?' for k in TRACKED)} "
                            "WHERE licence_no=?", updates)
            cur.executemany("INSERT INTO licence_changes(licence_no, field, old, new, effective, import_id) "
                            "VALUES (?,?,?,?,?,?)", changes)
            cur.executemany("INSERT INTO status_history VALUES (?,?,?,?)", history)
            cur.executemany("DELETE FROM licence_search WHERE licence_no=?", [(u[-1],) for u in updates])
            cur.executemany("INSERT INTO licence_search VALUES (?,?)", search)
            rep.missing = len(set(existing) - seen)
            cur.execute("UPDATE imports SET added=?, updated=?, unchanged=?, rejected=?, missing=? WHERE id=?",
                        (rep.added, rep.updated, rep.unchanged, rep.rejected, rep.missing, imp))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        if progress:
            progress(total, total)
        return rep

    # ---- queries -----------------------------------------------------------------------------
    @staticmethod
    def _licence(r: sqlite3.Row) -> Licence:
        return Licence(
            licence_no=r["licence_no"], tis_no=r["tis_no"], licence_type=r["licence_type"] or "",
            licensee=r["licensee"] or "", tax_id=r["tax_id"] or "",
            trademarks=tuple(json.loads(r["trademarks"] or "[]")), product=r["product"] or "",
            models=tuple(json.loads(r["models"] or "[]")), factory=r["factory"] or "", origin=r["origin"] or "",
            issued=date.fromisoformat(r["issued"]) if r["issued"] else None, status=r["status"],
            status_date=date.fromisoformat(r["status_date"]) if r["status_date"] else None,
        )

    def licences(self) -> Iterator[Licence]:
        for r in self.db.execute("SELECT * FROM licences ORDER BY licence_no"):
            yield self._licence(r)

    def get(self, licence_no: str) -> Licence | None:
        r = self.db.execute("SELECT * FROM licences WHERE licence_no=?", (licence_no,)).fetchone()
        return self._licence(r) if r else None

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM licences").fetchone()[0]

    def version(self) -> str:
        """Changes whenever an import changed something: 'r<import id>', or 'r0' when empty."""
        r = self.db.execute("SELECT max(id) FROM imports WHERE coalesce(added,0)+coalesce(updated,0) > 0").fetchone()
        return f"r{r[0] or 0}"

    def newest_as_of(self) -> str | None:
        """The day (ISO) the newest import that changed something describes; None before any."""
        return self.db.execute("SELECT max(as_of) FROM imports WHERE coalesce(added,0)+coalesce(updated,0) > 0").fetchone()[0]

    def last_import_id(self) -> int:
        """The cursor for changes_since: the id of the newest import (0 when none)."""
        return self.db.execute("SELECT coalesce(max(id), 0) FROM imports").fetchone()[0]

    def imports(self, limit: int = 50) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM imports ORDER BY id DESC LIMIT ?", (limit,))]

    def changes(self, licence_no: str) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT field, old, new, effective, import_id FROM licence_changes WHERE licence_no=? ORDER BY id", (licence_no,))]

    def status_history(self, licence_no: str | None = None) -> dict[str, list[tuple[str, str]]]:
        """licence_no -> [(since, status), ...] in order; one licence or all of them."""
        out: dict[str, list[tuple[str, str]]] = {}
        q = "SELECT licence_no, since, status FROM status_history"
        args: tuple = ()
        if licence_no is not None:
            q, args = q + " WHERE licence_no=?", (licence_no,)
        for no, since, status in self.db.execute(q + " ORDER BY licence_no, since, rowid", args):
            out.setdefault(no, []).append((since, status))
        return out

    def changed_since(self, import_id: int) -> list[str]:
        """Licence numbers added or changed by the imports after `import_id` (see last_import_id)."""
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT licence_no FROM licence_changes WHERE import_id > ? UNION "
            "SELECT licence_no FROM licences WHERE first_import > ?", (import_id, import_id))]

    def changes_since(self, import_id: int) -> list[LicenceChange]:
        """Every change after `import_id`, oldest first, with the licence's standard: new licences as
        field 'added', then each changed field. What a re-check of listings needs to pick its targets."""
        rows = self.db.execute(
            "SELECT licence_no, tis_no, 'added' AS field, NULL AS old, status AS new, "
            "  (SELECT as_of FROM imports WHERE id=first_import) AS effective, first_import AS import_id, 0 AS ord "
            "FROM licences WHERE first_import > ? "
            "UNION ALL SELECT c.licence_no, l.tis_no, c.field, c.old, c.new, c.effective, c.import_id, c.id "
            "FROM licence_changes c JOIN licences l USING(licence_no) WHERE c.import_id > ? "
            "ORDER BY import_id, ord, licence_no", (import_id, import_id))
        return [LicenceChange(r["licence_no"], r["tis_no"], r["field"], r["old"], r["new"], r["effective"] or "",
                              r["import_id"]) for r in rows]

    def status_on(self, licence_no: str, day: date) -> str | None:
        """The licence's status on a given day, from its history; None if it did not exist yet (or its
        history starts later: a licence whose file gave no issue date is known from its first import)."""
        r = self.db.execute(
            "SELECT status FROM status_history WHERE licence_no=? AND since <= ? ORDER BY since DESC, rowid DESC LIMIT 1",
            (licence_no, day.isoformat())).fetchone()
        return r[0] if r else None

    def licence_on(self, licence_no: str, day: date) -> Licence | None:
        """The licence as the registry knew it on `day`: changes that took effect later are undone and
        the status is the one of that day. None when it was not (yet) known on that day."""
        lic = self.get(licence_no)
        status = self.status_on(licence_no, day)
        if lic is None or status is None:
            return None
        later = self.db.execute("SELECT field, old FROM licence_changes WHERE licence_no=? AND effective > ? "
                                "ORDER BY id DESC", (licence_no, day.isoformat())).fetchall()
        for f, old in later:
            if f in TRACKED and f != "status":
                setattr(lic, f, _uncell(f, old))
        lic.status = status
        if status == "active" and lic.status_date and lic.status_date > day:
            lic.status_date = None
        return lic

    def stats(self) -> dict[str, list[tuple]]:
        q = self.db.execute
        return {
            "by_standard": [tuple(r) for r in q(
                "SELECT tis_no, count(*), sum(status='active'), sum(status='suspended'), sum(status='cancelled'), "
                "sum(status='revoked') FROM licences GROUP BY tis_no ORDER BY count(*) DESC, tis_no")],
            "by_type": [tuple(r) for r in q(
                "SELECT licence_type, count(*), sum(status='active') FROM licences GROUP BY licence_type ORDER BY count(*) DESC")],
            "by_status": [tuple(r) for r in q("SELECT status, count(*) FROM licences GROUP BY status ORDER BY count(*) DESC")],
        }

    def search(self, text: str, limit: int = 50, tis_base: str | None = None, status: str | None = None) -> list[Licence]:
        """Brand, licensee, product, model or licence number; Thai or Latin; any part of 3 or more
        characters through the trigram index (shorter ones by a scan). Exact licence numbers, brands and
        models come first, then the best full-text matches."""
        from registry.tisno import parse_licence_no

        q = fold(text)
        if not q:
            return []
        where, args = [], []
        if tis_base:
            where.append("l.tis_base = ?")
            args.append(tis_base)
        if status:
            where.append("l.status = ?")
            args.append(status)
        extra = "".join(f" AND {w}" for w in where)
        no = parse_licence_no(text)
        exact = self.db.execute(f"SELECT l.* FROM licences l WHERE licence_no = ?{extra}", (no, *args)).fetchall() if no else []
        keys = {k for k in (brand_key(text), model_key(text)) if len(k) >= 3}
        if len(q) >= 3:
            terms = ['"' + q.replace('"', '""') + '"'] + ['"' + k.replace('"', '""') + '"' for k in keys if k != q]
            rows = self.db.execute(
                "SELECT l.*, s.words AS words FROM licence_search s JOIN licences l USING(licence_no) "
                f"WHERE licence_search MATCH ?{extra} ORDER BY rank LIMIT ?",
                (" OR ".join(terms), *args, max(limit * 4, 200))).fetchall()
        else:
            rows = self.db.execute(
                "SELECT l.*, s.words AS words FROM licence_search s JOIN licences l USING(licence_no) "
                f"WHERE instr(s.words, ?) > 0{extra} LIMIT ?", (q, *args, max(limit * 4, 200))).fetchall()

        def score(r: sqlite3.Row) -> int:  # a whole brand or model key beats a part of a word
            whole = r["words"].split(" | ", 1)[-1].split()
            return 0 if keys & set(whole) else 1

        ranked = sorted(rows, key=score)  # stable: the full-text rank orders each group
        out: dict[str, Licence] = {r["licence_no"]: self._licence(r) for r in exact}
        for r in ranked:
            if len(out) >= limit:
                break
            out.setdefault(r["licence_no"], self._licence(r))
        return list(out.values())[:limit]


def open_registry_store(path: str | Path) -> RegistryStore:
    return RegistryStore(path)


def bulk(licences: Iterable[Licence]) -> LicenceFile:
    """Wrap licences made in code (a generated world) as a parsed file, for import_licences."""
    ls = list(licences)
    return LicenceFile(path="<generated>", licences=ls, rows=len(ls))
