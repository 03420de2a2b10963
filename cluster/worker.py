"""`tiswatch worker`: the processes that check and index crawled listings, apart from the crawlers.

Role "check" (any number, on any machines): reads the listing stream in the consumer group "check"
(XREADGROUP), checks each listing against the licence registry (matching.check, with the claims the
crawl read from its pictures), indexes a batch with one bulk ingestion into the store (the shared
Elasticsearch/OpenSearch index), records the crawl bookkeeping and the evidence references, sends the
verdict and relisting events, and acknowledges (XACK). Entries a worker took and did not finish (it
died, or the index failed) are claimed by another after [distributed] claim_idle_seconds (XAUTOCLAIM);
an entry delivered [distributed] max_deliveries times without success goes to the dead letters
(`tiswatch cluster dead`), so one poisonous listing never blocks the others.

Ingestion is idempotent: the same entry indexed twice is one sighting (listings/plan.py), and its
events carry dedupe keys (the listing and the time it was seen), so a redelivered entry neither loses
nor doubles an event: when the first attempt indexed the listing but died before sending its event, the
second finds the verdict in the listing's history and sends it then.

A `run_end` entry (a crawl run finished) is handled once every entry before it is acknowledged: if
the run saw the whole marketplace, what it did not see is marked delisted (as the embedded crawl does).

Role "relay" (one, on the machine with the data directory of `tiswatch run`; `tiswatch run` starts it
itself in distributed mode): appends the event stream to events.sqlite, where the alerts and metrics
read it, and publishes the licence registry to Redis whenever an import changes it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cluster import streams
from cluster.frontier import process_name
from cluster.keys import LISTINGS_GROUP, Keys, connect

log = logging.getLogger(__name__)
REGISTRY_CHECK_SECONDS = 10.0
TRIM_SECONDS = 2.0


def _iso(dt: datetime | None) -> str:
    from listings.sqlite_store import iso

    return iso(dt)


def decode_claims(data: list[dict[str, Any]] | None) -> list[Any]:
    """Claims read from pictures (matching/image_claims.py) as the crawl sent them."""
    if not data:
        return []
    from matching.claims import Claim

    try:
        from matching.image_claims import ImageClaim
    except ImportError:  # pragma: no cover
        ImageClaim = Claim  # type: ignore[misc,assignment]
    out = []
    for d in data:
        d = dict(d)
        cls = ImageClaim if d.pop("_type", "") == "ImageClaim" else Claim
        for k in ("span", "box", "image_size"):
            if isinstance(d.get(k), list):
                d[k] = tuple(d[k])
        names = set(getattr(cls, "__dataclass_fields__", {}))
        out.append(cls(**{k: v for k, v in d.items() if k in names}))
    return out


def run_steps(step: Callable[[], int], done: Callable[[int], bool] | None, stop: threading.Event, label: str) -> None:
    """Call `step` until `stop` is set or `done(n)` holds for the count it returned. A failing step
    (the index or Redis away) is logged and tried again after 0.5 s, doubling up to 30 s."""
    delay = 0.5
    while not stop.is_set():
        try:
            n = step()
            delay = 0.5
        except Exception as e:
            log.error("%s: %s; trying again in %.0fs", label, e, delay)
            stop.wait(delay)
            delay = min(30.0, delay * 2)
            continue
        if done is not None and done(n):
            break


@dataclass
class Entry:
    id: bytes
    kind: str
    data: dict[str, Any]
    listing: Any = None
    redelivered: bool = False


@dataclass
class WorkerStats:
    indexed: int = 0
    entries: int = 0
    dead: int = 0
    claimed: int = 0
    failures: int = 0
    runs_ended: int = 0
    delisted: int = 0
    verdict_events: int = 0
    by_verdict: Counter = field(default_factory=Counter)


class CheckWorker:
    """One consumer of the listing stream (see the module's docstring)."""

    def __init__(self, settings: Any, name: str | None = None, *, r: Any = None, keys: Keys | None = None,
                 store: Any = None, events: Any = None, batch: int | None = None):
        d = settings.distributed
        self.settings = settings
        self.r = r or connect(d.redis_url)
        self.keys = keys or Keys(d.namespace)
        self.name = name or process_name()
        self.batch = batch or d.worker_batch
        self.claim_idle_ms = int(d.claim_idle_seconds * 1000)
        self.max_deliveries = d.max_deliveries
        if store is None:
            from listings.store import open_store

            store = open_store(settings)
        self.store = store
        self.events = events or streams.StreamEventLog(self.r, self.keys)
        self.stats = WorkerStats()
        self._registry: Any = None
        self._registry_version: str | None = None
        self._registry_checked = 0.0
        self._deferred: dict[bytes, Entry] = {}
        self._read_own = True  # at start: what this consumer took and did not finish (a restart)
        self._last_trim = 0.0
        self._last_claim = 0.0
        streams.ensure_group(self.r, self.keys.listings, LISTINGS_GROUP)

    # ---- the registry ---------------------------------------------------------------------------------
    def registry(self):
        now = time.monotonic()
        if self._registry is None or now - self._registry_checked > REGISTRY_CHECK_SECONDS:
            self._registry_checked = now
            from cluster.registry import load_registry, published_version

            v = published_version(self.r, self.keys)
            if self._registry is None or (v is not None and v != self._registry_version):
                self._registry = load_registry(self.settings, self.r, self.keys)
                self._registry_version = self._registry.version
                log.info("checking against licence registry %s (%d licences)", self._registry.version,
                         len(self._registry.by_no))
        return self._registry

    # ---- reading ------------------------------------------------------------------------------------------
    def _read(self, block_ms: int) -> list[Entry]:
        raw: list[tuple[bytes, dict[bytes, bytes]]] = []
        redelivered = False
        if self._read_own:
            self._read_own = False
            for _, es in self.r.xreadgroup(LISTINGS_GROUP, self.name, {self.keys.listings: "0"}, count=10_000) or []:
                raw += [e for e in es if e[1]]
            redelivered = bool(raw)
        if not raw and time.monotonic() - self._last_claim > min(5.0, self.claim_idle_ms / 1000 / 2):
            self._last_claim = time.monotonic()
            res = self.r.xautoclaim(self.keys.listings, LISTINGS_GROUP, self.name, min_idle_time=self.claim_idle_ms,
                                    start_id="0-0", count=self.batch)
            raw += [e for e in res[1] if e and e[1]]
            for eid in res[2] if len(res) > 2 else []:  # deleted while pending: nothing to do but acknowledge
                self.r.xack(self.keys.listings, LISTINGS_GROUP, eid)
            if raw:
                redelivered = True
                self.stats.claimed += len(raw)
                log.info("claimed %d listings another worker did not finish", len(raw))
        if not raw:
            for _, es in self.r.xreadgroup(LISTINGS_GROUP, self.name, {self.keys.listings: ">"}, count=self.batch,
                                           block=block_ms) or []:
                raw += es
        return [self._parse(eid, f, redelivered) for eid, f in raw]

    def _parse(self, eid: bytes, f: dict[bytes, bytes], redelivered: bool) -> Entry:
        try:
            kind = f[b"t"].decode()
            data = json.loads(f[b"d"])
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except (KeyError, ValueError, UnicodeDecodeError) as e:
            return Entry(eid, "bad", {"error": f"unreadable entry: {e}", "fields": {k.decode(errors='replace'): v.decode(errors='replace') for k, v in f.items()}})
        e = Entry(eid, kind, data, redelivered=redelivered)
        if kind == "listing":
            from pydantic import ValidationError

            from listings.model import Listing

            try:
                e.listing = Listing.model_validate(data.get("listing") or {})
            except ValidationError as err:
                first = err.errors()[0]
                e.kind = "bad"
                e.data = {"error": f"invalid listing: {'.'.join(str(x) for x in first['loc'])}: {first['msg']}",
                          "entry": data}
        elif kind != "run_end":
            e.kind, e.data = "bad", {"error": f"unknown entry type {kind!r}", "entry": data}
        return e

    def _deliveries(self, eid: bytes) -> int:
        rows = self.r.xpending_range(self.keys.listings, LISTINGS_GROUP, min=eid, max=eid, count=1)
        return int(rows[0]["times_delivered"]) if rows else 1

    def _dead(self, e: Entry, why: str) -> None:
        self.r.xadd(self.keys.dead, {"id": e.id, "error": why, "d": json.dumps(e.data, ensure_ascii=False, default=str),
                                     "worker": self.name, "at": datetime.now(UTC).isoformat(timespec="seconds")},
                    maxlen=100_000, approximate=True)
        self.r.xack(self.keys.listings, LISTINGS_GROUP, e.id)
        self.stats.dead += 1
        log.error("listing stream entry %s to the dead letters: %s", e.id.decode(), why)

    # ---- one round ------------------------------------------------------------------------------------
    def step(self, block_ms: int = 1000) -> int:
        """Read, process and acknowledge one batch; returns how many entries were handled."""
        entries = self._read(block_ms)
        listings: list[Entry] = []
        for e in entries:
            if e.kind == "bad":
                self._dead(e, e.data.get("error", "bad entry"))
            elif e.redelivered and self._deliveries(e.id) > self.max_deliveries:
                self._dead(e, f"delivered more than {self.max_deliveries} times without success")
            elif e.kind == "run_end":
                self._deferred[e.id] = e
            else:
                listings.append(e)
        if listings:
            self._index_batch(listings)
        self._run_ends()
        if not entries or time.monotonic() - self._last_trim > TRIM_SECONDS:
            self._last_trim = time.monotonic()
            streams.trim(self.r, self.keys.listings)
        return len(entries)

    def _index_batch(self, batch: list[Entry]) -> None:
        try:
            self._index(batch)
            return
        except Exception as e:
            self.stats.failures += 1
            if len(batch) == 1:
                log.error("listing %s not indexed (%s); it is retried after claim_idle_seconds", batch[0].listing.key, e)
                return
            log.warning("a batch of %d listings failed (%s); indexing them one by one", len(batch), e)
        for one in batch:
            one.redelivered = True  # the batch may have been indexed before it failed: its events are recovered
            try:
                self._index([one])
            except Exception as e:
                self.stats.failures += 1
                log.error("listing %s not indexed (%s); it is retried after claim_idle_seconds", one.listing.key, e)

    def _index(self, batch: list[Entry]) -> None:
        from listings.events import verdict_event
        from matching import check

        reg = self.registry()
        checked = []
        for e in batch:
            claims = decode_claims(e.data.get("image_claims"))
            v = check(e.listing, reg, image_claims=claims or None)
            checked.append((e.listing, v, e.listing.observed_at))
        results = self.store.ingest_many(checked)
        for e, (listing, v, at), res in zip(batch, checked, results, strict=True):
            key = listing.key
            when = at or datetime.now(UTC)
            if e.data.get("ref"):
                self.store.record_fetch(listing.marketplace, e.data["ref"], e.data.get("ref_keys") or [key],
                                        e.data.get("card"), when)
            if e.data.get("evidence"):
                self._evidence(key, e.data["evidence"])
            vkey = f"verdict:{key}:{_iso(when)}"
            if res.verdict_changed:
                self.events.append("verdict", key, verdict_event(v, res.previous_verdict, listing.marketplace, "crawl"),
                                   dedupe=vkey)
                self.stats.verdict_events += 1
            elif e.redelivered:
                self._recover_events(key, listing.marketplace, v, when, vkey)
            if any(c[0] == "relisted" for c in res.changes):
                self.events.append("relisted", key, {"marketplace": listing.marketplace}, dedupe=f"relisted:{key}:{_iso(when)}")
            self.stats.by_verdict[v.verdict] += 1
        self.r.xack(self.keys.listings, LISTINGS_GROUP, *[e.id for e in batch])
        self.stats.indexed += len(batch)
        self.stats.entries += len(batch)

    def _evidence(self, key: str, files: list[dict[str, Any]]) -> None:
        have = {(x["path"], x["sha256"]) for x in self.store.evidence(key)}
        for f in files:
            if (f["path"], f["sha256"]) in have:
                continue  # recorded by an earlier delivery of this entry
            self.store.add_evidence(key, f["kind"], f["path"], f["sha256"], int(f["size"]),
                                    datetime.fromisoformat(f["created_at"]) if f.get("created_at") else None)

    def _recover_events(self, key: str, marketplace: str, v: Any, when: datetime, vkey: str) -> None:
        """A redelivered entry whose listing is already indexed: if this sighting is what changed its
        verdict (the last verdict in its history is of this time), the event may not have been sent;
        send it again (the relay drops it if it was)."""
        from listings.events import verdict_event

        hist = self.store.history(key).get("verdicts") or []
        if hist and hist[-1].get("at") == _iso(when):
            prev = hist[-2]["verdict"] if len(hist) > 1 else None
            self.events.append("verdict", key, verdict_event(v, prev, marketplace, "crawl"), dedupe=vkey)

    def _run_ends(self) -> None:
        """Crawl runs that finished: once every entry before theirs is acknowledged, mark delisted what
        a complete run did not see."""
        for eid, e in sorted(self._deferred.items()):
            earlier = self.r.xpending_range(self.keys.listings, LISTINGS_GROUP, min="-", max=b"(" + eid, count=1)
            if earlier:
                return  # listings of the run are still being indexed (here or by another worker)
            p = e.data
            mp = p.get("marketplace", "")
            if p.get("complete") and int(p.get("seen") or 0) > 0 and mp:
                since = datetime.fromisoformat(p["started"])
                gone = self.store.mark_delisted(mp, set(), since)
                for k in gone:
                    d = self.store.get(k) or {}
                    self.events.append("delisted", k, {"marketplace": mp, "last_seen": d.get("last_seen")},
                                       dedupe=f"delisted:{k}:{mp}:{p.get('run')}")
                self.stats.delisted += len(gone)
                log.info("%s run %s finished complete: %d listings it did not see marked delisted", mp, p.get("run"), len(gone))
            else:
                log.info("%s run %s finished (%s): nothing marked delisted", mp, p.get("run"),
                         "incomplete" if not p.get("complete") else "saw nothing")
            self.r.xack(self.keys.listings, LISTINGS_GROUP, eid)
            self.stats.runs_ended += 1
            del self._deferred[eid]

    def idle(self) -> bool:
        """Nothing left for this worker: no run end waiting, the stream drained."""
        return not self._deferred and streams.drained(self.r, self.keys)

    def run(self, stop: threading.Event | None = None, *, drain: bool = False, block_ms: int = 1000) -> WorkerStats:
        """Work until `stop` is set (or, with `drain`, until the stream is empty). A failing index or
        Redis makes it wait and try again, longer each time (at most 30 s)."""
        run_steps(lambda: self.step(block_ms), (lambda n: n == 0 and self.idle()) if drain else None,
                  stop or threading.Event(), f"worker {self.name}")
        return self.stats

    def close(self) -> None:
        try:
            self.store.close()
        except Exception:
            pass


class Relay:
    """Events from the stream into the data directory's event log; the registry into Redis."""

    def __init__(self, settings: Any, name: str | None = None, *, r: Any = None, keys: Keys | None = None, events: Any = None):
        d = settings.distributed
        self.settings = settings
        self.r = r or connect(d.redis_url)
        self.keys = keys or Keys(d.namespace)
        self.name = name or process_name()
        if events is None:
            from listings.events import open_events

            events = open_events(settings)
        self.events = events
        self.claim_idle_ms = int(d.claim_idle_seconds * 1000)
        self.relayed = 0
        self._published = 0.0

    def step(self, block_ms: int = 1000) -> int:
        if time.monotonic() - self._published > REGISTRY_CHECK_SECONDS:
            self._published = time.monotonic()
            from cluster.registry import publish

            publish(self.r, self.keys, self.settings)
        n = streams.relay_events(self.r, self.keys, self.events, self.name, block_ms=block_ms,
                                 claim_idle_ms=self.claim_idle_ms)
        self.relayed += n
        return n

    def run(self, stop: threading.Event | None = None, *, drain: bool = False, block_ms: int = 1000) -> int:
        run_steps(lambda: self.step(block_ms),
                  (lambda n: n == 0 and int(self.r.xlen(self.keys.events)) == 0) if drain else None,
                  stop or threading.Event(), f"relay {self.name}")
        return self.relayed

    def close(self) -> None:
        try:
            self.events.close()
        except Exception:
            pass


def start_relay_thread(settings: Any) -> tuple[threading.Thread, threading.Event]:
    """The relay in a background thread (what `tiswatch run` does in distributed mode)."""
    stop = threading.Event()
    relay = Relay(settings)

    def go() -> None:
        try:
            relay.run(stop)
        finally:
            relay.close()

    t = threading.Thread(target=go, name="tiswatch-relay", daemon=True)
    t.start()
    return t, stop
