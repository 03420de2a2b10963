"""The crawl frontier on Redis: one crawl run of a marketplace split between any number of crawler
processes on any machines, with the guarantees of the embedded frontier (crawlers/frontier.py): no
page fetched twice, none lost when a process dies (kill -9 included).

Plain scrapy-redis pops a request off a shared queue; a process killed while fetching it loses it.
Here a pop is a **lease** (the reliable-queue pattern):

- `push` records a request under its key (the request fingerprint, or meta["frontier_key"]) in the
  run's duplicate filter and, when it is new, in the queue. Filter and queue change in one Lua script,
  so a request is never marked seen without being queued.
- `pop` moves the key from the queue to the lease set with a deadline (Redis' clock, so machines'
  clocks do not matter) and records which process holds it. The holder renews its leases while it
  lives (`renew`, every lease_seconds/3).
- `ack` ends a lease once the response and everything it yielded is recorded: its requests pushed
  (before the ack, by the crawl's spider middleware) and its listings on the worker stream.
- `reclaim` (any process, periodically) puts keys whose lease expired back in the queue; a key whose
  lease expired `max_attempts` times (a page that kills its crawler every time) is given up and
  reported, so one poisonous page cannot stall a run for ever.
- `release` hands a stopping process's leases back at once (SIGTERM, a block page).
- A retry of a request the process holds (the retry middleware's, with dont_filter) replaces its
  queued copy instead of being dropped as a duplicate.

A run is shared: the first process creates it and **seeds** it (the start requests) under a lock with a
deadline, so another process takes over a seeding that died; the others join. The run is **finished**
by whichever process finds it idle (seeded, nothing queued, nothing leased) in one script that also
appends a `run_end` entry to the listing stream, so the workers can mark delisted what a complete crawl
no longer saw once they have indexed everything before it. A run's keys carry a TTL refreshed while
processes work on it ([distributed] run_ttl_hours); the duplicate filter is deleted when it finishes.

Duplicate filter (memory, measured in tests/bench/bench_scaleout.py):
- "exact": 96 bits of each key's BLAKE2b hash in small hashes (buckets by the other 32 bits), which Redis
  keeps in its compact listpack encoding: no false positives, about 20 bytes a key;
- "bloom": a Bloom filter over one Redis bitmap (SETBIT/GETBIT), sized from expected_requests and
  bloom_error_rate; smaller, but a false positive skips a page.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cluster.keys import Keys
from crawlers.frontier import Run

SCORE_SPAN = 2 ** 33  # queue score = -priority * SCORE_SPAN - sequence: higher priority first, then newest
MAX_BLOOM_BITS = 2 ** 32  # one Redis string holds at most 512 MB


def process_name() -> str:
    """A name for this process that no other process (here or on another machine) will ever have."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# ---- the duplicate filter ------------------------------------------------------------------------
@dataclass(frozen=True)
class FilterSpec:
    """How a run's duplicate filter is laid out; fixed when the run is created, read by every joiner."""

    mode: str = "exact"
    buckets: int = 16384
    bits: int = 0
    hashes: int = 0

    @classmethod
    def plan(cls, mode: str, expected: int, error_rate: float = 1e-7) -> FilterSpec:
        """Exact: ~64 keys a bucket at `expected` (a listpack stays compact up to 128); Bloom: the
        optimal bits m = -n·ln p / ln² 2 and hashes k = m/n · ln 2."""
        expected = max(1000, int(expected))
        if mode == "bloom":
            bits = math.ceil(-expected * math.log(error_rate) / math.log(2) ** 2)
            if bits > MAX_BLOOM_BITS:
                raise ValueError(f"a Bloom filter for {expected} requests at error rate {error_rate} needs {bits} bits, "
                                 f"more than one Redis bitmap holds ({MAX_BLOOM_BITS}); use dupefilter = \"exact\" "
                                 "or a smaller expected_requests")
            return cls("bloom", 0, bits, max(1, round(bits / expected * math.log(2))))
        buckets = 1 << max(8, min(24, math.ceil(math.log2(expected / 64))))
        return cls("exact", buckets, 0, 0)

    def as_fields(self) -> dict[str, str]:
        return {"filter": self.mode, "buckets": str(self.buckets), "bloom_bits": str(self.bits),
                "bloom_hashes": str(self.hashes)}

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> FilterSpec:
        return cls(f.get("filter", "exact"), int(f.get("buckets") or 16384), int(f.get("bloom_bits") or 0),
                   int(f.get("bloom_hashes") or 0))

    def locate(self, key: str) -> tuple[str, list[bytes | int]]:
        """(the filter key's suffix, the script arguments) for a request key. Pure."""
        h = hashlib.blake2b(key.encode(), digest_size=16).digest()
        if self.mode == "bloom":
            h1 = int.from_bytes(h[:8], "big")
            h2 = int.from_bytes(h[8:], "big") | 1
            return "bloom", [(h1 + i * h2) % self.bits for i in range(self.hashes)]
        return f"seen:{int.from_bytes(h[:4], 'big') % self.buckets:x}", [h[4:]]

    def keys(self, base: str) -> Iterable[str]:
        """Every Redis key of the filter (for deleting it)."""
        if self.mode == "bloom":
            yield f"{base}bloom"
        else:
            for b in range(self.buckets):
                yield f"{base}seen:{b:x}"


# ---- the scripts ----------------------------------------------------------------------------------
# Every script first checks that the run is the open one it was called for: a process still working on
# a run that finished (or was abandoned with --fresh) changes nothing of the next one.
_GUARD = """
local run = KEYS[1]
if redis.call('HGET', run, 'id') ~= ARGV[1] or redis.call('HGET', run, 'state') ~= 'open' then return {-1} end
local function now_ms(given)
  local n = tonumber(given)
  if n and n > 0 then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function score(prio)
  return -tonumber(prio) * 8589934592 - redis.call('HINCRBY', run, 'seq', 1)
end
local function prio_of(pri, key)
  local v = redis.call('HGET', pri, key)
  if not v then return 0 end
  return tonumber(string.match(v, '^[^\\t]*')) or 0
end
"""

# KEYS run q req pri owner lease filter; ARGV run_id key data priority url dont_filter worker mode ttl_ms args...
PUSH = _GUARD + """
local q, req, pri, owner, lease, filt = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local key, worker = ARGV[2], ARGV[7]
if ARGV[6] == '1' and redis.call('HGET', owner, key) == worker then
  redis.call('ZREM', lease, key)
  redis.call('HDEL', owner, key)
  redis.call('HINCRBY', run, 'requeued', 1)
else
  local new = 0
  if ARGV[8] == 'bloom' then
    for i = 10, #ARGV do
      if redis.call('SETBIT', filt, ARGV[i], 1) == 0 then new = 1 end
    end
  else
    new = redis.call('HSETNX', filt, ARGV[10], '')
  end
  if new == 0 then
    redis.call('HINCRBY', run, 'duplicates', 1)
    return {0}
  end
  redis.call('HINCRBY', run, 'pushed', 1)
  redis.call('PEXPIRE', filt, ARGV[9])
end
redis.call('HSET', req, key, ARGV[3])
redis.call('HSET', pri, key, ARGV[4] .. '\\t' .. ARGV[5])
redis.call('ZADD', q, score(ARGV[4]), key)
for _, k in ipairs({q, req, pri}) do redis.call('PEXPIRE', k, ARGV[9]) end
return {1}
"""

# KEYS run filter; ARGV run_id mode args...  (read only: is the key in the filter?)
SEEN = _GUARD + """
if ARGV[2] == 'bloom' then
  for i = 3, #ARGV do
    if redis.call('GETBIT', KEYS[2], ARGV[i]) == 0 then return {0} end
  end
  return {1}
end
return {redis.call('HEXISTS', KEYS[2], ARGV[3])}
"""

# KEYS run q req owner lease; ARGV run_id worker lease_ms now_ms ttl_ms
POP = _GUARD + """
local q, req, owner, lease = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local r = redis.call('ZRANGE', q, 0, 0)
if #r == 0 then return {0} end
local key = r[1]
redis.call('ZREM', q, key)
redis.call('ZADD', lease, now_ms(ARGV[4]) + tonumber(ARGV[3]), key)
redis.call('HSET', owner, key, ARGV[2])
redis.call('PEXPIRE', lease, ARGV[5])
redis.call('PEXPIRE', owner, ARGV[5])
return {1, key, redis.call('HGET', req, key)}
"""

# KEYS run q req pri owner lease tries; ARGV run_id key worker state seen_delta incomplete
ACK = _GUARD + """
local q, req, pri, owner, lease, tries = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local key, worker = ARGV[2], ARGV[3]
local removed = 0
if redis.call('HGET', owner, key) == worker then
  redis.call('ZREM', lease, key)
  redis.call('HDEL', owner, key)
  removed = 1
elseif redis.call('ZREM', q, key) == 1 then
  -- our lease had expired and the key was queued again: done all the same, nobody need fetch it
  removed = 1
end
if removed == 1 then
  redis.call('HDEL', req, key)
  redis.call('HDEL', pri, key)
  redis.call('HDEL', tries, key)
  redis.call('HINCRBY', run, ARGV[4], 1)
end
if tonumber(ARGV[5]) > 0 then redis.call('HINCRBY', run, 'seen', ARGV[5]) end
if ARGV[6] == '1' then redis.call('HSET', run, 'incomplete', 1) end
return {removed}
"""

# KEYS run q pri owner lease; ARGV run_id worker keys...
RELEASE = _GUARD + """
local q, pri, owner, lease = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local n = 0
for i = 3, #ARGV do
  local key = ARGV[i]
  if redis.call('HGET', owner, key) == ARGV[2] then
    redis.call('ZREM', lease, key)
    redis.call('HDEL', owner, key)
    redis.call('ZADD', q, score(prio_of(pri, key)), key)
    n = n + 1
  end
end
return {n}
"""

# KEYS run owner lease; ARGV run_id worker lease_ms now_ms keys...
RENEW = _GUARD + """
local owner, lease = KEYS[2], KEYS[3]
local deadline = now_ms(ARGV[4]) + tonumber(ARGV[3])
local n = 0
for i = 5, #ARGV do
  if redis.call('HGET', owner, ARGV[i]) == ARGV[2] then
    redis.call('ZADD', lease, 'XX', deadline, ARGV[i])
    n = n + 1
  end
end
return {n}
"""

# KEYS run q req pri owner lease tries failed; ARGV run_id now_ms max_attempts limit ttl_ms
RECLAIM = _GUARD + """
local q, req, pri, owner, lease, tries, failed = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local expired = redis.call('ZRANGEBYSCORE', lease, '-inf', now_ms(ARGV[2]), 'LIMIT', 0, tonumber(ARGV[4]))
local back, lost = 0, 0
for _, key in ipairs(expired) do
  redis.call('ZREM', lease, key)
  redis.call('HDEL', owner, key)
  if redis.call('HINCRBY', tries, key, 1) >= tonumber(ARGV[3]) then
    local v = redis.call('HGET', pri, key) or ''
    redis.call('LPUSH', failed, string.match(v, '\\t(.*)$') or key)
    redis.call('LTRIM', failed, 0, 999)
    redis.call('PEXPIRE', failed, ARGV[5])
    redis.call('HDEL', req, key)
    redis.call('HDEL', pri, key)
    redis.call('HDEL', tries, key)
    redis.call('HINCRBY', run, 'failed', 1)
    redis.call('HINCRBY', run, 'given_up', 1)
    redis.call('HSET', run, 'incomplete', 1)
    lost = lost + 1
  else
    redis.call('ZADD', q, score(prio_of(pri, key)), key)
    redis.call('PEXPIRE', tries, ARGV[5])
    redis.call('HINCRBY', run, 'reclaimed', 1)
    back = back + 1
  end
end
return {back, lost}
"""

# KEYS run q lease stream; ARGV run_id worker wants_revisits now_ms lease_ms finished_iso marketplace
TRY_FINISH = _GUARD + """
local q, lease, stream = KEYS[2], KEYS[3], KEYS[4]
if redis.call('HGET', run, 'seeded') ~= '1' then return {'seeding'} end
if redis.call('ZCARD', q) > 0 or redis.call('ZCARD', lease) > 0 then return {'busy'} end
local now = now_ms(ARGV[4])
local rv = redis.call('HGET', run, 'revisits') or ''
if ARGV[3] == '1' and rv ~= 'done' then
  if rv == '' or tonumber(redis.call('HGET', run, 'revisit_deadline') or '0') < now then
    redis.call('HSET', run, 'revisits', 'claimed', 'revisit_by', ARGV[2], 'revisit_deadline', now + tonumber(ARGV[5]))
    return {'revisit'}
  end
  return {'revisiting'}
end
redis.call('HSET', run, 'state', 'finished', 'finished', ARGV[6], 'finished_by', ARGV[2])
local complete = 0
if redis.call('HGET', run, 'coverage') == '1' and redis.call('HGET', run, 'incomplete') ~= '1' then complete = 1 end
local info = {marketplace = ARGV[7], run = tonumber(ARGV[1]), started = redis.call('HGET', run, 'started'),
              finished = ARGV[6], complete = complete, seen = tonumber(redis.call('HGET', run, 'seen') or '0')}
redis.call('XADD', stream, '*', 't', 'run_end', 'd', cjson.encode(info))
return {'finished'}
"""

# KEYS run procs; ARGV run_id worker status ttl_ms  (only while the run is open: no key outlives it)
HEARTBEAT = _GUARD + """
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1}
"""

# KEYS run; ARGV run_id
REVISITS_DONE = _GUARD + """
redis.call('HSET', run, 'revisits', 'done')
return {1}
"""

# KEYS run ids; ARGV fresh join started worker fields(json)
OPEN = """
local run, ids = KEYS[1], KEYS[2]
local state = redis.call('HGET', run, 'state')
if state == 'open' and ARGV[1] ~= '1' then return {'joined', redis.call('HGETALL', run)} end
if ARGV[2] == '1' then return {'none', {}} end
local old = {}
if state == 'open' then
  redis.call('HSET', run, 'state', 'abandoned', 'finished', ARGV[3])
  old = redis.call('HGETALL', run)
end
local id = redis.call('INCR', ids)
redis.call('DEL', run)
redis.call('HSET', run, 'id', id, 'state', 'open', 'started', ARGV[3], 'created_by', ARGV[4], 'seeded', 0,
           'coverage', 0, 'incomplete', 0, 'seen', 0, 'seq', 0)
local f = cjson.decode(ARGV[5])
for k, v in pairs(f) do redis.call('HSET', run, k, v) end
return {'created', redis.call('HGETALL', run), old}
"""


class RunClosed(Exception):
    """The run this process works on is no longer open (finished, or abandoned by a --fresh crawl)."""


def _pairs(flat: list[Any] | dict[Any, Any]) -> dict[str, str]:
    """A hash as str -> str, from HGETALL's reply (a dict from redis-py, a flat list from a script)."""
    if isinstance(flat, dict):
        return {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
                for k, v in flat.items()}
    it = [x.decode() if isinstance(x, bytes) else str(x) for x in flat]
    return dict(zip(it[::2], it[1::2], strict=True))


class RedisFrontier:
    """One marketplace's crawl run on Redis, as seen by one crawler process (`worker`). Keeps the keys
    this process holds leases on (`held`), so that it can renew and release them.

    `now_ms` arguments exist for tests: 0 (the default) uses Redis' own clock."""

    def __init__(self, r: Any, keys: Keys, marketplace: str, *, worker: str | None = None, lease_seconds: float = 120,
                 max_attempts: int = 3, filter_mode: str = "exact", expected_requests: int = 1_000_000,
                 bloom_error_rate: float = 1e-7, ttl_seconds: float = 7 * 86400):
        self.r = r
        self.keys = keys
        self.marketplace = marketplace
        self.worker = worker or process_name()
        self.lease_ms = int(lease_seconds * 1000)
        self.max_attempts = max_attempts
        self.ttl_ms = int(ttl_seconds * 1000)
        self._filter_args = (filter_mode, expected_requests, bloom_error_rate)
        self.run: Run | None = None
        self.info: dict[str, str] = {}
        self.spec = FilterSpec()
        self.held: set[str] = set()
        self.abandoned: dict[str, str] = {}
        self._scripts = {name: r.register_script(src) for name, src in (
            ("push", PUSH), ("seen", SEEN), ("pop", POP), ("ack", ACK), ("release", RELEASE), ("renew", RENEW),
            ("reclaim", RECLAIM), ("finish", TRY_FINISH), ("open", OPEN), ("heartbeat", HEARTBEAT),
            ("revisits_done", REVISITS_DONE))}

    @classmethod
    def from_settings(cls, r: Any, keys: Keys, marketplace: str, settings: Any, worker: str | None = None) -> RedisFrontier:
        d = settings.distributed
        return cls(r, keys, marketplace, worker=worker, lease_seconds=d.lease_seconds, max_attempts=d.max_attempts,
                   filter_mode=d.dupefilter, expected_requests=d.expected_requests,
                   bloom_error_rate=d.bloom_error_rate, ttl_seconds=d.run_ttl_hours * 3600)

    # ---- keys -----------------------------------------------------------------------------------------
    def _k(self, name: str) -> str:
        assert self.run is not None
        return self.keys.part(self.marketplace, self.run.id, name)

    @property
    def run_key(self) -> str:
        return self.keys.run(self.marketplace)

    @property
    def _id(self) -> str:
        assert self.run is not None, "no run: call open_run() first"
        return str(self.run.id)

    def _call(self, name: str, keys: list[str], args: list[Any]) -> list[Any]:
        res = self._scripts[name](keys=keys, args=[self._id, *args])
        if res and res[0] == -1:
            raise RunClosed(f"{self.marketplace} run {self._id} is {self.state() or 'gone'}")
        return res

    # ---- runs -----------------------------------------------------------------------------------------
    def open_run(self, fresh: bool = False, join: bool = False) -> Run | None:
        """Join the marketplace's open run, or create one (`fresh`: abandon the open run first). With
        `join`, only join: None when no run is open."""
        spec = FilterSpec.plan(*self._filter_args)
        kind, fields, *rest = self._scripts["open"](
            keys=[self.run_key, self.keys.run_ids(self.marketplace)],
            args=["1" if fresh else "0", "1" if join else "0", _now_iso(), self.worker, json.dumps(spec.as_fields())])
        kind = kind.decode()
        if kind == "none":
            return None
        self.info = _pairs(fields)
        if rest and rest[0]:
            self.abandoned = _pairs(rest[0])
            self.delete_run_keys(int(self.abandoned["id"]), FilterSpec.from_fields(self.abandoned))
        self.spec = FilterSpec.from_fields(self.info)
        self.run = Run(int(self.info["id"]), datetime.fromisoformat(self.info["started"]), kind == "joined")
        self.held.clear()
        self.refresh_ttl()
        return self.run

    def state(self) -> str | None:
        """The run's state now: open, finished or abandoned (None: another run replaced it)."""
        f = _pairs(self.r.hgetall(self.run_key))
        if self.run is None or f.get("id") != str(self.run.id):
            return None
        self.info = f
        return f.get("state")

    def claim_seeding(self) -> bool:
        """True when this process is to push the run's start requests: the run is not seeded and no
        other living process is seeding it (the lock expires with a lease)."""
        if self.r.hget(self.run_key, "seeded") == b"1":
            return False
        return bool(self.r.set(self._k("seedlock"), self.worker, nx=True, px=self.lease_ms))

    def renew_seeding(self) -> None:
        self.r.set(self._k("seedlock"), self.worker, xx=True, px=self.lease_ms)

    def mark_seeded(self, coverage: bool) -> None:
        """The start requests are all pushed; `coverage`: this run sees all the marketplace lists (a
        finished complete run then marks delisted what it did not see)."""
        if self.state() != "open":
            return
        self.r.hset(self.run_key, mapping={"seeded": 1, "coverage": int(bool(coverage)), "seeded_by": self.worker})
        self.r.delete(self._k("seedlock"))

    def try_finish(self, wants_revisits: bool = False, now_ms: int = 0) -> str:
        """Finish the run if nothing is left: 'finished' (by this call or earlier), 'busy' (requests
        queued or leased), 'seeding', 'revisit' (this process is to push the revisits, then call
        revisits_done), 'revisiting' (another process does), or 'abandoned'."""
        try:
            res = self._call("finish", [self.run_key, self._k("q"), self._k("lease"), self.keys.listings],
                             [self.worker, "1" if wants_revisits else "0", now_ms, self.lease_ms, _now_iso(),
                              self.marketplace])
        except RunClosed:
            return self.state() or "finished"
        state = res[0].decode()
        if state == "finished":
            self.info = _pairs(self.r.hgetall(self.run_key))
            self.delete_run_keys(self.run.id, self.spec)  # type: ignore[union-attr]
        return state

    def revisits_done(self) -> None:
        self._call("revisits_done", [self.run_key], [])

    def delete_run_keys(self, run_id: int, spec: FilterSpec) -> None:
        """Drop what is left of a run (its duplicate filter above all); UNLINK frees memory in the
        background."""
        base = self.keys.part(self.marketplace, run_id, "")
        names = [base + n for n in ("q", "req", "pri", "owner", "lease", "tries", "seedlock", "procs")]
        names += list(spec.keys(base))
        pipe = self.r.pipeline(transaction=False)
        for i in range(0, len(names), 1000):
            pipe.unlink(*names[i:i + 1000])
        pipe.execute()

    def refresh_ttl(self) -> None:
        """A run somebody works on keeps its keys; one abandoned by every process expires."""
        if self.run is None:
            return
        pipe = self.r.pipeline(transaction=False)
        for n in ("q", "req", "pri", "owner", "lease", "tries", "failed", "procs"):
            pipe.pexpire(self._k(n), self.ttl_ms)
        if self.spec.mode == "bloom":
            pipe.pexpire(self._k("bloom"), self.ttl_ms)
        pipe.execute()

    def heartbeat(self, **status: Any) -> None:
        self._call("heartbeat", [self.run_key, self._k("procs")],
                   [self.worker, json.dumps({"at": _now_iso(), "held": len(self.held), **status}), self.ttl_ms])

    # ---- what the embedded frontier offers (crawlers/frontier.py), for the shared crawl code ---------------
    def pending(self) -> list[dict[str, Any]]:
        return []  # pending requests are in the shared queue, popped by the scheduler

    def finish_run(self, reason: str) -> None:
        """Called when this process's crawl ends with "finished": the run was finished by try_finish."""

    def note(self, reason: str) -> None:
        """Why this process stopped (the run stays open for the others)."""
        try:
            self.r.hset(self.run_key, "last_stop", f"{self.worker}: {reason}")
        except Exception:
            pass

    def counts(self) -> dict[str, int]:
        return {"queued": self.r.zcard(self._k("q")), "leased": self.r.zcard(self._k("lease"))}

    def close(self) -> None:
        pass

    # ---- requests -----------------------------------------------------------------------------------
    def _filter_key(self, key: str) -> tuple[str, list[Any]]:
        suffix, args = self.spec.locate(key)
        return self._k(suffix), args

    def push(self, key: str, url: str, data: bytes, priority: int = 0, dont_filter: bool = False) -> bool:
        """Record a request; True when it was queued (new in this run, or a retry of one this process
        holds), False when the run already has it."""
        fkey, fargs = self._filter_key(key)
        res = self._call("push", [self.run_key, self._k("q"), self._k("req"), self._k("pri"), self._k("owner"),
                                  self._k("lease"), fkey],
                         [key, data, int(priority), url, "1" if dont_filter else "0", self.worker, self.spec.mode,
                          self.ttl_ms, *fargs])
        if res[0] == 1:
            self.held.discard(key)
        return res[0] == 1

    def seen(self, key: str) -> bool:
        fkey, fargs = self._filter_key(key)
        return bool(self._call("seen", [self.run_key, fkey], [self.spec.mode, *fargs])[0])

    def pop(self, now_ms: int = 0) -> tuple[str, bytes] | None:
        """The next request (its key and data) under a lease held by this process; None when the queue
        is empty."""
        res = self._call("pop", [self.run_key, self._k("q"), self._k("req"), self._k("owner"), self._k("lease")],
                         [self.worker, self.lease_ms, now_ms, self.ttl_ms])
        if res[0] == 0:
            return None
        key = res[1].decode()
        self.held.add(key)
        return key, res[2]

    def ack(self, key: str, state: str = "done", seen_delta: int = 0, incomplete: bool = False) -> bool:
        """The request is handled (state "done" or "failed"); its lease ends. False when this process no
        longer held it and nobody needed it any more."""
        self.held.discard(key)
        res = self._call("ack", [self.run_key, self._k("q"), self._k("req"), self._k("pri"), self._k("owner"),
                                 self._k("lease"), self._k("tries")],
                         [key, self.worker, state if state in ("done", "failed") else "done", int(seen_delta),
                          "1" if incomplete else "0"])
        return bool(res[0])

    def release(self, keys: Iterable[str] | None = None) -> int:
        """Hand leases back to the queue at once (all this process holds by default)."""
        ks = list(self.held if keys is None else keys)
        if not ks:
            return 0
        res = self._call("release", [self.run_key, self._k("q"), self._k("pri"), self._k("owner"), self._k("lease")],
                         [self.worker, *ks])
        self.held.difference_update(ks)
        return int(res[0])

    def renew(self, now_ms: int = 0) -> int:
        """Move the deadline of every lease this process holds."""
        if not self.held:
            return 0
        res = self._call("renew", [self.run_key, self._k("owner"), self._k("lease")],
                         [self.worker, self.lease_ms, now_ms, *self.held])
        return int(res[0])

    def reclaim(self, now_ms: int = 0, limit: int = 1000) -> tuple[int, int]:
        """Expired leases back to the queue; (requeued, given up after max_attempts)."""
        res = self._call("reclaim", [self.run_key, self._k("q"), self._k("req"), self._k("pri"), self._k("owner"),
                                     self._k("lease"), self._k("tries"), self._k("failed")],
                         [now_ms, self.max_attempts, limit, self.ttl_ms])
        return int(res[0]), int(res[1])

    def queued(self) -> int:
        return int(self.r.zcard(self._k("q"))) if self.run is not None else 0

    def failed_urls(self, limit: int = 20) -> list[str]:
        return [u.decode() for u in self.r.lrange(self._k("failed"), 0, limit - 1)]
