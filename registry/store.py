"""The licence registry kept in SQLite (registry.sqlite in the data directory), with history.

Importing a licence file updates licences in place (keyed by licence_no) and records every change
(status, models, trademarks and the other fields) with its effective date, so "was licence X active
on date D?" can be answered. An import runs in one transaction: a failure leaves the registry as it was.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from matching.normalise import tokenised
from registry.licences import Licence, LicenceFile, read_licence_file

SCHEMA = """
PRAGMA journal_mode=WAL;
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
CREATE TABLE IF NOT EXISTS status_history (
  licence_no TEXT NOT NULL, status TEXT NOT NULL, since TEXT NOT NULL, import_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS status_history_no ON status_history(licence_no, since);
CREATE TABLE IF NOT EXISTS imports (
  id INTEGER PRIMARY KEY, path TEXT, sha256 TEXT, at TEXT, rows INTEGER, added INTEGER,
  updated INTEGER, unchanged INTEGER, rejected INTEGER
);
CREATE VIRTUAL TABLE IF NOT EXISTS licence_search USING fts5(licence_no UNINDEXED, words, tokenize='trigram');
"""
TRACKED = ("licence_type", "tis_no", "licensee", "tax_id", "trademarks", "product", "models", "factory",
           "origin", "issued", "status", "status_date")


@dataclass
class ImportReport:
    path: str
    import_id: int | None
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list = field(default_factory=list)
    changes: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)


def _cell(lic: Licence, key: str) -> str | None:
    v = getattr(lic, key)
    if isinstance(v, tuple):
        return json.dumps(list(v), ensure_ascii=False)
    if isinstance(v, date):
        return v.isoformat()
    return v if v != "" else None


def _search_words(lic: Licence) -> str:
    text = " ".join([lic.licence_no, lic.licensee, " ".join(lic.trademarks), lic.product, " ".join(lic.models)])
    return text + " " + tokenised(text)


class RegistryStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # ---- import ------------------------------------------------------------------------------
    def import_file(self, path: str | Path, today: date | None = None) -> ImportReport:
        parsed = read_licence_file(path)  # raises LicenceFileError before anything changes
        sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return self.import_licences(parsed, sha, today=today)

    def import_licences(self, parsed: LicenceFile, sha256: str = "", today: date | None = None) -> ImportReport:
        today = today or datetime.now(UTC).date()
        rep = ImportReport(path=parsed.path, import_id=None, rows=parsed.rows, errors=list(parsed.errors))
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute("INSERT INTO imports(path, sha256, at, rows) VALUES (?,?,?,?)",
                        (parsed.path, sha256, datetime.now(UTC).isoformat(timespec="seconds"), parsed.rows))
            imp = cur.lastrowid
            rep.import_id = imp
            existing = {r["licence_no"]: r for r in cur.execute(
                "SELECT * FROM licences WHERE licence_no IN (SELECT value FROM json_each(?))",
                (json.dumps([lic.licence_no for lic in parsed.licences]),))}
            seen: set[str] = set()
            for lic in parsed.licences:
                if lic.licence_no in seen:
                    continue  # a later duplicate row in the same file is ignored; the first one wins
                seen.add(lic.licence_no)
                new = {k: _cell(lic, k) for k in TRACKED}
                old = existing.get(lic.licence_no)
                if old is None:
                    cur.execute(
                        f"INSERT INTO licences(licence_no, tis_base, first_import, last_import, {', '.join(TRACKED)})"
                        f" VALUES (?,?,?,?,{','.join('?' * len(TRACKED))})",
                        (lic.licence_no, lic.base, imp, imp, *new.values()))
                    since = (lic.issued or today).isoformat()
                    if lic.status != "active":
                        cur.execute("INSERT INTO status_history VALUES (?,?,?,?)", (lic.licence_no, "active", since, imp))
                        since = (lic.status_date or today).isoformat()
                    cur.execute("INSERT INTO status_history VALUES (?,?,?,?)", (lic.licence_no, lic.status, since, imp))
                    cur.execute("INSERT INTO licence_search VALUES (?,?)", (lic.licence_no, _search_words(lic)))
                    rep.added += 1
                    continue
                diffs = [(k, old[k], new[k]) for k in TRACKED if (old[k] or None) != (new[k] or None)]
                if not diffs:
                    rep.unchanged += 1
                    continue
                eff = (lic.status_date or today).isoformat() if any(k == "status" for k, _, _ in diffs) else today.isoformat()
                for k, o, n in diffs:
                    cur.execute("INSERT INTO licence_changes(licence_no, field, old, new, effective, import_id) VALUES (?,?,?,?,?,?)",
                                (lic.licence_no, k, o, n, eff, imp))
                    rep.changes.append((lic.licence_no, k, o, n))
                    if k == "status":
                        cur.execute("INSERT INTO status_history VALUES (?,?,?,?)", (lic.licence_no, n, eff, imp))
                cur.execute(f"UPDATE licences SET tis_base=?, last_import=?, {', '.join(f'{k}=?' for k in TRACKED)} WHERE licence_no=?",
                            (lic.base, imp, *new.values(), lic.licence_no))
                cur.execute("DELETE FROM licence_search WHERE licence_no=?", (lic.licence_no,))
                cur.execute("INSERT INTO licence_search VALUES (?,?)", (lic.licence_no, _search_words(lic)))
                rep.updated += 1
            cur.execute("UPDATE imports SET added=?, updated=?, unchanged=?, rejected=? WHERE id=?",
                        (rep.added, rep.updated, rep.unchanged, rep.rejected, imp))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
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

    def changes(self, licence_no: str) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT field, old, new, effective, import_id FROM licence_changes WHERE licence_no=? ORDER BY id", (licence_no,))]

    def changed_since(self, import_id: int) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT licence_no FROM licence_changes WHERE import_id > ? UNION "
            "SELECT licence_no FROM licences WHERE first_import > ?", (import_id, import_id))]

    def status_on(self, licence_no: str, day: date) -> str | None:
        """The licence's status on a given day, from its history; None if it did not exist yet."""
        r = self.db.execute(
            "SELECT status FROM status_history WHERE licence_no=? AND since <= ? ORDER BY since DESC, rowid DESC LIMIT 1",
            (licence_no, day.isoformat())).fetchone()
        return r[0] if r else None

    def stats(self) -> dict[str, list[tuple]]:
        q = self.db.execute
        return {
            "by_standard": [tuple(r) for r in q("SELECT tis_no, count(*), sum(status='active') FROM licences GROUP BY tis_no ORDER BY count(*) DESC")],
            "by_type": [tuple(r) for r in q("SELECT licence_type, count(*) FROM licences GROUP BY licence_type ORDER BY count(*) DESC")],
            "by_status": [tuple(r) for r in q("SELECT status, count(*) FROM licences GROUP BY status ORDER BY count(*) DESC")],
        }

    def search(self, text: str, limit: int = 50) -> list[Licence]:
        """Brand, licensee, model or licence number; Thai or Latin; substrings of 3+ characters
        through the trigram index, shorter ones by a scan."""
        from matching.normalise import fold

        q = fold(text)
        if not q:
            return []
        if len(q) >= 3:
            phrase = '"' + q.replace('"', '""') + '"'
            rows = self.db.execute(
                "SELECT l.* FROM licence_search s JOIN licences l USING(licence_no) WHERE licence_search MATCH ? LIMIT ?",
                (phrase, limit)).fetchall()
        else:
            rows = self.db.execute(
                "SELECT l.* FROM licence_search s JOIN licences l USING(licence_no) WHERE instr(lower(s.words), ?) > 0 LIMIT ?",
                (q, limit)).fetchall()
        return [self._licence(r) for r in rows]


def open_registry_store(path: str | Path) -> RegistryStore:
    return RegistryStore(path)


def bulk(licences: Iterable[Licence]) -> LicenceFile:
    """Wrap licences made in code (a generated world) as a parsed file, for import_licences."""
    ls = list(licences)
    return LicenceFile(path="<generated>", licences=ls, rows=len(ls))
