"""A crawl process of the distributed mode: the same spiders, middlewares and pipelines as a crawl on
one machine (crawlers/), with the frontier on Redis (cluster/frontier.py) and the listings handed to
the workers over a stream instead of being checked into the store here.

What changes, and where:
- the scheduler is scrapy-redis' Scheduler with a lease queue (`LeaseQueue`) and a duplicate filter
  (`RunDupeFilter`) on the shared run: every process pops from the same queue;
- `RedisTracker` replaces the embedded frontier's tracker behind the same spider middleware: a request
  a callback yields is pushed to the shared run before the response that yielded it is acknowledged,
  and a response is acknowledged once its listings are on the stream;
- `DistributedCrawlReport` replaces CrawlReport: a process that runs out of work waits for the others
  (their requests may yield more) and for expired leases; the run is finished by whichever process
  finds it idle; revisits of due listings are pushed once per run by one process; leases are renewed
  by a heartbeat and handed back when the process stops;
- item pipelines: validate, check (the spider's own check decides the evidence screenshots) and the
  evidence files stay here (evidence/ must then be shared storage when crawlers run on other machines);
  `PreparePipeline` replaces the store stage, `ShipPipeline` puts each listing on the stream (waiting
  while the workers are [distributed] max_backlog behind);
- the crawl context (`DistributedContext`) gives the shared run as `frontier`, the stream as `events`,
  the registry published in Redis, and a store view that keeps evidence references for the stream.

`apply_distributed()` turns a crawl's Scrapy settings and spider class into these (crawlers/run.py
calls it for `--distributed`).
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import time
from collections import deque
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from scrapy import Request
from scrapy.exceptions import CloseSpider, DontCloseSpider, DropItem
from scrapy.utils.request import request_from_dict
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import Base as RedisQueueBase
from scrapy_redis.scheduler import Scheduler as RedisScheduler

from cluster import streams
from cluster.frontier import RedisFrontier, RunClosed, process_name
from cluster.keys import Keys, connect
from crawlers.context import CrawlContext
from crawlers.frontier import Tracker, request_dict
from crawlers.middlewares import CrawlReport, FrontierMiddleware
from listings.store import IngestResult

log = logging.getLogger(__name__)
_DROP_META = ("_captured", "playwright_page", "download_slot", "download_latency", "_tw_local")


# ---- the crawl context -----------------------------------------------------------------------------
class CrawlerStoreView:
    """The listing store as a distributed crawler uses it: reads and crawl bookkeeping (fetch states,
    touch, delist) go to the shared store; evidence references are kept for the listing's stream entry,
    where the worker records them once the listing is indexed."""

    def __init__(self, store: Any):
        self._store = store
        self._evidence: dict[str, list[dict[str, Any]]] = {}

    def add_evidence(self, key: str, kind: str, path: str, sha256: str, size: int, created_at: datetime | None = None) -> None:
        self._evidence.setdefault(key, []).append({"kind": kind, "path": path, "sha256": sha256, "size": size,
                                                   "created_at": (created_at or datetime.now(UTC)).isoformat()})

    def take_evidence(self, key: str) -> list[dict[str, Any]]:
        return self._evidence.pop(key, [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class DistributedContext(CrawlContext):
    """CrawlContext for a crawl process of the distributed mode (see the module's docstring)."""

    name: str = ""
    join: bool = False
    _redis: Any = None
    _keys: Keys | None = None
    _view: Any = None
    shipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def redis(self):
        if self._redis is None:
            self._redis = connect(self.settings.distributed.redis_url)
        return self._redis

    @property
    def keys(self) -> Keys:
        if self._keys is None:
            self._keys = Keys(self.settings.distributed.namespace)
        return self._keys

    @property
    def frontier(self):
        if self._frontier is None:
            fr = RedisFrontier.from_settings(self.redis, self.keys, self.marketplace, self.settings, worker=self.name)
            if fr.open_run(fresh=self.fresh, join=self.join) is None:
                # --join found no open run (it finished meanwhile): a run nobody knows, every call on it
                # answers "closed", and the crawl ends at once as finished
                from crawlers.frontier import Run

                fr.run = Run(0, datetime.now(UTC), True)
            self._frontier = fr
        return self._frontier

    def tracker_for(self, crawler):
        if self.tracker is None:
            spider = crawler.spider
            self.tracker = RedisTracker(self, crawler.request_fingerprinter.fingerprint,
                                        lambda r: encode_request(r, spider))
        return self.tracker

    @property
    def store(self):
        if self._view is None:
            from listings.store import open_store

            self._store = open_store(self.settings)
            self._view = CrawlerStoreView(self._store)
        return self._view

    @property
    def events(self):
        if self._events is None:
            self._events = streams.StreamEventLog(self.redis, self.keys)
        return self._events

    @property
    def registry(self):
        if self._registry is None:
            from cluster.registry import load_registry

            self._registry = load_registry(self.settings, self.redis, self.keys)
        return self._registry

    @property
    def crawl_dir(self) -> Path:
        """This process's own folder (its last_run.json): several crawl processes of one marketplace
        may share a data directory."""
        d = self.settings.crawl_dir / self.marketplace / "distributed" / _safe(self.name)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def close(self) -> None:
        for x in (self._store, self._events):
            if x is not None:
                x.close()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


def distributed_context(crawler) -> DistributedContext:
    """The crawler's context, made a DistributedContext (first thing the report extension does, before
    any middleware or pipeline asks for it)."""
    ctx = getattr(crawler, "tiswatch", None)
    if isinstance(ctx, DistributedContext):
        return ctx
    from settings import load_settings

    home = crawler.settings.get("TISWATCH_HOME") or os.environ.get("TISWATCH_HOME")
    ts = load_settings(config=crawler.settings.get("TISWATCH_CONFIG") or None, home=home)
    ts.ensure_home()
    mp = getattr(crawler.spidercls, "marketplace", None) or crawler.spidercls.name
    for name in ("opensearch", "elastic_transport", "elasticsearch"):  # one INFO line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    ctx = DistributedContext(ts, mp, fresh=crawler.settings.getbool("TISWATCH_FRESH"),
                             name=crawler.settings.get("TISWATCH_PROCESS") or process_name(),
                             join=crawler.settings.getbool("TISWATCH_JOIN"))
    crawler.tiswatch = ctx
    return ctx


# ---- requests ----------------------------------------------------------------------------------------
def encode_request(request, spider) -> bytes:
    """A request as the shared queue keeps it (Request.to_dict, callbacks by name, pickled as
    scrapy-redis does); raises when it cannot be kept (a lambda in its meta, say). The dict is
    to_dict's, made by crawlers.frontier.request_dict (without listing the spider's attributes)."""
    d = request_dict(request, spider)
    for m in _DROP_META:
        d.get("meta", {}).pop(m, None)
    return pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL)


def decode_request(data: bytes, spider):
    return request_from_dict(pickle.loads(data), spider=spider)


class RedisTracker(Tracker):
    """The frontier tracker (crawlers/frontier.py) on the shared run: `record` pushes a request a
    callback yields to the run at once (the middleware then drops it here: it comes back through the
    shared queue, to whichever process pops it); a response is acknowledged once its output is recorded
    and its items have left the pipelines."""

    def __init__(self, ctx: DistributedContext, fingerprint, encode):
        self.ctx = ctx
        self.frontier = ctx.frontier
        self._fingerprint = fingerprint
        self._encode = encode
        self.recorded: set[str] = set()  # the embedded tracker's sets; unused here, kept for the report
        self.finished: set[str] = set()
        self._items: dict[str, int] = {}
        self._output_done: set[str] = set()
        self.unpicklable = 0
        self._seen_flushed = 0
        self.broken: set[str] = set()

    def record(self, request) -> bool:
        try:
            data = self._encode(request)
        except Exception:
            self.unpicklable += 1  # cannot be shared: fetched by this process only, not recoverable
            request.meta["_tw_local"] = True
            return True
        try:
            self.frontier.push(self.key(request), request.url, data, request.priority, request.dont_filter)
        except RunClosed:
            pass
        return False

    def mark_broken(self, key: str) -> None:
        """What this response yielded could not all be recorded (Redis unreachable for longer than the
        client's retries): it is not acknowledged, and no longer renewed, so its lease expires and the
        page is fetched again (by any process)."""
        self.broken.add(key)
        self.frontier.held.discard(key)
        log.error("request %s could not be recorded completely; it is fetched again after its lease", key)

    def _done(self, key: str, url: str, state: str = "done") -> None:
        self._output_done.discard(key)
        if key in self.broken:
            return
        ctx = self.ctx
        delta = len(ctx.seen) - self._seen_flushed
        self._seen_flushed = len(ctx.seen)
        try:
            self.frontier.ack(key, state, delta, incomplete=not ctx.complete and not ctx.blocked)
        except RunClosed:
            pass

    def ack_orphans(self) -> int:
        """At idle nothing is in flight here: a lease still held is a request Scrapy dropped without a
        callback or errback (it cannot come back, as in an embedded crawl). Acknowledge them."""
        keys = [k for k in self.frontier.held if not self._items.get(k)]
        for k in keys:
            log.info("request %s ended without a response or an error; acknowledged", k)
            self._done(k, "")
        return len(keys)


class DistributedFrontierMiddleware(FrontierMiddleware):
    """The embedded crawl's frontier middleware; a request that cannot be pushed to Redis marks the
    response that yielded it as broken (see RedisTracker.mark_broken) instead of failing it."""

    def _one(self, tr, key: str, x: Any) -> Any:
        if isinstance(x, Request) and isinstance(tr, RedisTracker):
            try:
                return x if tr.record(x) else None
            except RedisError:
                tr.mark_broken(key)
                return None
        return super()._one(tr, key, x)


# ---- the scrapy-redis scheduler on the lease queue ---------------------------------------------------
class LeaseQueue(RedisQueueBase):
    """scrapy-redis queue on the shared run (cluster/frontier.py): push records, pop leases."""

    def __init__(self, server, spider, key, serializer=None):
        super().__init__(server, spider, key, serializer)
        self.ctx = distributed_context(spider.crawler)
        self.local: deque = deque()  # requests that cannot be pickled: this process only

    @property
    def frontier(self) -> RedisFrontier:
        return self.ctx.frontier

    def _encode_request(self, request):
        return encode_request(request, self.spider)

    def _decode_request(self, encoded_request):
        return decode_request(encoded_request, self.spider)

    def __len__(self) -> int:
        try:
            return self.frontier.queued() + len(self.local)
        except Exception:
            return len(self.local)

    def push(self, request) -> bool:
        if request.meta.get("_tw_local"):
            self.local.append(request)
            return True
        try:
            data = self._encode_request(request)
        except Exception:
            log.warning("request %s cannot be shared between crawler processes (not picklable); fetched here only",
                        request.url)
            self.local.append(request)
            return True
        tracker = self.ctx.tracker_for(self.spider.crawler)
        key = tracker.key(request)
        try:
            return self.frontier.push(key, request.url, data, request.priority, request.dont_filter)
        except RunClosed:
            return False
        except RedisError:
            if key in self.frontier.held:  # a retry of a request this process holds: fetch it again later
                tracker.mark_broken(key)
            else:
                log.error("request %s not recorded: Redis unreachable", request.url)
            return False

    def pop(self, timeout=0):
        if self.local:
            return self.local.popleft()
        while True:
            try:
                got = self.frontier.pop()
            except RunClosed:
                return None
            except RedisError as e:  # the engine asks again soon
                log.warning("no request from Redis: %s", e)
                return None
            if got is None:
                return None
            key, data = got
            try:
                return self._decode_request(data)
            except Exception as e:  # a request of another version of the spider: give it up, loudly
                log.error("cannot rebuild queued request %s (%s); given up", key, e)
                self.frontier.ack(key, "failed")

    def clear(self) -> None:
        """Never: the run is shared (it ends when it is finished, or with `tiswatch crawl --fresh`)."""


class RunDupeFilter(RFPDupeFilter):
    """scrapy-redis duplicate filter on the run's filter. The real test-and-set happens in the queue's
    push (one script with the enqueue); `request_seen` only asks."""

    def __init__(self, server, key, debug=False, crawler=None):
        super().__init__(server, key, debug)
        self.crawler = crawler

    @classmethod
    def from_spider(cls, spider):
        return cls(None, "", spider.settings.getbool("DUPEFILTER_DEBUG"), spider.crawler)

    def request_seen(self, request) -> bool:
        ctx = distributed_context(self.crawler)
        try:
            return ctx.frontier.seen(ctx.tracker_for(self.crawler).key(request))
        except RunClosed:
            return True

    def clear(self) -> None:
        pass

    def close(self, reason: str = "") -> None:
        pass


class Scheduler(RedisScheduler):
    """scrapy-redis' scheduler on the lease queue: a request pushed is recorded in the shared run
    (dropped when the run has it already), a request popped is leased to this process."""

    @classmethod
    def from_crawler(cls, crawler):
        ctx = distributed_context(crawler)
        s = crawler.settings
        inst = cls(server=ctx.redis, persist=True, flush_on_start=False, queue_key="%(spider)s:requests",
                   queue_cls=s.get("SCHEDULER_QUEUE_CLASS") or "cluster.crawl.LeaseQueue",
                   dupefilter_cls=s.get("DUPEFILTER_CLASS") or "cluster.crawl.RunDupeFilter", idle_before_close=0)
        inst.stats = crawler.stats
        inst.crawler = crawler
        return inst

    def open(self, spider):
        from scrapy.utils.misc import load_object

        self.spider = spider
        self.queue = load_object(self.queue_cls)(server=self.server, spider=spider, key=self.queue_key,
                                                 serializer=self.serializer)
        self.df = load_object(self.dupefilter_cls).from_spider(spider)
        n = len(self.queue)
        if n:
            log.info("%d requests of the shared run are waiting", n)

    def enqueue_request(self, request) -> bool:
        if not self.queue.push(request):
            self.df.log(request, self.spider)
            if self.stats:
                self.stats.inc_value("tiswatch/distributed/duplicates")
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self):
        request = self.queue.pop()
        if request is not None and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def close(self, reason):
        """Leases still held go back to the queue at once (the crawl report releases them first)."""
        try:
            self.queue.frontier.release()
        except Exception as e:
            log.warning("could not hand back the leases (%s); they come back when they expire", e)


# ---- spiders -----------------------------------------------------------------------------------------
def seed_requests(spider) -> list[Any] | Any:
    """The run's start requests: the revisit's listing pages, or the marketplace's start points."""
    if spider.listing_urls:
        return [r for r in (spider.revisit_request(row) for row in spider.url_rows(spider.listing_urls)) if r is not None]
    return spider.initial_requests()


def distributed_spider(cls: type) -> type:
    """The spider class with a start() for a shared run: only the process that seeds the run yields the
    start requests (into the shared queue); the others work from the queue."""

    async def start(self):
        ctx = self.ctx
        ctx.tracker_for(self.crawler)
        fr = ctx.frontier
        if not fr.claim_seeding():
            return
        n = 0
        for r in seed_requests(self):
            yield r
            n += 1
            if n % 200 == 0:
                fr.renew_seeding()
        fr.mark_seeded(bool(getattr(self, "complete_coverage", False)))
        self.crawler.stats.set_value("tiswatch/distributed/seeded", n)
        log.info("%s: seeded run %s with %d start requests", ctx.marketplace, fr.run.id, n)

    return type(cls.__name__, (cls,), {"start": start, "__module__": cls.__module__,
                                       "__qualname__": cls.__qualname__, "distributed": True})


# ---- the crawl report: waiting, finishing, revisits, heartbeat -------------------------------------
class DistributedCrawlReport(CrawlReport):
    def __init__(self, crawler):
        distributed_context(crawler)
        super().__init__(crawler)
        self._beat: Any = None
        self._wake_pending = False
        self._revisit_started = False
        self._last_reclaim = 0.0

    @property
    def ctx(self) -> DistributedContext:
        return distributed_context(self.crawler)

    def spider_opened(self, spider):
        ctx = self.ctx
        ctx.tracker_for(self.crawler)
        run = ctx.frontier.run
        log.info("%s: %s distributed run %s (begun %s) as %s", ctx.marketplace, "joined" if run.resumed else "created",
                 run.id, run.started.isoformat(timespec="seconds"), ctx.name)
        self.crawler.stats.set_value("tiswatch/resumed", int(run.resumed))
        self.crawler.stats.set_value("tiswatch/distributed/run", run.id)
        ctx.write_status("running", pid=os.getpid(), run=run.id, resumed=run.resumed, distributed=True,
                         run_started=run.started.isoformat(timespec="seconds"))
        _prune_old_process_dirs(ctx)
        from twisted.internet import task

        period = max(0.5, min(10.0, ctx.settings.distributed.lease_seconds / 3))
        self._beat = task.LoopingCall(self._heartbeat)
        self._beat.start(period, now=True)  # at once: the process shows on the run (cluster status) as it joins

    def request_scheduled(self, request, spider):
        """The scheduler records requests in the shared run (and drops those it has)."""

    def _heartbeat(self) -> None:
        ctx = self.ctx
        fr = ctx.frontier
        try:
            fr.renew()
            fr.refresh_ttl()
            fr.heartbeat(pid=os.getpid(), shipped=ctx.shipped, listings=len(ctx.seen))
            if time.monotonic() - self._last_reclaim > 1:
                self._reclaim()
        except RunClosed:
            self._wake()  # the run was finished or abandoned meanwhile: the idle handler ends this crawl
        except Exception as e:  # Redis away for a moment: the leases hold for lease_seconds
            log.warning("distributed heartbeat failed: %s", e)

    def _reclaim(self) -> None:
        self._last_reclaim = time.monotonic()
        back, lost = self.ctx.frontier.reclaim()
        if back or lost:
            self.crawler.stats.inc_value("tiswatch/distributed/reclaimed", back)
            self.crawler.stats.inc_value("tiswatch/distributed/given_up", lost)
            log.warning("%d expired leases back in the queue, %d requests given up after %d attempts",
                        back, lost, self.ctx.frontier.max_attempts)
            self._wake()

    def _wake(self) -> None:
        """Ask the engine for the next request now (it asks by itself only every 5 s when idle)."""
        try:
            self.crawler.engine._slot.nextcall.schedule()
        except AttributeError:
            pass

    def _wake_later(self) -> None:
        if self._wake_pending:
            return
        from twisted.internet import reactor

        self._wake_pending = True

        def go() -> None:
            self._wake_pending = False
            self._wake()

        reactor.callLater(self.ctx.settings.distributed.poll_seconds, go)

    def _wants_revisits(self, spider) -> bool:
        ctx = self.ctx
        return bool(getattr(spider, "revisit_request", None) and getattr(spider, "revisits", True)
                    and ctx.settings.crawl.revisit_limit > 0)

    def spider_idle(self, spider):
        ctx = self.ctx
        fr = ctx.frontier
        if ctx.blocked:
            return  # this process stops; its leases go back to the others
        try:
            n = ctx.tracker.ack_orphans() if ctx.tracker is not None else 0
            if n:
                self.crawler.stats.inc_value("tiswatch/distributed/orphans", n)
            self._reclaim()
            state = fr.try_finish(self._wants_revisits(spider))
        except RunClosed:
            state = fr.state() or "finished"
        except Exception as e:  # Redis unreachable: keep waiting (the heartbeat says so in the log)
            log.warning("distributed idle check failed: %s", e)
            self._wake_later()
            raise DontCloseSpider from None
        if state == "finished":
            return
        if state == "abandoned":
            raise CloseSpider("abandoned")
        if state == "revisit":
            self._start_revisits(spider)
        elif state == "seeding" and fr.claim_seeding():
            self._seed_now(spider)
        self._wake_later()
        raise DontCloseSpider

    def _seed_now(self, spider) -> None:
        """The process that began seeding the run died before it finished: seed it here."""
        fr = self.ctx.frontier
        log.warning("%s: run %s was not completely seeded; seeding it here", self.ctx.marketplace, fr.run.id)
        for n, r in enumerate(seed_requests(spider), 1):
            self.crawler.engine.crawl(r)
            if n % 200 == 0:
                fr.renew_seeding()
        fr.mark_seeded(bool(getattr(spider, "complete_coverage", False)))

    def _start_revisits(self, spider) -> None:
        """Once every search of the run is done, this process (and no other) fetches due listings that no
        search showed, after the workers have indexed what the run found (their last_seen), so that a
        listing just crawled is not fetched again. The wait is bounded."""
        if self._revisit_started:
            return
        self._revisit_started = True
        from twisted.internet import reactor

        ctx = self.ctx
        deadline = time.monotonic() + max(10.0, min(ctx.settings.distributed.lease_seconds / 2, 120.0))

        def step() -> None:
            try:
                if not streams.drained(ctx.redis, ctx.keys) and time.monotonic() < deadline:
                    ctx.frontier.heartbeat(pid=os.getpid(), revisits="waiting for the workers")
                    reactor.callLater(0.5, step)
                    return
                n = self._push_revisits(spider)
                ctx.frontier.revisits_done()
                if n:
                    self.crawler.stats.inc_value("tiswatch/revisits", n)
                    log.info("%s: revisiting %d due listings no search showed", ctx.marketplace, n)
            except Exception as e:
                log.warning("revisits not pushed (%s); another process takes them over", e)
            self._revisit_started = False
            self._wake()

        reactor.callLater(0, step)

    def _push_revisits(self, spider) -> int:
        ctx = self.ctx
        if ctx.blocked:
            return 0
        now = datetime.now(UTC)
        p = ctx.policy
        rows = ctx.store.due_refetch(ctx.marketplace, before=now - p.every, flagged_before=now - p.flagged_every,
                                     unseen_since=ctx.started, limit=ctx.settings.crawl.revisit_limit)
        n = 0
        for row in rows:
            req = spider.revisit_request(row)
            if req is not None:
                self.crawler.engine.crawl(req)
                n += 1
        return n

    def spider_closed(self, spider, reason):
        ctx = self.ctx
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        try:
            if ctx.tracker is not None and reason == "finished":
                ctx.tracker.ack_orphans()
            n = ctx.frontier.release()
            if n:
                log.info("%s: %d leases handed back to the other crawler processes", ctx.marketplace, n)
        except RunClosed:
            pass
        except Exception as e:
            log.warning("leases not handed back (%s): they come back after lease_seconds", e)
        # delisting after a complete crawl is the workers' (run_end on the stream): they know what every
        # process of the run saw
        spider.complete_coverage = False
        self.crawler.stats.set_value("tiswatch/distributed/shipped", ctx.shipped)
        try:
            state = ctx.frontier.state()
            self.crawler.stats.set_value("tiswatch/distributed/run_state", state or "gone")
        except Exception:
            pass
        super().spider_closed(spider, reason)


def _prune_old_process_dirs(ctx: DistributedContext, days: float = 7) -> None:
    """Folders of crawl processes that ended long ago (their last_run.json) are removed."""
    base = ctx.settings.crawl_dir / ctx.marketplace / "distributed"
    limit = time.time() - days * 86400
    try:
        for d in base.iterdir():
            if d.is_dir() and d.name != _safe(ctx.name) and d.stat().st_mtime < limit:
                shutil.rmtree(d, ignore_errors=True)
    except OSError:
        pass


# ---- pipelines -----------------------------------------------------------------------------------------
class _Base:
    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    @property
    def ctx(self) -> DistributedContext:
        return distributed_context(self.crawler)


class PreparePipeline(_Base):
    """In place of the store stage: counts the listing as seen and tells the evidence stage whether
    this view of a flagged listing needs evidence (the store has none for this content yet)."""

    def process_item(self, item: dict[str, Any], spider=None) -> dict[str, Any]:
        listing = item["_listing"]
        self.ctx.seen.add(listing.key)
        v = item.get("_verdict")
        if v is not None and v.flagged and "_ingest" not in item:
            need = True
            sp = self.crawler.spider
            if hasattr(sp, "_needs_evidence"):
                need = sp._needs_evidence(item.get("_ref") or listing.item_id, listing)
            item["_ingest"] = IngestResult(listing.key, new_observation=need)
        return item


def _claims(v: Any) -> list[dict[str, Any]]:
    out = []
    for c in v or []:
        if is_dataclass(c):
            d = asdict(c)
            d["_type"] = type(c).__name__
            out.append(d)
    return out


class ShipPipeline(_Base):
    """Puts the listing on the stream for the workers, with what they need to index it as the embedded
    store stage would: the crawl bookkeeping (ref, card) and the evidence files written here. Waits
    while the workers are more than [distributed] max_backlog listings behind."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self._checked = 0.0
        self._backlog = 0

    async def _wait_for_workers(self) -> None:
        import asyncio

        ctx = self.ctx
        limit = ctx.settings.distributed.max_backlog
        if time.monotonic() - self._checked < 1.0 and self._backlog < limit:
            return
        warned = False
        while True:
            self._checked = time.monotonic()
            self._backlog = int(ctx.redis.xlen(ctx.keys.listings))
            if self._backlog < limit:
                return
            if not warned:
                log.warning("%d listings wait for the workers (max_backlog %d): crawling waits", self._backlog, limit)
                self.crawler.stats.inc_value("tiswatch/distributed/backpressure")
                warned = True
            await asyncio.sleep(ctx.settings.distributed.poll_seconds)

    async def process_item(self, item: dict[str, Any], spider=None) -> dict[str, Any]:
        import asyncio

        ctx = self.ctx
        listing = item["_listing"]
        payload: dict[str, Any] = {"listing": listing.record(), "run": ctx.frontier.run.id, "by": ctx.name}
        if item.get("_ref"):
            payload.update(ref=item["_ref"], ref_keys=item.get("_ref_keys") or [listing.key], card=item.get("_card"))
        ev = ctx.store.take_evidence(listing.key)
        if ev:
            payload["evidence"] = ev
        if item.get("_image_claims"):
            payload["image_claims"] = _claims(item["_image_claims"])
        await self._wait_for_workers()
        delay, waited = 0.5, 0.0
        limit = ctx.settings.distributed.lease_seconds * ctx.settings.distributed.max_attempts
        while True:
            try:
                streams.add_listing(ctx.redis, ctx.keys, payload)
                break
            except RedisError as e:  # Redis away: wait for it rather than lose the listing
                if waited >= limit:
                    tr = ctx.tracker
                    if tr is not None and item.get("_frontier"):
                        tr.mark_broken(item["_frontier"])  # the page is fetched again later
                    raise DropItem(f"listing {listing.key} not handed to the workers: {e}") from None
                log.warning("listing %s not handed to the workers yet (%s); retrying", listing.key, e)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(10.0, delay * 2)
        ctx.shipped += 1
        self.crawler.stats.inc_value("tiswatch/listings")
        return item


# ---- Scrapy settings -----------------------------------------------------------------------------------
def pipelines(base: dict[str, Any]) -> dict[str, Any]:
    """The item pipelines of a distributed crawl from the project's: the store stage becomes Prepare,
    Ship comes last; other stages (validate, check, evidence, images, ...) stay as they are."""
    out = {k: v for k, v in base.items() if k != "crawlers.pipelines.StorePipeline"}
    out["cluster.crawl.PreparePipeline"] = base.get("crawlers.pipelines.StorePipeline", 500)
    out["cluster.crawl.ShipPipeline"] = max([int(v) for v in base.values() if v is not None] + [600]) + 100
    return out


def apply_distributed(s: Any, ts: Any, marketplace: str, spidercls: type, *, name: str = "", join: bool = False) -> type:
    """Make a crawl's Scrapy settings `s` (and its spider class) those of a distributed crawl process."""
    s.set("SCHEDULER", "cluster.crawl.Scheduler", priority="cmdline")
    s.set("SCHEDULER_QUEUE_CLASS", "cluster.crawl.LeaseQueue", priority="cmdline")
    s.set("DUPEFILTER_CLASS", "cluster.crawl.RunDupeFilter", priority="cmdline")
    s.set("SCHEDULER_PERSIST", True, priority="cmdline")
    s.set("REDIS_URL", ts.distributed.redis_url, priority="cmdline")
    ext = dict(s.getdict("EXTENSIONS"))
    ext.pop("crawlers.middlewares.CrawlReport", None)
    ext["crawlers.middlewares.CrawlReport"] = None
    ext["cluster.crawl.DistributedCrawlReport"] = 500
    s.set("EXTENSIONS", ext, priority="cmdline")
    s.set("ITEM_PIPELINES", pipelines(dict(s.getdict("ITEM_PIPELINES"))), priority="cmdline")
    smw = dict(s.getdict("SPIDER_MIDDLEWARES"))
    order = smw.pop("crawlers.middlewares.FrontierMiddleware", 10)
    smw["crawlers.middlewares.FrontierMiddleware"] = None
    smw["cluster.crawl.DistributedFrontierMiddleware"] = order
    s.set("SPIDER_MIDDLEWARES", smw, priority="cmdline")
    s.set("TISWATCH_DISTRIBUTED", True, priority="cmdline")
    s.set("TISWATCH_PROCESS", name or process_name(), priority="cmdline")
    s.set("TISWATCH_JOIN", join, priority="cmdline")
    return distributed_spider(spidercls)


def open_run_exists(ts: Any, marketplace: str) -> bool:
    """Is a distributed run of the marketplace open (for `--join`)?"""
    r = connect(ts.distributed.redis_url)
    return r.hget(Keys(ts.distributed.namespace).run(marketplace), "state") == b"open"


def report_path(ts: Any, marketplace: str, name: str) -> Path:
    return ts.crawl_dir / marketplace / "distributed" / _safe(name) / "last_run.json"


def run_summary(ts: Any, marketplace: str) -> dict[str, Any]:
    """The marketplace's current (or last) run as Redis has it."""
    from cluster.frontier import _pairs

    r = connect(ts.distributed.redis_url)
    return _pairs(r.hgetall(Keys(ts.distributed.namespace).run(marketplace)))


