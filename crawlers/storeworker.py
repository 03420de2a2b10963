"""The store worker ([crawl] store_worker: "auto", the default, on a machine with 2 CPUs or more; true;
false): checking, storing and evidence of a crawl's listings in a second process, so that they use
another core than the crawl's fetching and parsing.

Why: on a fast site the crawl process is CPU-bound, and the matcher, the store (SQL and the search
index) and the evidence files cost as much CPU per page as Scrapy's own fetching. In one process the
crawl can then go at most half as fast as a bare spider; with the worker it goes about as fast as its
fetching and parsing alone, while the machine has a core to spare.

What runs where:
- the crawl process: Scrapy, the spiders (parsing, incremental planning from the store's committed
  state), the validate and image stages, the durable frontier;
- the worker (one child process, started with the crawl process before Scrapy's start-up, so that its
  own start-up (imports, the registry, the Thai dictionary) runs meanwhile; ended with it): the check,
  store and evidence stages, exactly the code of crawlers/pipelines.py, with batched writes (crawlers/batch.py),
  and every write the crawl process makes to the store or the event log (touch, delist, fetch notes,
  delisting events), in the order the crawl made them.

Listings go to the worker over a pipe through a bounded queue (one batch, 8 to 64 listings; a crawl
that outruns the worker waits), so a kill -9 costs about two batches of pages fetched again instead of
one. They go in chunks of up to CHUNK listings (a chunk leaves when it is full, before any other
message, and on the commit timer), so that the pickling, the pipe and the sender thread's wake-ups are
paid per chunk rather than per listing.
A commit works as in one process, across the two: the crawl process cuts the frontier's done marks held
so far and asks the worker to commit everything sent before; the worker commits the store, then the
events, then the fetch notes (crawlers/batch.py) and answers; only then does the crawl process write
those pages' done marks. So a page is done on disk only after all it caused is, whichever process is
killed: kill -9 of the crawl ends the worker (its pipe closes; its open transaction is rolled back),
kill -9 of the worker stops the crawl (reason `store_worker_failed`), and the next run fetches again
the pages not committed. Reads the crawl process makes for planning (`fetch_states`, `due_refetch`)
see what the worker committed; other store calls are answered by the worker.

Stats the check, store and evidence stages count (verdicts, listings, evidence) come back with every
commit's answer and are added to the crawl's.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

QUEUE_MIN, QUEUE_MAX = 8, 64  # listings waiting for the pipe: one batch, within these bounds (then the crawl waits)
CHUNK = 16  # listings per message to the worker
LOCAL_READS = frozenset({"fetch_states", "due_refetch"})  # answered by the crawl process's own connection
NO_ANSWER = frozenset({"touch", "record_fetch", "add_images", "add_evidence"})  # writes nobody waits for


def cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def wanted(crawl: Any, cpu_count: int | None = None) -> bool:
    """[crawl] store_worker resolved: true, false, or "auto" (the default): on when the crawl may run
    on two CPUs or more, where the worker has a core of its own. It also needs batched writes
    (store_batch > 1) and a store that batches them (SQLite); without them the crawl runs in one
    process whatever this says."""
    v = crawl.store_worker
    if v == "auto":
        return (cpus() if cpu_count is None else cpu_count) >= 2
    return bool(v)


class StoreWorkerFailed(RuntimeError):
    """The worker died or cannot be reached: the crawl stops; the next run fetches again what it lost."""


# ---- the worker's side -----------------------------------------------------------------------------------
def _cpu_ms() -> tuple[int, int]:
    """CPU milliseconds of this process so far: (user + system, system)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return int(1000 * (r.ru_utime + r.ru_stime)), int(1000 * r.ru_stime)


class _Stats:
    """What the pipelines count, returned to the crawl with each commit's answer."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self.counts[key] = self.counts.get(key, start) + count

    def set_value(self, key: str, value: Any) -> None:
        self.counts[key] = value

    def get_value(self, key: str, default: Any = None) -> Any:
        return self.counts.get(key, default)

    def take(self) -> dict[str, int]:
        out, self.counts = self.counts, {}
        return out


class _Run:
    def __init__(self, resumed: bool):
        self.resumed = resumed


class _NoFrontier:
    """The worker has no frontier; the store stage only asks whether the run was resumed."""

    def __init__(self, resumed: bool):
        self.run = _Run(resumed)

    def close(self) -> None:
        pass


class _Crawler:
    """What the pipelines use of a Scrapy crawler."""

    def __init__(self, ctx: Any):
        self.tiswatch = ctx
        self.stats = _Stats()


def worker_main(conn: Any, home: str, config: str | None, marketplace: str, log_file: str | None,
                log_level: str) -> None:
    """The worker process: messages from the crawl, in order, until "exit" or the pipe closes. It says
    "ready" once it can check and store at full speed: the matcher, the registry and the Thai
    dictionary are loaded first (see prestart()), not on the first listing while the crawl waits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the crawl process decides when the worker ends
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if log_file:  # the crawl's log, then in its format (ops/logs.py)
        logging.basicConfig(filename=log_file, level=log_level,
                            format="%(asctime)s [%(name)s] %(levelname)s: %(message)s (store worker)")
    from scrapy.exceptions import DropItem

    from crawlers.batch import WriteBatch
    from crawlers.context import CrawlContext
    from crawlers.pipelines import CheckPipeline, EvidencePipeline, StorePipeline
    from crawlers.procmem import release_free_heap
    from listings.events import open_events
    from listings.store import open_store
    from settings import load_settings

    try:
        ts = load_settings(config=config or None, home=home)
        if log_file:
            from ops.logs import configure_crawl_logging

            configure_crawl_logging(ts, marketplace)
        ctx = CrawlContext(ts, marketplace)
        ctx._frontier = _NoFrontier(False)  # the crawl says whether its run is resumed ("run")
        ctx._store = open_store(ts)
        ctx._events = open_events(ts)
        # commits only when the crawl asks (it then writes the done marks of the pages sent before)
        ctx._batch = WriteBatch(ctx._store, ctx._events, lambda: None, 2**62, float("inf"))
        ctx._batch.start()
        crawler = _Crawler(ctx)
        stages = [CheckPipeline(crawler), StorePipeline(crawler), EvidencePipeline(crawler)]
        _warm_up(ctx)
        from crawlers.procmem import freeze_start_up

        crawler.stats.set_value("tiswatch/store_worker/gc_frozen", freeze_start_up())
    except Exception as e:
        log.exception("the store worker cannot start")
        _send_or_exit(conn, ("failed", repr(e)))
        return
    _send_or_exit(conn, ("ready", os.getpid()))
    cpu = _cpu_ms()
    untrimmed = 0  # listings handled since malloc's free memory was last given back

    def take_stats() -> dict[str, Any]:
        """The pipelines' counts since the last answer, and this process's CPU time meanwhile (and
        the kernel's part of it: files and folders of evidence, SQLite's writes)."""
        nonlocal cpu
        now = _cpu_ms()
        crawler.stats.inc_value("tiswatch/store_worker/cpu_ms", now[0] - cpu[0])
        crawler.stats.inc_value("tiswatch/store_worker/sys_ms", now[1] - cpu[1])
        cpu = now
        return crawler.stats.take()

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the crawl process is gone (killed): what is not committed is lost
            os._exit(0)
        kind = msg[0]
        if kind == "run":
            ctx._frontier.run.resumed = bool(msg[1])
        elif kind == "items":
            untrimmed += len(msg[1])
            for item in msg[1]:
                try:
                    for stage in stages:
                        item = stage.process_item(item)
                except DropItem as e:
                    log.warning("dropped: %s", e)
                except Exception:
                    crawler.stats.inc_value("tiswatch/store_worker/errors")
                    log.exception("storing the listing from %s failed", item.get("url") if isinstance(item, dict) else "?")
        elif kind == "call":
            _, seq, target, name, args, kw, answer = msg
            obj = ctx.store if target == "store" else ctx.events
            try:
                result = getattr(obj, name)(*args, **kw)
            except Exception as e:
                if answer:
                    conn.send(("result", seq, None, repr(e)))
                else:
                    log.exception("%s.%s failed", target, name)
                continue
            if answer:
                conn.send(("result", seq, result, None))
        elif kind == "flush":
            try:
                ctx._batch.flush()
                err = None
                if untrimmed >= 100:
                    # screenshots and pictures pass through here: give their freed memory back (procmem.py)
                    release_free_heap()
                    untrimmed = 0
            except Exception as e:
                log.exception("committing the crawl's batched writes failed; the crawl tries again")
                err = repr(e)
            conn.send(("flushed", msg[1], take_stats(), err))
        elif kind == "end_batch":
            try:
                ctx._batch.stop()
                err = None
            except Exception as e:
                log.exception("committing the crawl's last writes failed")
                err = repr(e)
            conn.send(("flushed", msg[1], take_stats(), err))
        elif kind == "exit":
            ctx._batch.stop()
            ctx.close()
            conn.send(("bye", take_stats()))
            conn.close()
            return


def _send_or_exit(conn: Any, msg: tuple) -> None:
    try:
        conn.send(msg)
    except (OSError, ValueError):  # the crawl process is gone (it never opened, or was killed)
        os._exit(0)


def _warm_up(ctx: Any) -> None:
    """Load what the worker's stages need before the first listing: the Thai dictionary (the search
    index cuts Thai into words), and, where the worker checks the listings, the matcher and the
    registry, by checking one made-up listing (nothing is stored). With screenshots on, the spiders
    check each listing themselves (to decide on a screenshot) and the worker seldom does: the
    registry then loads on first use."""
    from matching.normalise import tokens

    tokens("ปลั๊กพ่วง")
    if not ctx.settings.crawl.screenshots:
        from listings.model import Listing
        from matching import check

        check(Listing(marketplace=ctx.marketplace, item_id="warm-up", title="ปลั๊กพ่วง 3 ช่อง power strip"), ctx.registry)


# ---- the crawl process's side ----------------------------------------------------------------------------
_early: dict[tuple, tuple[Any, Any]] = {}  # prestart(): (home, config, marketplace, log file, level) -> (process, pipe)
_live: dict[int, tuple[Any, Any]] = {}  # every worker this process started and has not ended: pid -> (process, pipe)
_exit_handler = False


def _spawn(home: str, config: str | None, marketplace: str, log_file: str | None, log_level: str) -> tuple[Any, Any]:
    import atexit
    import multiprocessing

    global _exit_handler
    mp = multiprocessing.get_context("spawn")  # not fork: the crawl process runs threads (reactor, Playwright)
    mine, theirs = mp.Pipe(duplex=True)
    proc = mp.Process(target=worker_main, name="tiswatch-store-worker", daemon=True,
                      args=(theirs, home, config, marketplace, log_file, log_level))
    proc.start()
    theirs.close()
    _live[proc.pid] = (proc, mine)
    if not _exit_handler:  # registered after multiprocessing's own, so it runs before it (atexit is LIFO)
        atexit.register(_end_at_exit)
        _exit_handler = True
    return proc, mine


def _end_at_exit() -> None:
    """At exit: workers this process started and did not end (one prestarted for a crawl that never
    opened, or one whose crawl left without closing it) end now, as if the crawl had been killed: their
    pipe closes (a worker then exits; what it had not committed is lost and fetched again by the next
    run), and one still starting is killed. Otherwise multiprocessing would wait for them for ever at
    exit: the worker ignores SIGTERM (the crawl decides when it ends)."""
    workers = list(_live.values())
    _live.clear()
    _early.clear()
    for _, conn in workers:
        try:
            conn.close()
        except OSError:
            pass
    for proc, _ in workers:
        proc.join(3)
        if proc.is_alive():
            proc.kill()
            proc.join(3)


def prestart(home: str, config: str | None, marketplace: str, log_file: str | None, log_level: str) -> None:
    """Start the store worker now, at the beginning of the crawl process's own start-up (Scrapy's
    imports and set-up), so that the worker's start-up (its imports, the registry, the Thai
    dictionary) runs meanwhile on the other core instead of after it. The crawl's RemoteBatch takes
    it over when the crawl opens (the same arguments); one that is never taken over ends with this
    process (a daemon; its pipe closes)."""
    key = (home, config or None, marketplace, log_file or None, log_level)
    if key not in _early:
        _early[key] = _spawn(*key)


def _take_early(key: tuple) -> tuple[Any, Any] | None:
    got = _early.pop(key, None)
    if got is not None and not got[0].is_alive():
        got[1].close()
        _live.pop(got[0].pid, None)
        return None
    return got


class RemoteBatch:
    """The crawl process's end of the worker; takes the place of crawlers.batch.WriteBatch (the same
    calls: start, item_stored, flush_if_due, flush, stop) and adds `send_item` and `call`."""

    remote = True

    def __init__(self, home: str, config: str | None, marketplace: str, tracker: Callable[[], Any],
                 max_items: int, max_seconds: float, resumed: Callable[[], bool], log_file: str | None = None,
                 log_level: str = "INFO", clock: Callable[[], float] = time.monotonic):
        self._args = (home, config, marketplace)
        self._tracker = tracker
        self._resumed = resumed
        self.max_items = max(1, max_items)
        self.max_seconds = max_seconds
        self.clock = clock
        self.log_file, self.log_level = log_file, log_level
        self.active = False
        self.items = 0
        self.since: float | None = None
        self.commits = 0
        self.on_stats: Callable[[dict[str, Any]], None] = lambda d: None
        self.on_failed: Callable[[str], None] = lambda why: None
        self.failed: str | None = None
        self._seq = 0
        self._cuts: dict[int, list] = {}     # commit asked -> the done marks it releases
        self._results: dict[int, tuple[Any, str | None]] = {}
        # small: a kill -9 loses what waits here too (fetched again by the next run)
        self.chunk = min(CHUNK, self.max_items)
        self._chunk: list[dict[str, Any]] = []  # listings not yet in the queue (at most `chunk`)
        self._queue: queue.Queue = queue.Queue(max(1, min(QUEUE_MAX, max(QUEUE_MIN, self.max_items)) // self.chunk))
        self._proc: Any = None
        self._conn: Any = None
        self._sender: threading.Thread | None = None
        self.pid: int | None = None

    # ---- starting and ending ---------------------------------------------------------------------
    def start(self) -> None:
        if self.active:
            return
        home, config, marketplace = self._args
        key = (home, config or None, marketplace, self.log_file or None, self.log_level)
        early = _take_early(key)
        self.prestarted = early is not None
        self._proc, mine = early or _spawn(*key)
        self._conn = mine
        if not mine.poll(120):
            self._fail("the store worker did not start within 120 s")
            raise StoreWorkerFailed(self.failed)
        try:
            first = mine.recv()
        except (EOFError, OSError):
            first = ("failed", "it exited")
        if first[0] != "ready":
            self._fail(f"the store worker failed to start: {first[1]}")
            raise StoreWorkerFailed(self.failed)
        self.pid = first[1]
        self._sender = threading.Thread(target=self._send_loop, name="store-worker-sender", daemon=True)
        self._sender.start()
        self._put(("run", self._resumed()))
        tr = self._tracker()
        if tr is not None:
            tr.hold()
        self.active = True

    def stop(self) -> None:
        """Commit what is pending and go back to writing at once (the crawl is closing). The worker
        stays for the crawl's last writes (delistings) until close()."""
        if not self.active:
            return
        tr = self._tracker()
        ok = True
        try:
            seq = self._ask_commit("end_batch")
            self._wait(lambda: seq not in self._cuts)
            ok = not self._cuts and self.failed is None
        except StoreWorkerFailed:
            ok = False
        if tr is not None:
            if not ok:
                tr.forget_held()  # not committed: these pages are fetched again by the next run
            tr.release(stop=True)
        self.active = False

    def close(self) -> None:
        """End the worker (after stop())."""
        if self._proc is None:
            return
        if self.failed is None:
            try:
                self._put(("exit",))
                self._wait(lambda: self._proc is None or not self._proc.is_alive() or self._bye, timeout=60)
            except StoreWorkerFailed:
                pass
        try:
            self._queue.put(None, timeout=5)  # the sender ends (it drains the queue once the worker is gone)
        except queue.Full:
            pass
        if self._proc is not None:
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
            _live.pop(self._proc.pid, None)
        self._proc = None

    _bye = False
    _send_error: str | None = None
    prestarted = False  # the worker was started with the crawl process (prestart())

    # ---- what the crawl sends ----------------------------------------------------------------------
    def send_item(self, item: dict[str, Any]) -> None:
        """Store this listing (in the worker, in order with everything sent before and after it)."""
        self._check()
        self._touch()
        self._chunk.append(item)
        if len(self._chunk) >= self.chunk:
            self._put_chunk()
            self.poll()  # the worker's answers (commits done): taken once a chunk, not once a listing

    def call(self, target: str, name: str, *args: Any, answer: bool = True, **kw: Any) -> Any:
        """A store or event log method, run by the worker in order with the listings sent before."""
        self._seq += 1
        seq = self._seq
        self._put(("call", seq, target, name, args, kw, answer))
        if not answer:
            self._touch()
            return None
        self._wait(lambda: seq in self._results)
        result, err = self._results.pop(seq)
        if err is not None:
            raise RuntimeError(f"store worker: {target}.{name} failed: {err}")
        return result

    def item_stored(self) -> None:
        self._touch()
        self.items += 1
        if self.due():
            self._ask_commit("flush")

    def due(self) -> bool:
        if self.items >= self.max_items:
            return True
        return self.since is not None and self.clock() - self.since >= self.max_seconds

    def flush_if_due(self) -> None:
        """The timer's call: take the worker's answers, ask for a commit when one is due."""
        if not self.active:
            return
        try:
            self._put_chunk()  # a slow crawl's listings do not wait for a full chunk
            self.poll()
            if self.due():
                self._ask_commit("flush")
        except StoreWorkerFailed:
            pass  # reported by _fail

    def flush(self) -> None:
        """Commit now and wait for it (the crawl is idle: what is stored counts as stored)."""
        if not self.active:
            return
        seq = self._ask_commit("flush")
        self._wait(lambda: seq not in self._cuts)

    # ---- internals -----------------------------------------------------------------------------------
    def _touch(self) -> None:
        if self.since is None:
            self.since = self.clock()

    def _ask_commit(self, kind: str) -> int:
        tr = self._tracker()
        self._seq += 1
        seq = self._seq
        self._cuts[seq] = tr.take_held() if tr is not None else []
        self.items = 0
        self.since = None
        self._put((kind, seq))
        return seq

    def _check(self) -> None:
        if self._send_error is not None and self.failed is None:
            self._fail(self._send_error)
        if self.failed is not None:
            raise StoreWorkerFailed(self.failed)

    def _put_chunk(self) -> None:
        if self._chunk:
            chunk, self._chunk = self._chunk, []
            self._put(("items", chunk))

    def _put(self, msg: tuple) -> None:
        self._check()
        if self._chunk and msg[0] != "items":
            self._put_chunk()  # the listings sent before this message go before it
        while True:
            try:
                self._queue.put(msg, timeout=1.0)
                return
            except queue.Full:
                self.poll()  # the worker is behind: take its answers meanwhile
                if self._proc is not None and not self._proc.is_alive():
                    self._fail(f"the store worker exited (code {self._proc.exitcode})")
                    raise StoreWorkerFailed(self.failed) from None

    def _send_loop(self) -> None:
        while True:
            msg = self._queue.get()
            if msg is None:
                return
            if self._send_error is not None or self.failed is not None:
                continue  # drain: whoever waits on the queue must not wait for ever
            try:
                self._conn.send(msg)
            except (OSError, ValueError) as e:  # reported by the crawl's thread (_check)
                self._send_error = f"the store worker cannot be reached ({e})"

    def poll(self) -> None:
        """Take the worker's answers that have come (without waiting)."""
        while self._conn is not None and not self._bye:  # after its goodbye the worker's pipe closes: not a failure
            try:
                if not self._conn.poll():
                    return
                msg = self._conn.recv()
            except (EOFError, OSError):
                self._fail("the store worker exited")
                raise StoreWorkerFailed(self.failed) from None
            self._handle(msg)

    def _wait(self, done: Callable[[], bool], timeout: float | None = None) -> None:
        t0 = time.monotonic()
        while not done():
            self._check()
            try:
                ready = self._conn.poll(0.5)
            except (EOFError, OSError):
                ready = True
            if ready:
                self.poll()
            elif self._proc is not None and not self._proc.is_alive():
                self._fail(f"the store worker exited (code {self._proc.exitcode})")
                raise StoreWorkerFailed(self.failed)
            if timeout is not None and time.monotonic() - t0 > timeout:
                return

    def _handle(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "flushed":
            _, seq, stats, err = msg
            cut = self._cuts.pop(seq, [])
            self.on_stats(stats)
            tr = self._tracker()
            if err is None:
                self.commits += 1
                if tr is not None:
                    tr.release_marks(cut)  # the requests recorded so far, then these pages' done marks
            elif tr is not None:
                tr.put_back(cut)  # the next commit takes them again
        elif kind == "result":
            self._results[msg[1]] = (msg[2], msg[3])
        elif kind == "bye":
            self.on_stats(msg[1])
            self._bye = True

    def _fail(self, why: str) -> None:
        if self.failed is None:
            self.failed = why
            log.error("%s: the crawl stops; the next run fetches again what was not committed", why)
            self.on_failed(why)


class RemoteStore:
    """The listing store as the crawl process sees it with a worker: planning reads from its own
    connection (what the worker committed); writes and other calls go to the worker, in order."""

    def __init__(self, local: Any, batch: RemoteBatch):
        self._local = local
        self._batch = batch

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._local, name)
        if name in LOCAL_READS or name.startswith("_") or not callable(attr):
            return attr

        def forward(*args: Any, **kw: Any) -> Any:
            return self._batch.call("store", name, *args, answer=name not in NO_ANSWER, **kw)

        return forward


class RemoteEvents:
    """The event log as the crawl process sees it with a worker: appends go to the worker, in order
    with the listings (written after them in the same commit)."""

    def __init__(self, batch: RemoteBatch):
        self._batch = batch

    def append(self, kind: str, key: str, data: dict[str, Any] | None = None, **kw: Any) -> None:
        from listings.events import KINDS

        if kind not in KINDS:  # the same error as at once, not in the worker
            raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(KINDS)})")
        self._batch.call("events", "append", kind, key, data, answer=False, **kw)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def forward(*args: Any, **kw: Any) -> Any:
            return self._batch.call("events", name, *args, **kw)

        return forward
