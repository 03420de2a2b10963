"""`tiswatch worker` and `tiswatch cluster ...`: the distributed mode's processes and what an operator
asks of them (README "Scaling out")."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
                  help="The distributed mode: crawl runs and listing streams in Redis, workers, dead letters.")
console = Console()
err = Console(stderr=True)
log = logging.getLogger(__name__)


def _settings():
    from cli import state

    s = state.settings()
    s.ensure_home()
    return s


def _redis(s: Any):
    import redis

    from cluster.keys import from_settings

    r, keys = from_settings(s)
    try:
        r.ping()
    except redis.RedisError as e:
        err.print(f"[red]Redis at {s.distributed.redis_url.split('@')[-1]} does not answer: {e}[/red] "
                  "(\\[distributed] redis_url)")
        raise typer.Exit(2) from None
    return r, keys


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on(sig: int, frame: Any) -> None:
        log.info("received %s: finishing the batch in hand, then stopping", signal.Signals(sig).name)
        stop.set()

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on)
    return stop


def worker(
    role: Annotated[str, typer.Option(help="check: check and index listings from the stream; relay: events into this data "
                                           "directory's event log and the registry into Redis; all: both")] = "check",
    name: Annotated[str, typer.Option(help="consumer name (default host:pid:random); reuse it after a restart to take "
                                           "back this worker's unfinished listings at once")] = "",
    batch: Annotated[int | None, typer.Option(help="listings indexed at once (default \\[distributed] worker_batch)")] = None,
    drain: Annotated[bool, typer.Option(help="stop once the stream is empty instead of waiting for more")] = False,
) -> None:
    """Check and index crawled listings from Redis (or relay events and the registry).

    A worker of the distributed mode: check and index crawled listings (role check, any number on
    any machines), or relay events and the registry (role relay, one, beside `tiswatch run`, which runs
    a relay itself when \\[distributed] enabled is true).

    Stops on SIGTERM or Ctrl-C after the batch in hand; what it took and did not finish goes to another
    worker after \\[distributed] claim_idle_seconds."""
    from cluster.worker import CheckWorker, Relay
    from ops.logs import setup_logging

    if role not in ("check", "relay", "all"):
        err.print(f"[red]--role {role}: check, relay or all[/red]")
        raise typer.Exit(2)
    s = _settings()
    setup_logging(s, "worker")
    for noisy in ("opensearch", "elastic_transport", "elasticsearch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    r, keys = _redis(s)
    stop = _stop_on_signals()
    threads: list[threading.Thread] = []
    out: dict[str, Any] = {}
    from cluster.frontier import process_name

    name = name or process_name()
    if role in ("relay", "all"):
        relay = Relay(s, name, r=r, keys=keys)

        def run_relay() -> None:
            try:
                out["relayed"] = relay.run(stop, drain=drain)
            finally:
                relay.close()

        threads.append(threading.Thread(target=run_relay, name="relay"))
    if role in ("check", "all"):
        w = CheckWorker(s, name, r=r, keys=keys, batch=batch)

        def run_check() -> None:
            try:
                out["check"] = w.run(stop, drain=drain)
            finally:
                w.close()

        threads.append(threading.Thread(target=run_check, name="check"))
    err.print(f"worker {name}: {role}, Redis {s.distributed.redis_url.split('@')[-1]}, store {s.store.backend}")
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.5)
    if "check" in out:
        st = out["check"]
        console.print(f"indexed {st.indexed} listings ({dict(st.by_verdict)}), {st.claimed} claimed from other workers, "
                      f"{st.dead} to the dead letters, {st.runs_ended} crawl runs ended, {st.delisted} delisted")
    if "relayed" in out:
        console.print(f"relayed {out['relayed']} events")


# ---- tiswatch cluster ------------------------------------------------------------------------------
def _age(iso: str | None, now: datetime) -> str:
    if not iso:
        return "-"
    try:
        s = (now - datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return iso
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.1f}h"


def status_data(s: Any, r: Any, keys: Any) -> dict[str, Any]:
    """Everything `tiswatch cluster status` shows, JSON-ready."""
    from cluster import streams
    from cluster.frontier import _pairs
    from cluster.keys import EVENTS_GROUP, LISTINGS_GROUP

    runs = {}
    for mp in s.marketplaces:
        f = _pairs(r.hgetall(keys.run(mp)))
        if not f:
            continue
        part = lambda n, mp=mp, rid=f["id"]: keys.part(mp, rid, n)  # noqa: E731
        procs = {k: json.loads(v) for k, v in _pairs(r.hgetall(part("procs"))).items()}
        runs[mp] = {**{k: f.get(k) for k in ("id", "state", "started", "finished", "seeded", "coverage", "incomplete",
                                             "pushed", "duplicates", "done", "failed", "reclaimed", "given_up", "seen",
                                             "filter", "last_stop")},
                    "queued": int(r.zcard(part("q"))), "leased": int(r.zcard(part("lease"))),
                    "processes": procs, "failed_urls": [u.decode() for u in r.lrange(part("failed"), 0, 9)]}
    consumers = []
    try:
        for c in r.xinfo_consumers(keys.listings, LISTINGS_GROUP):
            consumers.append({"name": c["name"].decode() if isinstance(c["name"], bytes) else c["name"],
                              "pending": int(c["pending"]), "idle_ms": int(c["idle"])})
    except Exception:
        pass
    info = r.info("memory")
    reg = _pairs(r.hgetall(keys.registry))
    return {
        "redis": {"used_memory": int(info.get("used_memory", 0)), "used_memory_human": info.get("used_memory_human")},
        "runs": runs,
        "listings": {**streams.group_state(r, keys.listings, LISTINGS_GROUP), "consumers": consumers,
                     "dead": int(r.xlen(keys.dead))},
        "events": streams.group_state(r, keys.events, EVENTS_GROUP),
        "registry": {"version": reg.get("version"), "published": reg.get("published")},
    }


def _jsonable(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, list | tuple):
        return [_jsonable(x) for x in d]
    if isinstance(d, bytes):
        return d.decode(errors="replace")
    return d


@app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Crawl runs, queues, crawlers, workers, backlog, dead letters, registry, Redis memory.

    Crawl runs (queued, leased, done, processes and their heartbeats), the listing stream (backlog,
    workers and what each holds, dead letters), the event stream, the published registry."""
    s = _settings()
    r, keys = _redis(s)
    d = _jsonable(status_data(s, r, keys))
    if as_json:
        console.print_json(json.dumps(d, ensure_ascii=False))
        return
    now = datetime.now(UTC)
    t = Table(title="crawl runs", show_lines=False)
    for c in ("marketplace", "run", "state", "started", "queued", "leased", "done", "failed", "dupl.", "reclaimed", "procs"):
        t.add_column(c)
    for mp, x in d["runs"].items():
        alive = sum(1 for p in x["processes"].values() if (now - datetime.fromisoformat(p["at"])).total_seconds() < 60)
        t.add_row(mp, str(x["id"]), x["state"] or "", _age(x["started"], now) + " ago", str(x["queued"]), str(x["leased"]),
                  str(x["done"] or 0), str(x["failed"] or 0), str(x["duplicates"] or 0), str(x["reclaimed"] or 0),
                  f"{alive} alive / {len(x['processes'])}")
    console.print(t)
    for mp, x in d["runs"].items():
        for u in x["failed_urls"]:
            console.print(f"  {mp}: given up after {s.distributed.max_attempts} lost leases: {u}")
    ls = d["listings"]
    console.print(f"listing stream: {ls['length']} entries, {ls['pending']} being checked, lag {ls['lag']}, "
                  f"{ls['dead']} dead letters")
    for c in ls["consumers"]:
        console.print(f"  worker {c['name']}: {c['pending']} in hand, idle {c['idle_ms'] / 1000:.0f}s")
    ev = d["events"]
    console.print(f"event stream: {ev['length']} entries, {ev['pending']} being relayed, lag {ev['lag']}")
    console.print(f"registry in Redis: {d['registry']['version'] or 'none published'}"
                  + (f" (published {d['registry']['published']})" if d["registry"]["published"] else ""))
    console.print(f"Redis memory: {d['redis']['used_memory_human']}")


@app.command("publish-registry")
def publish_registry(force: Annotated[bool, typer.Option(help="publish even when Redis has this version")] = False) -> None:
    """Publish this data directory's licence registry to Redis for the other machines.

    The crawlers and workers on other machines check against it; the relay does it by itself after
    every import that changes something."""
    from cluster.registry import publish, published_version

    s = _settings()
    r, keys = _redis(s)
    v = publish(r, keys, s, force=force)
    if v is None:
        have = published_version(r, keys)
        console.print(f"nothing to publish (Redis has {have or 'no registry'}; this data directory's registry is "
                      f"{'the same' if have else 'empty'})")
    else:
        console.print(f"published registry {v}")


@app.command("dead")
def dead(
    replay: Annotated[bool, typer.Option(help="put the dead letters back on the listing stream (after fixing the cause)")] = False,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
) -> None:
    """Listings no worker could process (dead letters), with why; --replay retries them.

    Entries unreadable, invalid, or failing every time; --replay sends those that hold a listing back
    to the workers (after the cause is fixed) and keeps the rest."""
    s = _settings()
    r, keys = _redis(s)
    rows = r.xrange(keys.dead, count=limit)
    if not rows:
        console.print("no dead letters")
        return
    replayed = kept = 0
    for eid, f in rows:
        console.print(f"{eid.decode()}  {f.get(b'at', b'').decode()}  {f.get(b'error', b'').decode()}", soft_wrap=True,
                      markup=False, highlight=False)
        if replay:
            entry = replayable(f.get(b"d"))
            if entry is None:  # nothing a worker could read: it stays here, for a person to look at
                kept += 1
                continue
            r.xadd(keys.listings, {"t": "listing", "d": json.dumps(entry, ensure_ascii=False)})
            r.xdel(keys.dead, eid)
            replayed += 1
    if replay:
        console.print(f"{replayed} entries back on the listing stream"
                      + (f"; {kept} kept (not a listing entry a worker can read)" if kept else ""))


def replayable(d: bytes | None) -> dict[str, Any] | None:
    """The listing stream entry a dead letter holds, when it is one a worker can read again (a listing
    that failed too often, or a bad entry wrapping one); None for anything else."""
    try:
        data = json.loads(d or b"")
    except ValueError:
        return None
    entry = data.get("entry", data) if isinstance(data, dict) else None
    return entry if isinstance(entry, dict) and isinstance(entry.get("listing"), dict) else None


@app.command("forget")
def forget(marketplace: Annotated[str, typer.Argument(help="shopee, lazada or shop")],
           yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Abandon the marketplace's open crawl run.

    Its queue, leases and duplicate filter are dropped; the next `tiswatch crawl --distributed` starts
    a new one. Crawler processes still on it stop."""
    from cluster.frontier import FilterSpec, RedisFrontier, _pairs

    s = _settings()
    r, keys = _redis(s)
    f = _pairs(r.hgetall(keys.run(marketplace)))
    if f.get("state") != "open":
        console.print(f"{marketplace}: no open run")
        return
    if not yes and not typer.confirm(f"abandon {marketplace} run {f['id']} ({r.zcard(keys.part(marketplace, f['id'], 'q'))} "
                                     "requests queued)?"):
        raise typer.Exit(1)
    r.hset(keys.run(marketplace), mapping={"state": "abandoned", "finished": datetime.now(UTC).isoformat()})
    fr = RedisFrontier(r, keys, marketplace)
    fr.delete_run_keys(int(f["id"]), FilterSpec.from_fields(f))
    console.print(f"{marketplace}: run {f['id']} abandoned")


def follow(s: Any, marketplace: str, config: str | None, stop: threading.Event, poll: float = 5.0, **kw: Any) -> int:
    """`tiswatch crawl --distributed --follow`: wait for the marketplace's runs (started by the scheduler
    or by `tiswatch crawl --distributed` elsewhere), work on each until it is finished, repeat."""
    from cluster.crawl import open_run_exists
    from crawlers.runner import run_crawl

    runs = 0
    while not stop.is_set():
        try:
            open_now = open_run_exists(s, marketplace)
        except Exception as e:
            log.warning("Redis: %s", e)
            open_now = False
        if not open_now:
            stop.wait(poll)
            continue
        res = run_crawl(s, marketplace, config=config, stop=stop, distributed=True, join=True, **kw)
        runs += 1
        console.print(f"{marketplace}: {res.reason} in {res.seconds:.1f}s, {res.listings} listings from this process")
        if res.reason == "blocked":
            stop.wait(s.crawl.block_pause_minutes * 60)
        elif not res.ok:
            stop.wait(poll)
        time.sleep(0.1)
    return runs
