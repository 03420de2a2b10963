"""Redis connection and key names of one deployment ([distributed] namespace).

    <ns>:crawl:<marketplace>:run            hash: the marketplace's current crawl run (state, counters)
    <ns>:crawl:<marketplace>:runs           counter: run ids
    <ns>:crawl:<marketplace>:<run>:q        sorted set: request keys waiting, by priority (newest first)
    <ns>:crawl:<marketplace>:<run>:req      hash: request key -> the pickled request (Request.to_dict)
    <ns>:crawl:<marketplace>:<run>:pri      hash: request key -> "priority<TAB>url"
    <ns>:crawl:<marketplace>:<run>:lease    sorted set: request keys taken by a process, by deadline (ms)
    <ns>:crawl:<marketplace>:<run>:owner    hash: request key -> the process holding its lease
    <ns>:crawl:<marketplace>:<run>:tries    hash: request key -> leases that expired
    <ns>:crawl:<marketplace>:<run>:seen:<b> hash: the exact duplicate filter, bucket b (or :bloom, a bitmap)
    <ns>:crawl:<marketplace>:<run>:failed   list: URLs given up after max_attempts expired leases
    <ns>:crawl:<marketplace>:<run>:procs    hash: crawler process -> its last heartbeat (JSON)
    <ns>:crawl:<marketplace>:<run>:seedlock string: the process seeding the run
    <ns>:listings                           stream: crawled listings for the workers (group "check")
    <ns>:listings:dead                      stream: entries no worker could process (dead letters)
    <ns>:events                             stream: listing events for the relay (group "relay")
    <ns>:registry                           hash: the licence registry snapshot (version, data)

One Redis primary (with a replica and Sentinel for fail-over) holds them; the scripts touch several
keys of a run at once, so Redis Cluster is not supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LISTINGS_GROUP = "check"
EVENTS_GROUP = "relay"


@dataclass(frozen=True)
class Keys:
    ns: str = "tiswatch"

    def run(self, marketplace: str) -> str:
        return f"{self.ns}:crawl:{marketplace}:run"

    def run_ids(self, marketplace: str) -> str:
        return f"{self.ns}:crawl:{marketplace}:runs"

    def part(self, marketplace: str, run: int | str, name: str) -> str:
        return f"{self.ns}:crawl:{marketplace}:{run}:{name}"

    @property
    def listings(self) -> str:
        return f"{self.ns}:listings"

    @property
    def dead(self) -> str:
        return f"{self.ns}:listings:dead"

    @property
    def events(self) -> str:
        return f"{self.ns}:events"

    @property
    def registry(self) -> str:
        return f"{self.ns}:registry"


def connect(url: str, **kw: Any):
    """A redis-py client (bytes in and out). Commands are retried on a dropped connection."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    kw.setdefault("socket_timeout", 30)
    kw.setdefault("socket_connect_timeout", 10)
    kw.setdefault("health_check_interval", 30)
    kw.setdefault("retry", Retry(ExponentialBackoff(cap=5, base=0.1), 5))
    kw.setdefault("retry_on_error", [redis.ConnectionError, redis.TimeoutError])
    return redis.Redis.from_url(url, **kw)


def from_settings(settings: Any):
    """(client, Keys) of a tiswatch Settings' [distributed] section."""
    d = settings.distributed
    return connect(d.redis_url), Keys(d.namespace)


def readiness(settings: Any) -> dict[str, Any]:
    """The Redis check of /readyz in distributed mode ({"ok", "detail"}): without Redis no crawl run can
    start or be joined, no listing is checked and no event reaches the alerts."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    d = settings.distributed
    where = d.redis_url.split("@")[-1]
    r = connect(d.redis_url, socket_timeout=3, socket_connect_timeout=3, retry=Retry(NoBackoff(), 0), retry_on_error=[])
    try:
        r.ping()
        backlog = int(r.xlen(Keys(d.namespace).listings))
        return {"ok": True, "detail": f"Redis {where}, {backlog} listings in the stream"}
    except redis.RedisError as e:
        return {"ok": False, "detail": f"Redis {where} does not answer ([distributed] redis_url): {type(e).__name__}: {e}"}
    finally:
        r.close()
