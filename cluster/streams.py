"""The Redis streams of the distributed mode.

`<ns>:listings` carries crawled listings from the crawlers to the workers (consumer group "check"):
each entry is `t` (the type: "listing", or "run_end" when a crawl run finished) and `d` (JSON). A
worker reads with XREADGROUP, acknowledges with XACK once the listing is checked and indexed, and
claims with XAUTOCLAIM what a dead worker left pending. Entries every group has acknowledged are
trimmed (XTRIM MINID), so the stream holds only the backlog; crawlers wait while the backlog exceeds
[distributed] max_backlog instead of filling Redis' memory.

`<ns>:events` carries listing events (DOMAIN: the listing event log) from processes on other
machines to the one relay that appends them to the data directory's events.sqlite (group "relay").
Each event carries a dedupe key: the relay appends it at most once even when it is delivered twice.
Consumers (alerts, metrics) keep reading events.sqlite as before: in order, by integer id, from a
cursor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cluster.keys import EVENTS_GROUP, LISTINGS_GROUP, Keys

log = logging.getLogger(__name__)


def ensure_group(r: Any, stream: str, group: str) -> None:
    """Create the consumer group (and the stream) unless it exists; a new group starts at the stream's
    beginning, so nothing added before the first consumer came is missed."""
    import redis

    try:
        r.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def _id_tuple(i: bytes | str) -> tuple[int, int]:
    s = i.decode() if isinstance(i, bytes) else i
    a, _, b = s.partition("-")
    return int(a), int(b or 0)


def safe_trim_id(r: Any, stream: str) -> str | None:
    """The oldest entry some group may still need: the smallest id pending in any group, else the
    oldest last-delivered id. Everything before it can go. None when there is no group."""
    import redis

    try:
        groups = r.xinfo_groups(stream)
    except redis.ResponseError:
        return None
    if not groups:
        return None
    low: tuple[int, int] | None = None
    for g in groups:
        name = g["name"]
        ms, seq = _id_tuple(g["last-delivered-id"])
        cand = (ms, seq + 1)  # everything up to the last delivered entry, when nothing is pending
        if int(g.get("pending") or 0) > 0:
            p = r.xpending(stream, name)
            if p and p.get("min"):
                cand = min(cand, _id_tuple(p["min"]))
        low = cand if low is None else min(low, cand)
    assert low is not None
    return f"{low[0]}-{low[1]}"


def trim(r: Any, stream: str) -> int:
    """Drop the entries every consumer group is done with; returns how many went."""
    mid = safe_trim_id(r, stream)
    if mid is None or mid == "0-0":
        return 0
    return int(r.xtrim(stream, minid=mid, approximate=False))


def group_state(r: Any, stream: str, group: str) -> dict[str, Any]:
    """pending (taken, not acknowledged), lag (not yet taken; None when Redis cannot tell), length."""
    import redis

    out: dict[str, Any] = {"length": 0, "pending": 0, "lag": None, "consumers": 0, "exists": False}
    try:
        out["length"] = int(r.xlen(stream))
        for g in r.xinfo_groups(stream):
            if (g["name"].decode() if isinstance(g["name"], bytes) else g["name"]) == group:
                out.update(exists=True, pending=int(g.get("pending") or 0), consumers=int(g.get("consumers") or 0),
                           lag=g.get("lag"), last_delivered=g["last-delivered-id"])
    except redis.ResponseError:
        pass
    return out


def drained(r: Any, keys: Keys) -> bool:
    """Have the workers taken and finished every listing on the stream?"""
    st = group_state(r, keys.listings, LISTINGS_GROUP)
    if not st["exists"]:
        return st["length"] == 0
    lag = st["lag"]
    if lag is None:  # Redis cannot tell (entries were deleted): compare with the newest entry
        last = r.xrevrange(keys.listings, count=1)
        lag = 0 if not last or _id_tuple(last[0][0]) <= _id_tuple(st["last_delivered"]) else 1
    return st["pending"] == 0 and int(lag) == 0


def add_listing(r: Any, keys: Keys, payload: dict[str, Any]) -> bytes:
    return r.xadd(keys.listings, {"t": "listing", "d": json.dumps(payload, ensure_ascii=False, default=str)})


# ---- the event log's producer side --------------------------------------------------------------
class StreamEventLog:
    """The listing event log (listings/events.py) for processes away from the data directory: `append`
    and `append_many` as EventLog's, onto the events stream; the relay (cluster/worker.py, run by
    `tiswatch run` and `tiswatch worker --role relay`) appends them to events.sqlite, where the alerts
    and the metrics read them."""

    def __init__(self, r: Any, keys: Keys):
        self.r = r
        self.keys = keys

    def append(self, kind: str, key: str, data: dict[str, Any] | None = None, *, at: datetime | None = None,
               dedupe: str | None = None) -> int | None:
        from listings.events import KINDS

        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(KINDS)})")
        self.r.xadd(self.keys.events, _event_fields(kind, key, data, at, dedupe))
        return None  # the id is given by the relay, in events.sqlite

    def append_many(self, events: Iterable[tuple[str, str, dict[str, Any]]], at: datetime | None = None) -> int:
        from listings.events import KINDS

        evs = list(events)
        for k, _, _ in evs:
            if k not in KINDS:
                raise ValueError(f"unknown event kind {k!r}")
        pipe = self.r.pipeline(transaction=True)
        for k, key, d in evs:
            pipe.xadd(self.keys.events, _event_fields(k, key, d, at, None))
        pipe.execute()
        return len(evs)

    def read(self, *a: Any, **kw: Any):
        raise NotImplementedError("events are read from the data directory's event log (events.sqlite), "
                                  "which the relay fills from the events stream")

    def last_id(self) -> int:
        raise NotImplementedError("see read()")

    def close(self) -> None:
        pass


def _event_fields(kind: str, key: str, data: dict[str, Any] | None, at: datetime | None, dedupe: str | None) -> dict[str, str]:
    when = (at or datetime.now(UTC))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    f = {"kind": kind, "key": key, "data": json.dumps(data or {}, ensure_ascii=False, default=str),
         "at": when.astimezone(UTC).isoformat(timespec="microseconds")}
    if dedupe:
        f["dedupe"] = dedupe
    return f


def relay_events(r: Any, keys: Keys, events: Any, consumer: str, *, block_ms: int = 1000, count: int = 500,
                 claim_idle_ms: int = 60_000) -> int:
    """Move events from the stream into `events` (an EventLog) once: claim what a dead relay left,
    read new ones, append each (with its dedupe key, or the stream id as one: a second delivery is
    ignored), acknowledge, trim. Returns how many were appended."""
    ensure_group(r, keys.events, EVENTS_GROUP)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    for _, es in r.xreadgroup(EVENTS_GROUP, consumer, {keys.events: "0"}, count=count) or []:
        entries += [e for e in es if e and e[1]]  # ours, not appended yet (an error last time)
    if not entries:
        claimed = r.xautoclaim(keys.events, EVENTS_GROUP, consumer, min_idle_time=claim_idle_ms, start_id="0-0",
                               count=count)
        entries += [e for e in claimed[1] if e and e[1]]
    if not entries:
        got = r.xreadgroup(EVENTS_GROUP, consumer, {keys.events: ">"}, count=count, block=block_ms)
        for _, es in got or []:
            entries += es
    n = 0
    done: list[bytes] = []
    for eid, f in entries:
        sid = eid.decode()
        try:
            kind = f[b"kind"].decode()
            data = json.loads(f[b"data"])
            at = datetime.fromisoformat(f[b"at"].decode())
            dedupe = f[b"dedupe"].decode() if b"dedupe" in f else f"stream:{sid}"
            if events.append(kind, f[b"key"].decode(), data, at=at, dedupe=dedupe) is not None:
                n += 1
        except (KeyError, ValueError) as e:
            log.error("event %s on %s is not valid (%s); dropped: %r", sid, keys.events, e, f)
        done.append(eid)
    if done:
        r.xack(keys.events, EVENTS_GROUP, *done)
        trim(r, keys.events)
    return n
