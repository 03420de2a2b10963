"""The SQLite store's bulk path: one batch of sightings and delistings in one transaction.

`SqliteStore.ingest` plans and writes one sighting at a time (a crawl's pipeline). A bulk load (a
replayed history, `tiswatch store reindex/import` of sightings, a worker draining a stream) does the
same with the same planner (listings/plan.py), but:
- reads the batch's listings with one query per 500 keys and their latest observation runs with
  one more (every run of a listing only for a late sighting, as the per-item path does);
- plans every item in memory, each seeing what the items before it did (a listing seen twice in a
  batch, a new listing seen again, a delisting between two sightings);
- writes once per listing at the end: the columns whose value changed (so the indexes on untouched
  columns are not rewritten), the observations, changes and verdicts with executemany in the order
  the per-item path would have written them (row ids, and so ties in time, come out the same), and
  the search index once per listing whose text changed (the last text), with executemany, without
  deleting the index rows of listings new in the batch.

The contract tests run through both paths (tests/store_helpers.py: `Batched`), so both give the
same stored state, history and results.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from listings import plan as P
from listings import query as Q
from listings.store import Delisting, IngestItem, IngestResult

if TYPE_CHECKING:
    from listings.sqlite_store import SqliteStore

_NEW = 1 << 60  # refs (and creation order) of observation runs made in this batch: after every stored row id


class Batch:
    def __init__(self, store: SqliteStore, cur: sqlite3.Cursor):
        self.store, self.cur = store, cur
        self.state: dict[str, dict[str, Any]] = {}     # key -> the listing as `_row(internal=True)` gives it
        self.orig: dict[str, dict[str, Any]] = {}      # key -> the listing as loaded (to write only what differs)
        self.dirty: dict[str, set[str]] = {}           # key -> columns set by this batch
        self.runs: dict[str, dict[Any, P.Run]] = {}    # key -> the runs known (the latest, or all)
        self.complete: set[str] = set()                # keys whose every run is in `runs`
        self.new_obs: dict[int, list[Any]] = {}         # ref -> [key, hash, first, last, times, record]
        self.obs_upd: dict[int, tuple[str, str, int]] = {}  # stored run id -> (first, last, times)
        self.verdicts: list[tuple[Any, ...]] = []
        self.changes: list[tuple[Any, ...]] = []
        self.reindex: dict[str, dict[str, Any]] = {}   # key -> the record whose text to index

    # ---- reading ---------------------------------------------------------------------------------
    def _load(self, keys: list[str]) -> None:
        from listings.sqlite_store import _chunks

        for part in _chunks(keys, 500):
            marks = ",".join("?" * len(part))
            for r in self.cur.execute(f"SELECT * FROM listings WHERE key IN ({marks})", part):
                self.state[r["key"]] = self.store._row(r, internal=True)
                self.orig[r["key"]] = dict(self.state[r["key"]])
                self.runs[r["key"]] = {}
        stored = [k for k in keys if k in self.state]
        for part in _chunks(stored, 500):
            for r in self.cur.execute(
                    "SELECT o.id, o.key, o.content_hash, o.first_seen, o.last_seen, o.times FROM observations o WHERE o.id IN"
                    " (SELECT (SELECT x.id FROM observations x WHERE x.key = k.value ORDER BY x.first_seen DESC, x.id DESC LIMIT 1)"
                    " FROM json_each(?) k)", (json.dumps(part),)):
                self.runs[r["key"]][r["id"]] = P.Run(r["id"], r["content_hash"], r["first_seen"], r["last_seen"], r["times"], r["id"])

    def _all_runs(self, key: str) -> list[P.Run]:
        known = self.runs[key]
        if key not in self.complete:
            for r in self.cur.execute("SELECT id, content_hash, first_seen, last_seen, times FROM observations WHERE key=?", (key,)):
                if r["id"] not in known:  # a run this batch changed keeps its new times
                    known[r["id"]] = P.Run(r["id"], r["content_hash"], r["first_seen"], r["last_seen"], r["times"], r["id"])
            self.complete.add(key)
        return list(known.values())

    # ---- planning --------------------------------------------------------------------------------
    def run(self, items: list[IngestItem]) -> list[IngestResult]:
        from listings.sqlite_store import _iso

        keys = list(dict.fromkeys(it.key if isinstance(it, Delisting) else it[0].key for it in items))
        self._load(keys)
        out: list[IngestResult] = []
        for it in items:
            if isinstance(it, Delisting):
                out.append(self._delist(it.key, _iso(it.at)))
            else:
                listing, verdict, observed_at = it
                out.append(self._sighting(listing, verdict, _iso(observed_at or listing.observed_at)))
        self._write()
        return out

    def _sighting(self, listing: Any, verdict: Any, at: str) -> IngestResult:
        key = listing.key
        rec, h = listing.view()
        prior = self.state.get(key)
        runs: list[P.Run] = []
        if prior is not None:
            known = self.runs.setdefault(key, {})
            latest = max(known.values(), key=lambda r: (r.first_seen, r.order)) if known else None
            runs = [latest] if latest is not None else []
            if latest is not None and P.needs_all_runs(latest, at):
                runs = self._all_runs(key)
        pl = P.plan_ingest(prior, runs, rec, h, at, verdict, key)
        self._apply_obs(key, pl.obs, rec)
        if pl.state:
            if "content_hash" in pl.state and (prior is None or Q.listing_text(prior) != Q.listing_text(rec)):
                self.reindex[key] = rec
            if prior is None:
                prior = {"id": None, "key": key, "review_status": "new"}
                self.state[key] = prior
                self.runs.setdefault(key, {})
                self.complete.add(key)
            prior.update(pl.state)
            self.dirty.setdefault(key, set()).update(pl.state)
        if pl.verdict_row is not None:
            r = pl.verdict_row
            self.verdicts.append((key, r["at"], r["verdict"], r["risk"], r["tis_no"], r["licence_no"], r["reasons"],
                                  r["registry_version"]))
        self.changes += [(key, pl.at, name, a, b) for name, a, b in pl.changes]
        return pl.result

    def _apply_obs(self, key: str, o: P.ObsOp, rec: dict[str, Any]) -> None:
        known = self.runs.setdefault(key, {})
        if o.action == "insert":
            ref = _NEW + len(self.new_obs)
            self.new_obs[ref] = [key, o.content_hash, o.first_seen, o.last_seen, o.times, rec]
            known[ref] = P.Run(ref, o.content_hash, o.first_seen, o.last_seen, o.times, ref)
        elif o.action in ("extend", "backdate"):
            if o.ref in self.new_obs:
                self.new_obs[o.ref][2:5] = [o.first_seen, o.last_seen, o.times]
            else:
                self.obs_upd[o.ref] = (o.first_seen, o.last_seen, o.times)
            old = known[o.ref]
            known[o.ref] = P.Run(o.ref, old.content_hash, o.first_seen, o.last_seen, o.times, old.order)

    def _delist(self, key: str, at: str) -> IngestResult:
        prior = self.state.get(key)
        d = P.plan_delist(prior, at)
        if d is None or prior is None:
            return IngestResult(key)
        prior.update(d[0])
        self.dirty.setdefault(key, set()).update(d[0])
        self.changes.append((key, at, *d[1]))
        return IngestResult(key, changes=[d[1]])

    # ---- writing ---------------------------------------------------------------------------------
    def _write(self) -> None:
        from listings.sqlite_store import _JSON_COLS, _j, pack

        def enc(col: str, v: Any) -> Any:
            return _j(v) if col in _JSON_COLS or col == "detail" else v

        cur = self.cur
        for key, cols in self.dirty.items():
            st = self.state[key]
            if st["id"] is None:  # new: inserted in the order the listings were first seen
                names = ["key", *sorted(cols)]
                cur.execute(f"INSERT INTO listings({','.join(names)}) VALUES ({','.join('?' * len(names))})",
                            [key, *(enc(c, st[c]) for c in names[1:])])
                st["id"] = cur.lastrowid
                continue
            old = self.orig[key]
            vals = {c: enc(c, st[c]) for c in sorted(cols) if st[c] != old.get(c)}
            if vals:
                cur.execute(f"UPDATE listings SET {', '.join(f'{c}=?' for c in vals)} WHERE id=?", [*vals.values(), st["id"]])
        if self.new_obs:
            cur.executemany("INSERT INTO observations(key, content_hash, first_seen, last_seen, times, data) VALUES (?,?,?,?,?,?)",
                            [(k, h, f, la, t, pack(rec)) for k, h, f, la, t, rec in self.new_obs.values()])
        if self.obs_upd:
            cur.executemany("UPDATE observations SET first_seen=?, last_seen=?, times=? WHERE id=?",
                            [(*v, ref) for ref, v in self.obs_upd.items()])
        if self.verdicts:
            cur.executemany("INSERT INTO verdicts(key, at, verdict, risk, tis_no, licence_no, reasons, registry_version)"
                            " VALUES (?,?,?,?,?,?,?,?)", [(*v[:6], _j(v[6]), v[7]) for v in self.verdicts])
        if self.changes:
            cur.executemany("INSERT INTO changes(key, at, field, old, new) VALUES (?,?,?,?,?)", self.changes)
        gone: list[tuple[int]] = []
        words: list[tuple[int, str]] = []
        tri: list[tuple[int, str]] = []
        for key, rec in self.reindex.items():
            old = self.orig.get(key)
            if old is not None and Q.listing_text(old) == Q.listing_text(rec):
                continue  # back to the text the index holds
            lid = self.state[key]["id"]
            w, f = Q.search_fields(rec)
            if old is not None:  # a listing new in this batch has nothing indexed yet
                gone.append((lid,))
            words.append((lid, w))
            tri.append((lid, f))
        if gone:
            cur.executemany("DELETE FROM search_words WHERE rowid=?", gone)
            cur.executemany("DELETE FROM search_tri WHERE rowid=?", gone)
        if words:
            cur.executemany("INSERT INTO search_words(rowid, words) VALUES (?,?)", words)
            cur.executemany("INSERT INTO search_tri(rowid, text) VALUES (?,?)", tri)
