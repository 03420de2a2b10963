"""The scale-out listing store: Elasticsearch 8/9 or OpenSearch 2/3.

Same contract as the SQLite store (tests/integration/test_store_contract.py runs against both), same
rules of ingestion (listings/plan.py) and of search (listings/query.py). What differs is how it is
written down:
- one document per listing (`<prefix>-listings`, id = the listing key) holding the current state,
  the search fields and a pointer to its latest observation run; observation runs, change events,
  verdicts, evidence references and the crawl's bookkeeping in their own indices (es_schema.py);
- **bulk ingestion**: `ingest_many` reads the listings of a batch with one `_mget`, plans every
  sighting in memory, then writes the observations, changes and verdicts with one `_bulk` and the
  listing documents with a second one, each guarded by its sequence number
  (`if_seq_no`/`if_primary_term`): a listing written meanwhile by another process makes this one
  undo its derived documents and plan again, so two crawlers never lose each other's sightings;
- observation runs live in time-based indices behind a write alias, rolled over by ILM, ISM or the
  store itself (es_schema.py). A run being extended is updated in the index it lives in.

Writes become visible to search after the cluster's refresh (1 s by default); `get` and ingestion
read documents in real time. `refresh=True` (tests) refreshes after every write.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from listings import es_schema as S
from listings import plan as P
from listings import query as Q
from listings.es_client import EsClient
from listings.model import FLAGGED, Listing
from listings.store import (
    FACETS,
    REVIEW_STATUSES,
    SCHEMA_VERSION,
    Delisting,
    FetchState,
    IngestItem,
    IngestResult,
    SchemaError,
    SearchQuery,
    SearchResult,
    StoreError,
    dump_record_batches,
    gc_paused,
    item_key,
)

log = logging.getLogger(__name__)

LISTING_FIELDS = ("key", "marketplace", "item_id", *P.VIEW_FIELDS, "first_seen", "last_seen", "status", "delisted_at",
                  "content_hash", "verdict", "risk", "tis_no", "licence_no", "reasons", "detail", "checked_at",
                  "registry_version", "review_status", "flagged_at")
_DEFAULTS = {"category": list, "attributes": dict, "images": list, "reasons": list, "detail": dict}
MAX_WINDOW = 100_000
RETRIES = 10  # a listing written by another process meanwhile: plan again, this many times at most


def _backoff(attempt: int) -> None:
    """Wait a little before trying again, longer each time, at random so two writers fall out of step."""
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2 ** attempt)))


def _iso(dt: datetime | str | None) -> str:
    from listings.sqlite_store import iso

    return iso(dt)


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def _hid(*parts: Any) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:24]


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def public(src: dict[str, Any]) -> dict[str, Any]:
    """A listing document as `get` returns it (the same fields as the SQLite store)."""
    d = {f: src.get(f) for f in LISTING_FIELDS}
    for f, empty in _DEFAULTS.items():
        if d[f] is None:
            d[f] = empty()
    if d["status"] is None:
        d["status"] = "active"
    if d["review_status"] is None:
        d["review_status"] = "new"
    return d


def _wildcard(text: str) -> str:
    return "*" + text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?") + "*"


class _Seq:
    """Insertion order for rows that share a time (the SQLite store orders them by row id)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


class ElasticStore:
    backend = "elasticsearch"

    def __init__(self, url: str, prefix: str = "tiswatch", *, client: str = "auto", username: str = "", password: str = "",
                 api_key: str = "", ca_certs: str = "", verify_certs: bool = True, refresh: bool = False, shards: int = 1,
                 replicas: int = 1, rollover: str = "auto", rollover_max_age: str = "30d", rollover_max_docs: int = 50_000_000,
                 rollover_max_size: str = "50gb", setup: bool = True, timeout: float = 30.0):
        self.http = EsClient(url, client, username, password, api_key, ca_certs, verify_certs, timeout)
        self.url = self.http.url
        self.prefix = prefix
        self.refresh = refresh
        self.shards, self.replicas = shards, replicas
        self.rollover_mode = rollover
        self.max_age_s = S.parse_age(rollover_max_age)
        self.max_age = rollover_max_age
        self.max_docs = rollover_max_docs
        self.max_size_b = S.parse_size(rollover_max_size)
        self.max_size = rollover_max_size
        self._seq = _Seq()
        self._lock = threading.RLock()
        self._since_check = 0
        self._checked_at = 0.0
        self.flavor = "opensearch"
        self.version = ""
        if setup:
            self.setup()

    @classmethod
    def from_settings(cls, st: Any, **kw: Any) -> ElasticStore:
        return cls(st.es_url, st.es_prefix, client=st.es_client, username=st.es_username, password=st.es_password,
                   api_key=st.es_api_key, ca_certs=st.es_ca_certs, verify_certs=st.es_verify_certs, shards=st.es_shards,
                   replicas=st.es_replicas, rollover=st.es_rollover, rollover_max_age=st.es_rollover_max_age,
                   rollover_max_docs=st.es_rollover_max_docs, rollover_max_size=st.es_rollover_max_size,
                   timeout=st.es_timeout, **kw)

    # ---- set-up --------------------------------------------------------------------------------
    def a(self, kind: str) -> str:
        return S.alias(self.prefix, kind)

    def _req(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
             ok: tuple[int, ...] = ()) -> Any:
        return self.http.request(method, path, body, params, ok)

    def detect(self) -> dict[str, Any]:
        """The cluster's flavour and version, and how observation indices roll over there."""
        info = self._req("GET", "/")
        v = info.get("version", {})
        self.flavor = "opensearch" if v.get("distribution") == "opensearch" else "elasticsearch"
        self.version = v.get("number", "")
        mode = self.rollover_mode
        if mode == "auto":
            if self.flavor == "elasticsearch":
                r = self._req("GET", "/_ilm/status", ok=(400, 404, 405))
                mode = "ilm" if isinstance(r, dict) and "operation_mode" in r else "client"
            else:
                r = self._req("GET", "/_plugins/_ism/policies", ok=(400, 404, 405))
                mode = "ism" if isinstance(r, dict) and "policies" in r else "client"
        self.rollover_mode = mode
        return {"flavor": self.flavor, "version": self.version, "rollover": mode}

    def setup(self) -> None:
        """Create (or check) the templates, policies, indices and aliases this store uses. Idempotent."""
        self.detect()
        meta = self._req("GET", f"/{self.a('meta')}/_doc/schema", ok=(404,))
        if isinstance(meta, dict) and meta.get("found"):
            v = int(meta["_source"].get("schema_version", 0))
            if v != SCHEMA_VERSION:
                raise SchemaError(f"{self.url}: indices {self.prefix}-* hold listing store schema v{v}; this tiswatch "
                                  f"uses v{SCHEMA_VERSION}" + (": upgrade tiswatch" if v > SCHEMA_VERSION else
                                                               ": reindex them (tiswatch store reindex)"))
        policy = f"{self.prefix}-observations"
        if self.rollover_mode == "ilm":
            self._req("PUT", f"/_ilm/policy/{policy}", S.ilm_policy(self.max_age, self.max_docs, self.max_size))
        elif self.rollover_mode == "ism":
            r = self._req("GET", f"/_plugins/_ism/policies/{policy}", ok=(404,))
            if not (isinstance(r, dict) and r.get("_id")):
                self._req("PUT", f"/_plugins/_ism/policies/{policy}", S.ism_policy(self.prefix, self.max_age, self.max_docs, self.max_size))
        for kind in S.KINDS:
            self._req("PUT", f"/_index_template/{self.prefix}-{kind}",
                      S.template(self.prefix, kind, self.shards, self.replicas, self.flavor, self.rollover_mode, policy))
        for kind in S.KINDS:
            al = self.a(kind)
            if self._alias_exists(al):
                continue
            name = S.observation_index(self.prefix, datetime.now(UTC), 1) if kind == "observations" else S.concrete(self.prefix, kind)
            body = {"aliases": {al: {"is_write_index": True} if kind == "observations" else {}}}
            self._req("PUT", f"/{name}", body, ok=(400,))  # 400: created meanwhile by another process
        self._req("PUT", f"/{self.a('meta')}/_doc/schema", {"schema_version": SCHEMA_VERSION, "created_at": _iso(None),
                                                            "rollover": self.rollover_mode},
                  params={"op_type": "create", "refresh": "true"}, ok=(409,))

    def _alias_exists(self, al: str) -> bool:
        r = self._req("GET", f"/_alias/{al}", ok=(404,))
        return isinstance(r, dict) and any(al in (v.get("aliases") or {}) for v in r.values() if isinstance(v, dict))

    def drop(self) -> None:
        """Delete every index, template and policy of this prefix (tests, `store reindex --replace`)."""
        rows = self._req("GET", f"/_cat/indices/{self.prefix}-*", params={"format": "json", "h": "index"}, ok=(404,))
        names = [r["index"] for r in rows if isinstance(r, dict) and r.get("index", "").startswith(self.prefix + "-")] \
            if isinstance(rows, list) else []
        for part in _chunks(names, 20):
            self._req("DELETE", "/" + ",".join(part), ok=(404,))
        for kind in S.KINDS:
            self._req("DELETE", f"/_index_template/{self.prefix}-{kind}", ok=(404,))
        if self.rollover_mode == "ilm":
            self._req("DELETE", f"/_ilm/policy/{self.prefix}-observations", ok=(404,))
        elif self.rollover_mode == "ism":
            self._req("DELETE", f"/_plugins/_ism/policies/{self.prefix}-observations", ok=(404,))

    def close(self) -> None:
        self.http.close()

    def flush(self) -> None:
        self._req("POST", f"/{','.join(self.a(k) for k in S.KINDS)}/_refresh")

    # ---- rollover ------------------------------------------------------------------------------
    def observation_indices(self) -> list[dict[str, Any]]:
        rows = self._req("GET", f"/_cat/indices/{self.prefix}-observations-*",
                         params={"format": "json", "h": "index,docs.count,store.size,creation.date", "bytes": "b"}, ok=(404,))
        if not isinstance(rows, list):
            return []
        al = self._req("GET", f"/_alias/{self.a('observations')}", ok=(404,))
        out = []
        for r in rows:
            name = r["index"]
            w = (al.get(name, {}).get("aliases", {}).get(self.a("observations"), {}) if isinstance(al, dict) else {})
            out.append({"index": name, "docs": int(r.get("docs.count") or 0), "bytes": int(r.get("store.size") or 0),
                        "created": datetime.fromtimestamp(int(r.get("creation.date") or 0) / 1000, UTC),
                        "write": str(w.get("is_write_index")).lower() == "true"})
        return sorted(out, key=lambda x: (S.observation_number(x["index"]), x["index"]))

    def rollover(self, force: bool = False, now: datetime | None = None) -> dict[str, Any] | None:
        """Roll the observation write index over when a condition is met (or `force`): a new
        time-stamped index becomes the write index, in one atomic alias change. On clusters with
        ILM/ISM the cluster does this itself; this is what `client` rollover does, and what
        `tiswatch store rollover` runs. Returns {from, to, why} or None."""
        now = now or datetime.now(UTC)
        idx = self.observation_indices()
        w = next((x for x in idx if x["write"]), idx[-1] if idx else None)
        if w is None:
            return None
        why = "forced" if force else S.rollover_due(w["docs"], w["bytes"], w["created"], now, self.max_docs, self.max_size_b,
                                                   self.max_age_s)
        if not why:
            return None
        n = max(S.observation_number(x["index"]) for x in idx) + 1
        new = S.observation_index(self.prefix, now, n)
        al = self.a("observations")
        self._req("PUT", f"/{new}", {})
        self._req("POST", "/_aliases", {"actions": [
            {"add": {"index": w["index"], "alias": al, "is_write_index": False}},
            {"add": {"index": new, "alias": al, "is_write_index": True}}]})
        log.info("observations rolled over from %s to %s (%s)", w["index"], new, why)
        return {"from": w["index"], "to": new, "why": why}

    def _maybe_rollover(self, inserted: int) -> None:
        if self.rollover_mode != "client":
            return
        self._since_check += inserted
        if self._since_check < 5000 and time.monotonic() - self._checked_at < 300:
            return
        self._since_check = 0
        self._checked_at = time.monotonic()
        self.rollover()

    # ---- low-level reads -----------------------------------------------------------------------
    def _search(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._req("POST", f"/{self.a(kind)}/_search", body)

    def _scan(self, kind: str, query: dict[str, Any], sort: list[Any], source: Any = True, page: int = 2000,
              versions: bool = False) -> Iterator[dict[str, Any]]:
        """Every matching document, in `sort` order (which must end with a unique field); versions=True:
        with each one's _seq_no and _primary_term (for writes guarded by them)."""
        after = None
        while True:
            body: dict[str, Any] = {"query": query, "sort": sort, "size": page, "_source": source, "track_total_hits": False}
            if versions:
                body["seq_no_primary_term"] = True
            if after is not None:
                body["search_after"] = after
            hits = self._search(kind, body)["hits"]["hits"]
            yield from hits
            if len(hits) < page:
                return
            after = hits[-1]["sort"]

    def _mget(self, kind: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for part in _chunks(list(dict.fromkeys(ids)), 1000):
            r = self._req("POST", f"/{self.a(kind)}/_mget", {"ids": part})
            for d in r.get("docs", []):
                if d.get("found"):
                    out[d["_id"]] = d
        return out

    def _bulk(self, actions: list[dict[str, Any] | None], refresh: bool | None = None) -> list[dict[str, Any]]:
        """Run bulk actions (action line, then source line unless None); returns the result items.
        Errors other than version conflicts (409) raise, naming the first one."""
        if not actions:
            return []
        out: list[dict[str, Any]] = []
        for part in _chunk_bulk(actions):
            r = self._req("POST", "/_bulk", [x for x in part if x is not None],
                          params={"refresh": "true" if (self.refresh if refresh is None else refresh) else None})
            items = [next(iter(i.values())) for i in r.get("items", [])]
            bad = [i for i in items if i.get("status", 200) >= 300 and i.get("status") not in (404, 409)]
            if bad:
                e = bad[0].get("error", {})
                raise StoreError(f"{self.url}: bulk write failed for {bad[0].get('_index')}/{bad[0].get('_id')}: "
                                 f"{e.get('type')}: {e.get('reason')}")
            out += items
        return out

    def _refresh_now(self, *kinds: str) -> None:
        self._req("POST", f"/{','.join(self.a(k) for k in kinds)}/_refresh")

    # ---- ingestion -----------------------------------------------------------------------------
    def ingest(self, listing: Listing, verdict: Any | None = None, observed_at: datetime | None = None) -> IngestResult:
        return self.ingest_many([(listing, verdict, observed_at)])[0]

    def ingest_many(self, items: Iterable[IngestItem], batch: int = 1000) -> list[IngestResult]:
        """The bulk path: sightings and delistings, `batch` items to a `_ingest_batch` (one _mget, two
        _bulk requests); the same as `ingest` and `delist` one by one."""
        out: list[IngestResult] = []
        part: list[IngestItem] = []
        for it in items:
            part.append(it)
            if len(part) >= batch:
                with gc_paused():
                    out += self._ingest_batch(part)
                part = []
        if part:
            with gc_paused():
                out += self._ingest_batch(part)
        return out

    @staticmethod
    def _latest(doc: dict[str, Any] | None) -> P.Run | None:
        o = (doc or {}).get("obs")
        if not o:
            return None
        return P.Run((o.get("index"), o["id"]), o["content_hash"], o["first_seen"], o["last_seen"], o.get("times", 1), o.get("seq", 0))

    def _all_runs(self, key: str, pending: dict[str, dict[str, Any]]) -> list[P.Run]:
        self._refresh_now("observations")
        runs: dict[str, P.Run] = {}
        for h in self._scan("observations", {"term": {"key": key}}, [{"first_seen": "asc"}, {"seq": "asc"}],
                            ["content_hash", "first_seen", "last_seen", "times", "seq"]):
            s = h["_source"]
            runs[h["_id"]] = P.Run((h["_index"], h["_id"]), s["content_hash"], s["first_seen"], s["last_seen"], s.get("times", 1), s.get("seq", 0))
        for oid, d in pending.items():
            if d["key"] == key:
                runs[oid] = P.Run((None, oid), d["content_hash"], d["first_seen"], d["last_seen"], d["times"], d["seq"])
        return list(runs.values())

    def _ingest_batch(self, items: list[IngestItem], attempt: int = 0) -> list[IngestResult]:
        with self._lock:
            keys = [item_key(it) for it in items]
            got = self._mget("listings", keys)
            base = {k: (d["_source"], d["_seq_no"], d["_primary_term"]) for k, d in got.items()}
            docs: dict[str, dict[str, Any]] = {}
            pending: dict[str, dict[str, Any]] = {}       # observation id -> new run document
            updates: dict[tuple[str, str], dict[str, Any]] = {}  # (index, id) -> changed fields of a stored run
            derived: dict[str, list[tuple[str, str]]] = {}   # key -> [(kind, id)] written in phase 1
            actions: list[dict[str, Any] | None] = []
            results: list[IngestResult] = []
            words_of: dict[str, dict[str, Any]] = {}  # key -> the record whose words to index
            for item in items:
                if isinstance(item, Delisting):
                    results.append(self._plan_delist(item, docs, base, actions, derived))
                    continue
                listing, verdict, observed_at = item
                key = listing.key
                at = _iso(observed_at or listing.observed_at)
                cur = docs.get(key) or (base[key][0] if key in base else None)
                prior = self._prior(cur)
                latest = self._latest(cur)
                runs = [latest] if latest else []
                if latest is not None and P.needs_all_runs(latest, at):
                    runs = self._all_runs(key, pending)
                rec, h = listing.view()
                pl = P.plan_ingest(prior, runs, rec, h, at, verdict, key)
                new = dict(cur) if cur is not None else {"key": key, "review_status": "new"}
                run = self._apply_obs(key, pl.obs, rec, pending, updates, derived)
                if run is not None and (latest is None or (run["first_seen"], run["seq"]) >= (latest.first_seen, latest.order)
                                        or run["id"] == latest.ref[1]):
                    new["obs"] = run
                if pl.state:
                    reindex = cur is None or Q.listing_text(cur) != Q.listing_text(rec)
                    new.update(pl.state)
                    if "content_hash" in pl.state and reindex:
                        words_of[key] = rec  # cut into words once, for the batch's last text
                    new["seller_key"] = f"{new.get('marketplace')}\x1f{new.get('seller_id')}" if new.get("seller_id") else None
                self._derived_rows(key, pl, actions, derived)
                docs[key] = new
                results.append(pl.result)
            for key, rec in words_of.items():
                docs[key]["words"] = Q.search_words(rec)
            # phase 1: observation runs, changes, verdicts
            for oid, d in pending.items():
                actions += [{"index": {"_index": self.a("observations"), "_id": oid}}, d]
            for (index, oid), d in updates.items():
                actions += [{"update": {"_index": index, "_id": oid}}, {"doc": d}]
            items1 = self._bulk(actions, refresh=False)
            where = {i["_id"]: i["_index"] for i in items1 if i.get("_index", "").startswith(self.prefix + "-observations")}
            # phase 2: the listings, each guarded by the version read
            lactions: list[dict[str, Any] | None] = []
            for key, d in docs.items():
                o = d.get("obs")
                if o and o.get("index") is None:
                    o["index"] = where.get(o["id"])
                meta: dict[str, Any] = {"_index": self.a("listings"), "_id": key}
                if key in base:
                    meta.update(if_seq_no=base[key][1], if_primary_term=base[key][2])
                    lactions += [{"index": meta}, _with_grams(d)]
                else:
                    lactions += [{"create": meta}, _with_grams(d)]
            items2 = self._bulk(lactions, refresh=False)
            lost = {i["_id"] for i in items2 if i.get("status") == 409}
            if lost:
                if attempt >= RETRIES:
                    raise StoreError(f"{self.url}: listings {sorted(lost)[:3]} kept changing under this writer; "
                                     f"gave up after {RETRIES} tries")
                undo: list[dict[str, Any] | None] = []
                for k in lost:
                    for kind, did in derived.get(k, []):
                        if kind != "observations-update":
                            undo.append({"delete": {"_index": self.a(kind) if kind != "observations" else where.get(did, self.a(kind)),
                                                    "_id": did}})
                self._bulk(undo, refresh=False)
                _backoff(attempt)
                again = [(i, it) for i, it in enumerate(items) if item_key(it) in lost]
                redo = self._ingest_batch([it for _, it in again], attempt + 1)
                for (i, _), r in zip(again, redo, strict=True):
                    results[i] = r
            if self.refresh:
                self._refresh_now("listings", "observations", "changes", "verdicts")
            self._maybe_rollover(len(pending))
            return results

    def _plan_delist(self, item: Delisting, docs: dict[str, dict[str, Any]], base: dict[str, Any],
                     actions: list[dict[str, Any] | None], derived: dict[str, list[tuple[str, str]]]) -> IngestResult:
        """A delisting in a batch: as `delist`, on the listing as the batch has it so far."""
        key, when = item.key, _iso(item.at)
        cur = docs.get(key) or (base[key][0] if key in base else None)
        d = P.plan_delist(cur, when)
        if d is None or cur is None:
            return IngestResult(key)
        docs[key] = {**cur, **d[0]}
        seq = self._seq()
        cid = _hid(key, when, "delisted", seq)
        actions += [{"index": {"_index": self.a("changes"), "_id": cid}},
                    {"key": key, "at": when, "field": d[1][0], "old": d[1][1], "new": d[1][2], "seq": seq}]
        derived.setdefault(key, []).append(("changes", cid))
        return IngestResult(key, changes=[d[1]])

    def _apply_obs(self, key: str, o: P.ObsOp, rec: dict[str, Any], pending: dict[str, dict[str, Any]],
                   updates: dict[tuple[str, str], dict[str, Any]], derived: dict[str, list[tuple[str, str]]]) -> dict[str, Any] | None:
        """Record an observation op; returns the run (as the listing's pointer) it touched."""
        if o.action == "none":
            return None
        if o.action == "insert":
            oid = _hid(key, o.first_seen, o.content_hash)
            d = {"key": key, "content_hash": o.content_hash, "first_seen": o.first_seen, "last_seen": o.last_seen,
                 "times": o.times, "seq": self._seq(), "data": rec}
            pending[oid] = d
            derived.setdefault(key, []).append(("observations", oid))
            return {"index": None, "id": oid, "content_hash": o.content_hash, "first_seen": o.first_seen,
                    "last_seen": o.last_seen, "times": o.times, "seq": d["seq"]}
        index, oid = o.ref
        ch = {"first_seen": o.first_seen, "last_seen": o.last_seen, "times": o.times}
        if oid in pending:
            pending[oid].update(ch)
            d = pending[oid]
            return {"index": None, "id": oid, "content_hash": d["content_hash"], **ch, "seq": d["seq"]}
        updates.setdefault((index, oid), {}).update(ch)
        derived.setdefault(key, []).append(("observations-update", oid))
        return {"index": index, "id": oid, "content_hash": o.content_hash, **ch, "seq": o.order}

    def _derived_rows(self, key: str, pl: P.Plan, actions: list[dict[str, Any] | None], derived: dict[str, list[tuple[str, str]]]) -> None:
        if pl.verdict_row is not None:
            seq = self._seq()
            vid = _hid(key, pl.at, "verdict", seq)
            actions += [{"index": {"_index": self.a("verdicts"), "_id": vid}}, {"key": key, **pl.verdict_row, "seq": seq}]
            derived.setdefault(key, []).append(("verdicts", vid))
        for name, a, b in pl.changes:
            seq = self._seq()
            cid = _hid(key, pl.at, name, seq)
            actions += [{"index": {"_index": self.a("changes"), "_id": cid}},
                        {"key": key, "at": pl.at, "field": name, "old": a, "new": b, "seq": seq}]
            derived.setdefault(key, []).append(("changes", cid))

    @staticmethod
    def _prior(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        d = dict(doc)
        d.setdefault("detail", None)
        return d

    def _write_listing(self, key: str, doc: dict[str, Any], seq_no: int, term: int, actions: list[dict[str, Any] | None]) -> bool:
        """Derived rows (already in `actions`) first, then the listing guarded by its version.
        False when the listing changed meanwhile (the derived rows are undone)."""
        items = self._bulk(actions, refresh=False)
        r = self._bulk([{"index": {"_index": self.a("listings"), "_id": key, "if_seq_no": seq_no, "if_primary_term": term}},
                        _with_grams(doc)], refresh=False)
        if r and r[0].get("status") == 409:
            self._bulk([{"delete": {"_index": i["_index"], "_id": i["_id"]}} for i in items], refresh=False)
            return False
        if self.refresh:
            self._refresh_now("listings", "observations", "changes", "verdicts")
        return True

    def record_verdict(self, key: str, verdict: Any, at: datetime | None = None) -> IngestResult | None:
        when = _iso(at)
        for attempt in range(RETRIES):
            if attempt:
                _backoff(attempt)
            got = self._mget("listings", [key]).get(key)
            if got is None:
                return None
            pl = P.plan_verdict(self._prior(got["_source"]), verdict, when, key)
            doc = {**got["_source"], **(pl.state or {})}
            actions: list[dict[str, Any] | None] = []
            self._derived_rows(key, pl, actions, {})
            if self._write_listing(key, doc, got["_seq_no"], got["_primary_term"], actions):
                return pl.result
        raise StoreError(f"{self.url}: listing {key} kept changing; verdict not recorded")

    def _delist_one(self, key: str, when: str) -> str | None:
        for attempt in range(RETRIES):
            if attempt:
                _backoff(attempt)
            got = self._mget("listings", [key]).get(key)
            d = P.plan_delist(got["_source"] if got else None, when)
            if d is None or got is None:
                return None
            seq = self._seq()
            actions: list[dict[str, Any] | None] = [
                {"index": {"_index": self.a("changes"), "_id": _hid(key, when, "delisted", seq)}},
                {"key": key, "at": when, "field": d[1][0], "old": d[1][1], "new": d[1][2], "seq": seq}]
            if self._write_listing(key, {**got["_source"], **d[0]}, got["_seq_no"], got["_primary_term"], actions):
                return got["_source"]["last_seen"]
        raise StoreError(f"{self.url}: listing {key} kept changing; not delisted")

    def delist(self, key: str, at: datetime) -> datetime | None:
        return _dt(self._delist_one(key, _iso(at)))

    def mark_delisted(self, marketplace: str, seen: set[str], since: datetime, at: datetime | None = None) -> list[str]:
        when = _iso(at)
        q = {"bool": {"filter": [{"term": {"marketplace": marketplace}}, {"term": {"status": "active"}},
                                 {"range": {"last_seen": {"lt": _iso(since)}}}]}}
        self._refresh_now("listings")
        keys = [h["_id"] for h in self._scan("listings", q, [{"key": "asc"}], False)]
        return [k for k in keys if k not in seen and self._delist_one(k, when) is not None]

    # ---- crawl bookkeeping ---------------------------------------------------------------------
    def fetch_states(self, marketplace: str, refs: Iterable[str]) -> dict[str, FetchState]:
        refs = list(dict.fromkeys(refs))
        out: dict[str, FetchState] = {}
        ids = {_hid(marketplace, r): r for r in refs}
        for d in self._mget("crawl", list(ids)).values():
            s = d["_source"]
            out[s["ref"]] = FetchState(s["ref"], list(s.get("keys") or []), s.get("card_hash"), _dt(s.get("fetched_at")))
        missing = [r for r in refs if r not in out]
        if missing:
            self._refresh_now("listings")
            for part in _chunks(missing, 1000):
                q = {"bool": {"filter": [{"term": {"marketplace": marketplace}}, {"terms": {"item_id": part}}]}}
                for h in self._scan("listings", q, [{"key": "asc"}], ["key", "item_id"]):
                    out[h["_source"]["item_id"]] = FetchState(h["_source"]["item_id"], [h["_id"]])
        keys = list({s.keys[0] for s in out.values() if s.keys})
        info = {k: d["_source"] for k, d in self._mget("listings", keys).items()}
        with_ev: set[str] = set()
        if keys:
            self._refresh_now("evidence")
            for part in _chunks(keys, 1000):
                r = self._search("evidence", {"size": 0, "query": {"bool": {"filter": [{"terms": {"key": part}}],
                                                                            "must_not": [{"exists": {"field": "pruned_at"}}]}},
                                              "aggs": {"k": {"terms": {"field": "key", "size": len(part)}}}})
                with_ev |= {b["key"] for b in r["aggregations"]["k"]["buckets"]}
        for s in out.values():
            r = info.get(s.keys[0]) if s.keys else None
            if r is not None:
                s.status, s.last_seen, s.verdict = r.get("status"), _dt(r.get("last_seen")), r.get("verdict")
                s.content_hash, s.has_evidence = r.get("content_hash"), s.keys[0] in with_ev
        return out

    def record_fetch(self, marketplace: str, ref: str, keys: list[str], card_hash: str | None, at: datetime) -> None:
        self._bulk([{"index": {"_index": self.a("crawl"), "_id": _hid(marketplace, ref)}},
                    {"marketplace": marketplace, "ref": ref, "key": keys[0] if keys else None, "keys": list(keys),
                     "card_hash": card_hash, "fetched_at": _iso(at)}])

    def touch(self, keys: Iterable[str], at: datetime) -> int:
        when = _iso(at)
        n = 0
        with self._lock:
            for key in dict.fromkeys(keys):
                for attempt in range(RETRIES):
                    if attempt:
                        _backoff(attempt)
                    got = self._mget("listings", [key]).get(key)
                    if got is None:
                        break
                    s = got["_source"]
                    if s.get("status") != "active" or s["last_seen"] >= when:
                        break
                    doc = {**s, "last_seen": when}
                    actions: list[dict[str, Any] | None] = []
                    o = s.get("obs")
                    if o and o["last_seen"] < when:
                        doc["obs"] = {**o, "last_seen": when, "times": o.get("times", 1) + 1}
                        actions += [{"update": {"_index": o["index"], "_id": o["id"]}},
                                    {"doc": {"last_seen": when, "times": doc["obs"]["times"]}}]
                    if self._write_listing(key, doc, got["_seq_no"], got["_primary_term"], actions):
                        n += 1
                        break
        return n

    def due_refetch(self, marketplace: str, before: datetime, flagged_before: datetime, unseen_since: datetime,
                    limit: int) -> list[dict[str, Any]]:
        self._refresh_now("listings", "crawl")
        q = {"bool": {"filter": [{"term": {"marketplace": marketplace}}, {"term": {"status": "active"}},
                                 {"range": {"last_seen": {"lt": _iso(unseen_since)}}}]}}
        rows: list[dict[str, Any]] = []
        cands = [h["_source"] for h in self._scan("listings", q, [{"key": "asc"}],
                                                  ["key", "item_id", "shop_id", "url", "verdict", "last_seen"])]
        by_key: dict[str, list[dict[str, Any]]] = {}
        for part in _chunks([c["key"] for c in cands], 1000):
            cq = {"bool": {"filter": [{"term": {"marketplace": marketplace}}, {"terms": {"key": part}}]}}
            for h in self._scan("crawl", cq, [{"ref": "asc"}], True):
                by_key.setdefault(h["_source"]["key"], []).append(h["_source"])
        b, fb = _iso(before), _iso(flagged_before)
        for c in cands:
            states = by_key.get(c["key"]) or [None]
            for cs in states:
                fetched = (cs or {}).get("fetched_at") or c["last_seen"]
                if fetched < (fb if c.get("verdict") in FLAGGED else b):
                    rows.append({"key": c["key"], "item_id": c["item_id"], "shop_id": c.get("shop_id"), "url": c.get("url"),
                                 "verdict": c.get("verdict"), "ref": (cs or {}).get("ref") or c["item_id"],
                                 "card_hash": (cs or {}).get("card_hash"), "fetched": fetched})
        rows.sort(key=lambda r: (r["fetched"], r["key"]))
        out: dict[str, dict[str, Any]] = {}
        for r in rows[: max(0, limit)]:
            out.setdefault(r["key"], r)
        return list(out.values())

    # ---- re-checks and revisits (the scheduler) ------------------------------------------------
    def affected_keys(self, bases: Iterable[str], licence_nos: Iterable[str]) -> list[str]:
        b, lic = sorted(set(bases)), sorted(set(licence_nos))
        should: list[dict[str, Any]] = []
        if b:
            should += [{"terms": {"tis_base": b}}, {"terms": {"std_bases": b}}]
        if lic:
            should += [{"terms": {"licence_no": lic}}, {"terms": {"claimed_licences": lic}}]
        if not should:
            return []
        self._refresh_now("listings")
        return [h["_id"] for h in self._scan("listings", {"bool": {"should": should, "minimum_should_match": 1}},
                                             [{"key": "asc"}], False)]

    def changed_keys(self, marketplace: str, since: datetime) -> set[str]:
        self._refresh_now("changes")
        q = {"bool": {"filter": [{"prefix": {"key": f"{marketplace}:"}}, {"range": {"at": {"gte": _iso(since)}}}],
                      "must_not": [{"terms": {"field": ["stock", "delisted"]}}]}}
        return {h["_source"]["key"] for h in self._scan("changes", q, [{"key": "asc"}, {"seq": "asc"}], ["key"])}

    # ---- the listings' pictures (perceptual hashes: re-used photos) -----------------------------
    def add_images(self, key: str, images: list[dict[str, Any]], seen_at: datetime | None = None) -> None:
        from listings.sqlite_store import _phash_int, _phash_parts

        at = _iso(seen_at)
        old = {h["_source"]["idx"]: h["_source"] for h in self._images_hits(key)}
        actions: list[dict[str, Any] | None] = []
        new_idx = set()
        for im in images:
            ph = _phash_int(im["phash"])
            idx = int(im["index"])
            new_idx.add(idx)
            prev = old.get(idx)
            first = min(prev["first_seen"], at) if prev and prev.get("sha256") == im["sha256"] else at
            p0, p1, p2, p3 = _phash_parts(ph)
            actions += [{"index": {"_index": self.a("images"), "_id": _hid(key, idx)}},
                        {"key": key, "idx": idx, "url": im.get("url"), "sha256": im["sha256"], "phash": f"{ph:016x}",
                         "p0": p0, "p1": p1, "p2": p2, "p3": p3, "width": im.get("width"), "height": im.get("height"),
                         "first_seen": first, "last_seen": at}]
        actions += [x for idx in old if idx not in new_idx
                    for x in ({"delete": {"_index": self.a("images"), "_id": _hid(key, idx)}}, None)]
        self._bulk(actions)

    def _image_actions(self, key: str, images: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Bulk actions writing a dumped listing's pictures as they were (load), replacing its others."""
        from listings.sqlite_store import _phash_int, _phash_parts

        keep = {int(im["index"]) for im in images}
        actions: list[dict[str, Any] | None] = [
            x for h in self._images_hits(key) if h["_source"]["idx"] not in keep
            for x in ({"delete": {"_index": self.a("images"), "_id": h["_id"]}}, None)]
        for im in images:
            ph = _phash_int(im["phash"])
            p0, p1, p2, p3 = _phash_parts(ph)
            idx = int(im["index"])
            actions += [{"index": {"_index": self.a("images"), "_id": _hid(key, idx)}},
                        {"key": key, "idx": idx, "url": im.get("url"), "sha256": im["sha256"], "phash": f"{ph:016x}",
                         "p0": p0, "p1": p1, "p2": p2, "p3": p3, "width": im.get("width"), "height": im.get("height"),
                         "first_seen": im["first_seen"], "last_seen": im["last_seen"]}]
        return actions

    def _images_hits(self, key: str) -> list[dict[str, Any]]:
        self._refresh_now("images")
        return list(self._scan("images", {"term": {"key": key}}, [{"idx": "asc"}]))

    def images_of(self, key: str) -> list[dict[str, Any]]:
        return [{"index": s["idx"], "url": s.get("url"), "sha256": s["sha256"], "phash": s["phash"], "width": s.get("width"),
                 "height": s.get("height"), "first_seen": _iso(s["first_seen"]), "last_seen": _iso(s["last_seen"])}
                for s in (h["_source"] for h in self._images_hits(key))]

    def find_images(self, phash: str, max_distance: int = 4, limit: int = 100, exclude_key: str | None = None) -> list[dict[str, Any]]:
        from listings.sqlite_store import _phash_int, _phash_parts

        ph = _phash_int(phash)
        parts = _phash_parts(ph)
        self._refresh_now("images")
        q = {"bool": {"should": [{"term": {f"p{i}": v}} for i, v in enumerate(parts)], "minimum_should_match": 1}}
        found = []
        for n, h in enumerate(self._scan("images", q, [{"key": "asc"}, {"idx": "asc"}])):
            if n >= 20000:
                break
            s = h["_source"]
            dist = (int(s["phash"], 16) ^ ph).bit_count()
            if s["key"] != exclude_key and dist <= max_distance:
                found.append((dist, s))
        docs = self._mget("listings", [s["key"] for _, s in found])
        out = []
        for dist, s in found:
            d = docs.get(s["key"])
            if d is None:
                continue
            src = d["_source"]
            out.append({"key": s["key"], "index": s["idx"], "image_url": s.get("url"), "sha256": s["sha256"], "phash": s["phash"],
                        "distance": dist, "marketplace": src.get("marketplace"), "item_id": src.get("item_id"),
                        "title": src.get("title"), "seller": src.get("seller"), "seller_id": src.get("seller_id"),
                        "verdict": src.get("verdict"), "risk": src.get("risk"), "url": src.get("url"), "status": src.get("status")})
        out.sort(key=lambda d: (d["distance"], d["key"], d["index"]))
        return out[:limit]

    def same_images(self, key: str, max_distance: int = 4, limit: int = 100) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[tuple[str, int]] = set()
        for im in self.images_of(key):
            for hit in self.find_images(im["phash"], max_distance, limit, exclude_key=key):
                if (hit["key"], hit["index"]) not in seen:
                    seen.add((hit["key"], hit["index"]))
                    out.append({**hit, "image": im["index"]})
        out.sort(key=lambda d: (d["distance"], d["key"], d["index"]))
        return out[:limit]

    # ---- evidence and review status --------------------------------------------------------------
    def add_evidence(self, key: str, kind: str, path: str, sha256: str, size: int, created_at: datetime | None = None) -> None:
        seq = self._seq()
        self._bulk([{"index": {"_index": self.a("evidence"), "_id": _hid(key, path, sha256, seq)}},
                    {"key": key, "kind": kind, "path": path, "sha256": sha256, "size": size, "created_at": _iso(created_at),
                     "pruned_at": None, "seq": seq}])

    def evidence(self, key: str) -> list[dict[str, Any]]:
        self._refresh_now("evidence")
        return [{f: h["_source"].get(f) for f in ("kind", "path", "sha256", "size", "created_at", "pruned_at")}
                for h in self._scan("evidence", {"term": {"key": key}}, [{"seq": "asc"}])]

    def rebuild_words(self, progress: Callable[[int], None] | None = None) -> dict[str, int]:
        """Cut every listing's search text into words again (listings/query.py index_words, after a
        change of WORDS_VERSION) and rewrite the documents whose words changed: {"listings": read,
        "changed": rewritten}. Each write is guarded by the document's version: one rewritten
        meanwhile (by a crawl, which cut its words the new way) is left as it is."""
        self._refresh_now("listings")
        n = changed = 0
        actions: list[dict[str, Any] | None] = []
        for h in self._scan("listings", {"match_all": {}}, [{"key": "asc"}], versions=True, page=1000):
            src = h["_source"]
            words = Q.search_words(src)
            n += 1
            if words != src.get("words"):
                changed += 1
                actions += [{"index": {"_index": h["_index"], "_id": h["_id"], "if_seq_no": h["_seq_no"],
                                       "if_primary_term": h["_primary_term"]}}, _with_grams({**src, "words": words})]
            if len(actions) >= 1000:
                self._bulk(actions, refresh=False)
                actions = []
            if progress is not None and n % 10_000 == 0:
                progress(n)
        self._bulk(actions, refresh=False)
        self._refresh_now("listings")
        return {"listings": n, "changed": changed}

    def set_review_status(self, key: str, status: str) -> None:
        if status not in REVIEW_STATUSES:
            raise ValueError(f"{status!r} is not a review status ({', '.join(REVIEW_STATUSES)})")
        for attempt in range(RETRIES):  # not _update: it would drop the trigrams, which are not in _source
            if attempt:
                _backoff(attempt)
            got = self._mget("listings", [key]).get(key)
            if got is None:
                raise KeyError(key)
            if self._write_listing(key, {**got["_source"], "review_status": status}, got["_seq_no"], got["_primary_term"], []):
                return
        raise StoreError(f"{self.url}: listing {key} kept changing; review status not set")

    def evidence_captures(self, before: datetime) -> Iterator[dict[str, Any]]:
        self._refresh_now("evidence", "listings")
        q = {"bool": {"filter": [{"range": {"created_at": {"lt": _iso(before)}}}], "must_not": [{"exists": {"field": "pruned_at"}}]}}
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for h in self._scan("evidence", q, [{"created_at": "asc"}, {"key": "asc"}, {"seq": "asc"}]):
            s = h["_source"]
            groups.setdefault((s["key"], s["created_at"]), []).append(s)
        keys = list({k for k, _ in groups})
        info = {k: d["_source"] for k, d in self._mget("listings", keys).items()}
        newest: dict[str, str] = {}
        for part in _chunks(keys, 1000):
            r = self._search("evidence", {"size": 0, "query": {"bool": {"filter": [{"terms": {"key": part}}],
                                                                        "must_not": [{"exists": {"field": "pruned_at"}}]}},
                                          "aggs": {"k": {"terms": {"field": "key", "size": len(part)},
                                                         "aggs": {"m": {"max": {"field": "created_at"}}}}}})
            for b in r["aggregations"]["k"]["buckets"]:
                newest[b["key"]] = _iso(datetime.fromtimestamp(b["m"]["value"] / 1000, UTC))
        for (key, created), files in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            li = info.get(key) or {}
            yield {"key": key, "created_at": created, "verdict": li.get("verdict"), "review_status": li.get("review_status"),
                   "status": li.get("status"), "newest": newest.get(key) == created,
                   "files": [{"kind": f["kind"], "path": f["path"], "sha256": f["sha256"], "size": f.get("size")} for f in files]}

    def mark_evidence_pruned(self, key: str, created_at: str, at: datetime) -> int:
        self._refresh_now("evidence")
        q = {"bool": {"filter": [{"term": {"key": key}}, {"term": {"created_at": created_at}}],
                      "must_not": [{"exists": {"field": "pruned_at"}}]}}
        hits = list(self._scan("evidence", q, [{"seq": "asc"}], False))
        self._bulk([x for h in hits for x in ({"update": {"_index": h["_index"], "_id": h["_id"]}}, {"doc": {"pruned_at": _iso(at)}})])
        return len(hits)

    def prune_observations(self, before: datetime, keep: Iterable[str] = (), dry_run: bool = False) -> int:
        """The observation retention policy (see the protocol): observations last seen before `before`,
        a page at a time, against their listings' current pointer (`obs.id`) and review status."""
        self._refresh_now("observations", "listings")
        kept, done = set(keep), 0
        q = {"bool": {"filter": [{"range": {"last_seen": {"lt": _iso(before)}}}]}}
        page: list[dict[str, Any]] = []

        def flush() -> int:
            info = {k: d["_source"] for k, d in self._mget("listings", [h["_source"]["key"] for h in page]).items()}
            gone = []
            for h in page:
                li = info.get(h["_source"]["key"])
                if (li is None or h["_source"]["key"] in kept or (li.get("review_status") or "new") != "new"
                        or (li.get("obs") or {}).get("id") == h["_id"]):
                    continue
                gone.append({"delete": {"_index": h["_index"], "_id": h["_id"]}})
            if gone and not dry_run:
                self._bulk(list(gone), refresh=False)
            page.clear()
            return len(gone)

        for h in self._scan("observations", q, [{"last_seen": "asc"}, {"seq": "asc"}], ["key"]):
            page.append(h)
            if len(page) >= 2000:
                done += flush()
        if page:
            done += flush()
        if done and not dry_run:
            self._refresh_now("observations")
        return done

    # ---- reading -------------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        d = self._mget("listings", [key]).get(key)
        return public(d["_source"]) if d else None

    def history(self, key: str) -> dict[str, list[dict[str, Any]]]:
        self._refresh_now("observations", "changes", "verdicts")
        t = {"term": {"key": key}}
        return {
            "observations": [{f: h["_source"].get(f) for f in ("content_hash", "first_seen", "last_seen", "times", "data")}
                             for h in self._scan("observations", t, [{"first_seen": "asc"}, {"seq": "asc"}])],
            "changes": [{f: h["_source"].get(f) for f in ("at", "field", "old", "new")}
                        for h in self._scan("changes", t, [{"at": "asc"}, {"seq": "asc"}])],
            "verdicts": [{f: (h["_source"].get(f) if f != "reasons" else list(h["_source"].get(f) or []))
                          for f in ("at", "verdict", "risk", "tis_no", "licence_no", "reasons", "registry_version")}
                         for h in self._scan("verdicts", t, [{"at": "asc"}, {"seq": "asc"}])],
        }

    _PROFILE_AGGS = {
        "first_seen": {"min": {"field": "first_seen"}}, "last_seen": {"max": {"field": "last_seen"}},
        "flagged": {"filter": {"terms": {"verdict": sorted(FLAGGED)}}},
        "delisted": {"filter": {"term": {"status": "delisted"}}}, "active": {"filter": {"term": {"status": "active"}}},
        "name": {"terms": {"field": "seller", "size": 1, "order": {"_key": "desc"}}},
        "shop": {"terms": {"field": "shop_id", "size": 1, "order": {"_key": "desc"}}},
        "mp": {"terms": {"field": "marketplace", "size": 1}}, "sid": {"terms": {"field": "seller_id", "size": 1}},
    }

    @staticmethod
    def _profile(b: dict[str, Any]) -> dict[str, Any]:
        def first(a: str) -> Any:
            bs = b[a]["buckets"]
            return bs[0]["key"] if bs else None

        def when(a: str) -> str | None:
            v = b[a].get("value")
            return _iso(datetime.fromtimestamp(v / 1000, UTC)) if v is not None else None

        n = b["doc_count"]
        flagged = b["flagged"]["doc_count"]
        return {"marketplace": first("mp"), "seller_id": first("sid"), "name": first("name"), "shop_id": first("shop"),
                "listings": n, "first_seen": when("first_seen"), "last_seen": when("last_seen"), "flagged": flagged,
                "delisted": b["delisted"]["doc_count"], "active": b["active"]["doc_count"],
                "flagged_share": round(flagged / n, 3) if n else 0.0}

    def seller(self, marketplace: str, seller_id: str) -> dict[str, Any] | None:
        self._refresh_now("listings")
        q = {"bool": {"filter": [{"term": {"marketplace": marketplace}}, {"term": {"seller_id": seller_id}}]}}
        aggs = {**self._PROFILE_AGGS, "by_verdict": {"terms": {"field": "verdict", "size": 10, "order": {"_key": "asc"}}},
                "names": {"terms": {"field": "seller", "size": 100, "order": {"_key": "asc"}}}}
        r = self._search("listings", {"size": 500, "query": q, "aggs": aggs, "track_total_hits": True,
                                      "sort": [{"risk": {"order": "desc", "missing": "_last"}}, {"last_seen": "desc"}, {"key": "asc"}]})
        n = r["hits"]["total"]["value"]
        if not n:
            return None
        d = self._profile({**r["aggregations"], "doc_count": n})
        d["by_verdict"] = {b["key"]: b["doc_count"] for b in r["aggregations"]["by_verdict"]["buckets"]}
        d["names"] = [b["key"] for b in r["aggregations"]["names"]["buckets"]]
        d["items"] = [public(h["_source"]) for h in r["hits"]["hits"]]
        return d

    def sellers(self, text: str, limit: int = 20) -> list[dict[str, Any]]:
        t = (text or "").strip()
        if not t:
            return []
        mp, _, sid = t.partition(":")
        self._refresh_now("listings")
        should: list[dict[str, Any]] = [{"term": {"seller_id": t}}, {"term": {"shop_id": t}},
                                        {"wildcard": {"seller_norm": {"value": _wildcard(Q.fold(t))}}}]
        if sid:
            should.append({"bool": {"filter": [{"term": {"marketplace": mp}}, {"term": {"seller_id": sid}}]}})
        q = {"bool": {"filter": [{"exists": {"field": "seller_id"}}], "should": should, "minimum_should_match": 1}}
        r = self._search("listings", {"size": 0, "query": q, "aggs": {"s": {"terms": {"field": "seller_key", "size": 2000},
                                                                             "aggs": self._PROFILE_AGGS}}})
        out = [self._profile(b) for b in r["aggregations"]["s"]["buckets"]]
        out.sort(key=lambda d: (-d["flagged"], -d["listings"], d["marketplace"] or "", d["seller_id"] or ""))
        return out[: max(1, min(limit, 500))]

    def seller_history(self, marketplace: str, seller_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        self._refresh_now("listings", "changes", "verdicts")
        q = {"bool": {"filter": [{"term": {"marketplace": marketplace}}, {"term": {"seller_id": seller_id}}]}}
        ls = {h["_id"]: h["_source"] for h in self._scan("listings", q, [{"key": "asc"}], ["key", "title", "first_seen", "url"])}
        rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for k, s in ls.items():
            rows.append(((s["first_seen"], k, 0, 0), {"at": s["first_seen"], "key": k, "title": s.get("title"), "kind": "listed",
                                                      "old": None, "new": s.get("url")}))
        for part in _chunks(list(ls), 1000):
            for h in self._scan("changes", {"terms": {"key": part}}, [{"at": "asc"}, {"seq": "asc"}]):
                c = h["_source"]
                rows.append(((c["at"], c["key"], 1, c["seq"]), {"at": c["at"], "key": c["key"], "title": ls[c["key"]].get("title"),
                                                                "kind": c["field"], "old": c.get("old"), "new": c.get("new")}))
            for h in self._scan("verdicts", {"terms": {"key": part}}, [{"at": "asc"}, {"seq": "asc"}]):
                v = h["_source"]
                risk = "" if v.get("risk") is None else v["risk"]
                rows.append(((v["at"], v["key"], 2, v["seq"]), {"at": v["at"], "key": v["key"], "title": ls[v["key"]].get("title"),
                                                                "kind": "verdict", "old": None, "new": f"{v['verdict']} ({risk})"}))
        rows.sort(key=lambda x: x[0])
        return [r for _, r in rows[: max(1, limit)]]

    def resolve(self, ref: str) -> list[str]:
        ref = (ref or "").strip()
        if not ref:
            return []
        if self._mget("listings", [ref]):
            return [ref]
        self._refresh_now("listings")
        r = self._search("listings", {"size": 50, "_source": False, "sort": [{"key": "asc"}],
                                      "query": {"bool": {"should": [{"term": {"url": ref}}, {"term": {"item_id": ref}}],
                                                         "minimum_should_match": 1}}})
        return [h["_id"] for h in r["hits"]["hits"]]

    def counts(self) -> dict[str, Any]:
        self._refresh_now("listings", "observations")
        r = self._search("listings", {"size": 0, "track_total_hits": True, "aggs": {
            "mp": {"terms": {"field": "marketplace", "size": 100}}, "v": {"terms": {"field": "verdict", "size": 20}},
            "d": {"filter": {"term": {"status": "delisted"}}}}})
        obs = self._req("POST", f"/{self.a('observations')}/_count", {"query": {"match_all": {}}})["count"]
        return {"listings": r["hits"]["total"]["value"], "observations": obs,
                "by_marketplace": {b["key"]: b["doc_count"] for b in r["aggregations"]["mp"]["buckets"]},
                "by_verdict": {b["key"]: b["doc_count"] for b in r["aggregations"]["v"]["buckets"]},
                "delisted": r["aggregations"]["d"]["doc_count"]}

    def info(self) -> dict[str, Any]:
        self._refresh_now(*S.KINDS)
        n = {k: self._req("POST", f"/{self.a(k)}/_count", {"query": {"match_all": {}}})["count"]
             for k in ("listings", "observations", "changes", "verdicts", "evidence")}
        rows = self._req("GET", f"/_cat/indices/{self.prefix}-*", params={"format": "json", "h": "index,store.size", "bytes": "b"},
                         ok=(404,))
        size = sum(int(r.get("store.size") or 0) for r in rows) if isinstance(rows, list) else 0
        obs = self.observation_indices()
        return {"backend": f"elasticsearch ({self.flavor} {self.version})", "location": f"{self.url} (prefix {self.prefix})",
                "schema_version": SCHEMA_VERSION, "counts": n, "bytes": size, "rollover": self.rollover_mode,
                "observation_indices": [{**o, "created": _iso(o["created"])} for o in obs]}

    # ---- search --------------------------------------------------------------------------------
    def _query(self, q: SearchQuery, terms: list[str]) -> dict[str, Any]:
        must: list[dict[str, Any]] = []
        for t in terms:
            should: list[dict[str, Any]] = [{"constant_score": {"filter": {"match_phrase": {"words": " ".join(Q.term_words(t))}}, "boost": 1}}]
            if Q.substring_ok(t):
                should.append({"constant_score": {"filter": {"match_phrase": {"grams": Q.trigrams(t)}}, "boost": 0}})
            must.append({"bool": {"should": should, "minimum_should_match": 1}})
        flt: list[dict[str, Any]] = []
        for f, v in (("marketplace", q.marketplace), ("verdict", q.verdict), ("review_status", q.review_status), ("status", q.status)):
            if v:
                flt.append({"term": {f: v}})
        if q.tis:
            base = P.tis_base(q.tis)
            flt.append({"term": {"tis_base": base}} if base else {"match_none": {}})
        if q.seller:
            flt.append({"bool": {"should": [{"term": {"seller_id": q.seller}},
                                            {"wildcard": {"seller_norm": {"value": _wildcard(Q.fold(q.seller))}}}],
                                 "minimum_should_match": 1}})
        if q.flagged_only:
            flt.append({"terms": {"verdict": sorted(FLAGGED)}})
        if q.date_from:
            flt.append({"range": {"last_seen": {"gte": _iso(q.date_from)}}})
        if q.date_to:
            flt.append({"range": {"first_seen": {"lte": _iso(q.date_to)}}})
        if q.flagged_before:
            flt.append({"range": {"flagged_at": {"lte": _iso(q.flagged_before)}}})
        if q.price_min is not None or q.price_max is not None:
            r: dict[str, Any] = {}
            if q.price_min is not None:
                r["gte"] = q.price_min
            if q.price_max is not None:
                r["lte"] = q.price_max
            flt.append({"range": {"price": r}})
        return {"bool": {"must": must, "filter": flt}} if must or flt else {"match_all": {}}

    def search(self, q: SearchQuery) -> SearchResult:
        q = Q.normalized(q)
        terms = Q.terms(q.text)
        if Q.fold(q.text).strip() and not terms:
            return SearchResult(0, [], {f: [] for f in FACETS} if q.facets else {}, [])
        limit, offset = max(0, min(q.limit, 1000)), max(0, q.offset)
        if offset >= MAX_WINDOW:
            limit = 0
        limit = min(limit, max(0, MAX_WINDOW - offset))
        risk = {"risk": {"order": "desc", "missing": "_last"}}
        seen = {"last_seen": {"order": "desc"}}
        sort = {"risk": [risk, seen], "recent": [seen], "price": [{"price": {"order": "asc", "missing": "_last"}}]}.get(q.order)
        if sort is None:
            sort = ([{"_score": "desc"}] if terms else []) + [risk, seen]
        body: dict[str, Any] = {"query": self._query(q, terms), "size": limit, "from": min(offset, MAX_WINDOW),
                                "sort": [*sort, {"key": "asc"}], "track_total_hits": True}
        if q.facets:
            body["aggs"] = {f: {"terms": {"field": f, "size": 20, "shard_size": 200, "order": [{"_count": "desc"}, {"_key": "asc"}]}}
                            for f in FACETS}
        self._refresh_if_needed()
        r = self._search("listings", body)
        hits = [public(h["_source"]) for h in r["hits"]["hits"]]
        if terms:
            for h in hits:
                h["why"] = Q.explain(h, terms)
                h["matched"] = [w["term"] for w in h["why"]]
        facets = {f: [(b["key"], b["doc_count"]) for b in r["aggregations"][f]["buckets"]] for f in FACETS} if q.facets else {}
        return SearchResult(r["hits"]["total"]["value"], hits, facets, terms)

    def _refresh_if_needed(self) -> None:
        if self.refresh:
            return  # refreshed after every write already
        # the review app and the CLI expect what was just ingested; a refresh is cheap when nothing changed
        self._refresh_now("listings")

    # ---- export, reindex ------------------------------------------------------------------------
    def export(self) -> Iterator[dict[str, Any]]:
        self._refresh_now(*S.KINDS)
        batch: list[dict[str, Any]] = []
        for h in self._scan("listings", {"match_all": {}}, [{"key": "asc"}], True, page=500):
            batch.append(public(h["_source"]))
            if len(batch) == 500:
                yield from self._with_history(batch)
                batch = []
        if batch:
            yield from self._with_history(batch)

    def _with_history(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        keys = [d["key"] for d in batch]
        by: dict[str, dict[str, list[dict[str, Any]]]] = {k: {"observations": [], "changes": [], "verdicts": [], "evidence": []} for k in keys}
        spec = {"observations": ([{"key": "asc"}, {"first_seen": "asc"}, {"seq": "asc"}], ("content_hash", "first_seen", "last_seen", "times", "data")),
                "changes": ([{"key": "asc"}, {"at": "asc"}, {"seq": "asc"}], ("at", "field", "old", "new")),
                "verdicts": ([{"key": "asc"}, {"at": "asc"}, {"seq": "asc"}], ("at", "verdict", "risk", "tis_no", "licence_no", "reasons", "registry_version")),
                "evidence": ([{"key": "asc"}, {"seq": "asc"}], ("kind", "path", "sha256", "size", "created_at", "pruned_at"))}
        for kind, (sort, fields) in spec.items():
            for h in self._scan(kind, {"terms": {"key": keys}}, sort):
                s = h["_source"]
                row = {f: s.get(f) for f in fields}
                if kind == "verdicts":
                    row["reasons"] = list(row["reasons"] or [])
                by[s["key"]][kind].append(row)
        for d in batch:
            b = by[d["key"]]
            d["history"] = {"observations": b["observations"], "changes": b["changes"], "verdicts": b["verdicts"]}
            d["evidence"] = b["evidence"]
            yield d

    def dump(self) -> Iterator[dict[str, Any]]:
        yield {"type": "meta", "schema_version": SCHEMA_VERSION, "backend": "elasticsearch"}
        for d in self.export():
            d["type"] = "listing"
            yield d
        for h in self._scan("crawl", {"match_all": {}}, [{"marketplace": "asc"}, {"ref": "asc"}]):
            s = h["_source"]
            yield {"type": "crawl_state", "marketplace": s["marketplace"], "ref": s["ref"], "keys": list(s.get("keys") or []),
                   "card_hash": s.get("card_hash"), "fetched_at": s["fetched_at"]}
        # the listings' pictures (images/), one record per listing: a reindex keeps the re-used photos
        key, pics = None, []
        for h in self._scan("images", {"match_all": {}}, [{"key": "asc"}, {"idx": "asc"}]):
            s = h["_source"]
            if s["key"] != key and pics:
                yield {"type": "listing_images", "key": key, "images": pics}
                pics = []
            key = s["key"]
            pics.append({"index": s["idx"], "url": s.get("url"), "sha256": s["sha256"], "phash": s["phash"], "width": s.get("width"),
                         "height": s.get("height"), "first_seen": _iso(s["first_seen"]), "last_seen": _iso(s["last_seen"])})
        if pics:
            yield {"type": "listing_images", "key": key, "images": pics}

    def load(self, records: Iterable[dict[str, Any]], batch: int = 200) -> int:
        n = sum(self._load(part) for part in dump_record_batches(records, batch))
        if self.refresh:
            self._refresh_now(*S.KINDS)
        return n

    def _load(self, recs: list[dict[str, Any]]) -> int:
        keys = [r["key"] for r in recs if r.get("type", "listing") == "listing"]
        if keys:
            for kind in ("observations", "changes", "verdicts", "evidence"):
                self._req("POST", f"/{self.a(kind)}/_delete_by_query", {"query": {"terms": {"key": keys}}},
                          params={"refresh": "true", "conflicts": "proceed"})
        actions: list[dict[str, Any] | None] = []
        for rec in recs:
            if rec.get("type") == "listing_images":
                actions += self._image_actions(rec["key"], rec.get("images") or [])
                continue
            if rec.get("type") == "crawl_state":
                actions += [{"index": {"_index": self.a("crawl"), "_id": _hid(rec["marketplace"], rec["ref"])}},
                            {k: rec.get(k) for k in ("marketplace", "ref", "card_hash", "fetched_at")} |
                            {"keys": list(rec.get("keys") or []), "key": (rec.get("keys") or [None])[0]}]
                continue
            key = rec["key"]
            hist = rec.get("history") or {}
            doc = {f: rec.get(f) for f in LISTING_FIELDS}
            doc["review_status"] = doc.get("review_status") or "new"
            doc["tis_base"] = P.tis_base(rec.get("tis_no"))
            doc["seller_norm"] = P.seller_norm(rec.get("seller"))
            doc["seller_key"] = f"{rec['marketplace']}\x1f{rec['seller_id']}" if rec.get("seller_id") else None
            doc["words"] = Q.search_words(rec)
            latest = None
            for o in hist.get("observations", []):
                seq = self._seq()
                oid = _hid(key, o["first_seen"], o["content_hash"], seq)
                actions += [{"index": {"_index": self.a("observations"), "_id": oid}},
                            {"key": key, "content_hash": o["content_hash"], "first_seen": o["first_seen"], "last_seen": o["last_seen"],
                             "times": o.get("times", 1), "seq": seq, "data": o["data"]}]
                if latest is None or o["first_seen"] >= latest["first_seen"]:
                    latest = {"index": None, "id": oid, "content_hash": o["content_hash"], "first_seen": o["first_seen"],
                              "last_seen": o["last_seen"], "times": o.get("times", 1), "seq": seq}
            doc["obs"] = latest
            for c in hist.get("changes", []):
                seq = self._seq()
                actions += [{"index": {"_index": self.a("changes"), "_id": _hid(key, c["at"], c["field"], seq)}},
                            {"key": key, "at": c["at"], "field": c["field"], "old": c.get("old"), "new": c.get("new"), "seq": seq}]
            for v in hist.get("verdicts", []):
                seq = self._seq()
                actions += [{"index": {"_index": self.a("verdicts"), "_id": _hid(key, v["at"], "verdict", seq)}},
                            {"key": key, **{f: v.get(f) for f in ("at", "verdict", "risk", "tis_no", "licence_no", "registry_version")},
                             "reasons": list(v.get("reasons") or []), "seq": seq}]
            for e in rec.get("evidence", []):
                seq = self._seq()
                actions += [{"index": {"_index": self.a("evidence"), "_id": _hid(key, e["path"], e["sha256"], seq)}},
                            {"key": key, **{f: e.get(f) for f in ("kind", "path", "sha256", "size", "created_at", "pruned_at")}, "seq": seq}]
            actions += [{"index": {"_index": self.a("listings"), "_id": key}}, _with_grams(doc)]
        items = self._bulk(actions, refresh=False)
        where = {i["_id"]: i["_index"] for i in items if i.get("_index", "").startswith(self.prefix + "-observations")}
        fix: list[dict[str, Any] | None] = []
        for a in actions:
            if a is not None and isinstance(a.get("obs"), dict) and a["obs"].get("index") is None:
                a["obs"]["index"] = where.get(a["obs"]["id"])
                fix += [{"index": {"_index": self.a("listings"), "_id": a["key"]}}, a]  # grams included already
        self._bulk(fix, refresh=False)
        return len(recs)


def _with_grams(doc: dict[str, Any]) -> dict[str, Any]:
    """A listing document as written: with its trigrams (left out of _source, so made on every write)
    and the standards and claimed licences of its verdict's detail (indexed for `affected_keys`)."""
    detail = doc.get("detail") or {}
    bases = {P.tis_base(x) for x in detail.get("standards") or [] if isinstance(x, str)}
    lics = {str(c.get("value")) for c in detail.get("claims") or [] if isinstance(c, dict) and c.get("kind") == "licence"}
    return {**doc, "grams": Q.trigrams(Q.substring_text(doc)), "std_bases": sorted(b for b in bases if b),
            "claimed_licences": sorted(lics)}


def _quote(key: str) -> str:
    from urllib.parse import quote

    return quote(key, safe="")


def _chunk_bulk(actions: list[dict[str, Any] | None], max_bytes: int = 8_000_000, max_actions: int = 2000) -> Iterator[list[dict[str, Any] | None]]:
    """Split bulk actions (each an action line, maybe followed by its source) into requests."""
    part: list[dict[str, Any] | None] = []
    size = 0
    n = 0
    it = iter(actions)
    for a in it:
        group = [a]
        if a is not None and any(k in a for k in ("index", "create", "update")):
            group.append(next(it, None))
        est = sum(len(str(x)) for x in group)
        if part and (size + est > max_bytes or n >= max_actions):
            yield part
            part, size, n = [], 0, 0
        part += group
        size += est
        n += 1
    if part:
        yield part

