"""Crawls against a misbehaving web: the sandbox marketplaces (own server, own small world, its modes
switched per test), each crawl in its own child process as in production.

Incremental re-crawls and vanished listings, revisits, a 429 storm, cut-off JSON, a windows-874 page,
a 20 MB page, robots.txt, a block, and kill -9 in the middle of a crawl then resuming."""

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from crawlers.runner import crawl_command, run_crawl
from listings.events import EventLog
from listings.sqlite_store import SqliteStore
from registry.store import RegistryStore, bulk
from sandbox.server import SandboxServer
from sandbox.world import build_world
from settings import ROOT, load_settings

pytestmark = pytest.mark.slow
FAST = {"download_delay": 0.0, "autothrottle": False, "concurrency": 8, "concurrency_per_domain": 8,
        "screenshots": False, "retries": 3}


@pytest.fixture(scope="module")
def small_world(catalogue):
    # 90 listings, 30 a marketplace; a fifth vanish in round 2, some change price
    return build_world(seed=11, n_licences=300, n_listings=90, catalogue=catalogue, vanish_share=0.2)


@pytest.fixture
def server(small_world):
    with SandboxServer(small_world) as srv:
        yield srv


def make_home(tmp_path, world, name="home", extra=None, more=""):
    """A data directory with the world's registry, and a config: FAST with `extra` [crawl] keys, then `more`."""
    s = load_settings(home=tmp_path / name, environ={})
    s.ensure_home()
    rs = RegistryStore(s.registry_db)
    rs.import_licences(bulk(world.licences))
    rs.close()
    cfg = s.home / "test.toml"
    crawl = {**FAST, **(extra or {})}
    cfg.write_text("[crawl]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in crawl.items()) + more)
    return s, str(cfg)


def lazada_categories(server):
    return [f"{server.url}/lazada/{c[2]}/" for c in server.sandbox.categories("lazada")]


def crawl_lazada(server, home, cfg, **kw):
    kw.setdefault("categories", lazada_categories(server))
    return run_crawl(home, "lazada", base_url=f"{server.url}/lazada", config=cfg, time_limit=240, **kw)


def log_tail(r):
    return r.log_path.read_text()[-4000:]


@pytest.mark.parametrize("worker", [False, True], ids=["one_process", "store_worker"])
def test_recrawl_fetches_only_changed_cards_and_marks_vanished_listings_delisted(server, small_world, tmp_path, worker):
    home, cfg = make_home(tmp_path, small_world, extra={"store_worker": worker})
    world_keys = {f"lazada:{w.item_id}" for w in small_world.for_marketplace("lazada", 1)}
    r1 = crawl_lazada(server, home, cfg)
    assert r1.ok, log_tail(r1)
    # the worker was started with the crawl process, before Scrapy's start-up, and taken over
    assert r1.report["stats"].get("tiswatch/store_worker/prestarted") == (1 if worker else None)
    # what the start-up made is out of the garbage collector's full passes, in both processes
    assert r1.report["stats"]["tiswatch/gc_frozen"] > 10_000
    assert r1.report["stats"]["tiswatch/gc_young_threshold"] == 7000  # no browser in this crawl (crawlers/run.py)
    assert r1.report["stats"].get("tiswatch/store_worker/gc_frozen", 0) > (10_000 if worker else -1)
    if worker:  # its CPU, and the kernel's part of it
        assert 0 <= r1.report["stats"]["tiswatch/store_worker/sys_ms"] <= r1.report["stats"]["tiswatch/store_worker/cpu_ms"]
    st = SqliteStore(home.listings_db)
    assert {h["key"] for h in st.search(__import__("listings.store", fromlist=["SearchQuery"]).SearchQuery(limit=1000)).hits} == world_keys
    assert r1.report["stats"]["tiswatch/cards/new"] == len(world_keys)

    # the same round again: every card is unchanged, no product page is fetched, all are seen again
    before = {k: st.get(k)["last_seen"] for k in world_keys}
    r2 = crawl_lazada(server, home, cfg)
    assert r2.ok, log_tail(r2)
    s2 = r2.report["stats"]
    assert s2["tiswatch/skipped_unchanged"] == len(world_keys) and "tiswatch/listings" not in s2
    assert s2["downloader/request_count"] < r1.report["stats"]["downloader/request_count"] / 3
    assert all(st.get(k)["last_seen"] >= before[k] for k in world_keys)
    assert all(len(st.history(k)["observations"]) == 1 for k in world_keys)

    # round 2: changed prices are fetched again; vanished items are delisted with their last-seen time
    server.sandbox.round = 2
    vanished = {f"lazada:{w.item_id}" for w in small_world.for_marketplace("lazada", 1) if not w.visible(2)}
    repriced = {f"lazada:{w.item_id}" for w in small_world.for_marketplace("lazada", 2) if 2 in w.price_by_round}
    assert vanished and repriced
    r3 = crawl_lazada(server, home, cfg)
    assert r3.ok, log_tail(r3)
    s3 = r3.report["stats"]
    assert s3["tiswatch/cards/changed"] == len(repriced)
    assert s3["tiswatch/skipped_unchanged"] == len(world_keys) - len(vanished) - len(repriced)
    for k in repriced:
        w = next(x for x in small_world.listings if f"lazada:{x.item_id}" == k)
        assert st.get(k)["price"] == w.price_by_round[2]
    for k in vanished:
        d = st.get(k)
        assert d["status"] == "delisted" and d["delisted_at"] > d["last_seen"]
        assert d["last_seen"] == before[k] or d["last_seen"] <= r3.report["run_started"]
    assert r3.report["delisted"] == len(vanished)
    events = EventLog(home.home / "events.sqlite").read(kinds=["delisted"], limit=1000)
    assert {e.key for e in events} == vanished and all(e.data["last_seen"] for e in events)
    status = json.loads((home.crawl_dir / "status.json").read_text())["lazada"]
    assert status["state"] == "ok" and status["delisted"] == len(vanished)


def test_shop_sitemap_lastmod_plays_the_search_card(server, small_world, tmp_path):
    home, cfg = make_home(tmp_path, small_world)
    sitemap = f"{server.url}/shop/sitemap.xml"
    ws = small_world.for_marketplace("shop", 1)
    r1 = run_crawl(home, "shop", base_url=f"{server.url}/shop", config=cfg, sitemap=sitemap, time_limit=240)
    assert r1.ok and r1.report["listings"] == len(ws), log_tail(r1)
    server.sandbox.round = 2
    r2 = run_crawl(home, "shop", base_url=f"{server.url}/shop", config=cfg, sitemap=sitemap, time_limit=240)
    assert r2.ok, log_tail(r2)
    vanished = {f"shop:{w.item_id}" for w in ws if not w.visible(2)}
    changed = [w for w in ws if w.visible(2) and 2 in w.price_by_round]
    assert r2.report["stats"]["tiswatch/cards/changed"] == len(changed)
    assert r2.report["stats"]["tiswatch/skipped_unchanged"] == len(ws) - len(vanished) - len(changed)
    st = SqliteStore(home.listings_db)
    assert {k for k in vanished if st.get(k)["status"] == "delisted"} == vanished and r2.report["delisted"] == len(vanished)


def test_a_due_listing_no_search_shows_is_revisited_and_found_gone(server, small_world, tmp_path):
    # keyword searches never see everything, so they delist nothing wholesale; but a listing that no
    # search shows any more is fetched directly once it is due, and its own page says it is gone
    home, cfg = make_home(tmp_path, small_world, extra={"refetch_hours": 0.0001, "refetch_flagged_hours": 0.0001})
    ws = small_world.for_marketplace("lazada", 1)
    r1 = crawl_lazada(server, home, cfg, categories=None, keywords=[ws[0].listing["title"], ws[1].listing["title"]])
    assert r1.ok, log_tail(r1)
    # then a category crawl stores the rest; the first two are not in it any more
    server.sandbox.round = 2
    gone = [w for w in ws if not w.visible(2)]
    assert gone
    time.sleep(1)
    r2 = crawl_lazada(server, home, cfg, categories=None, keywords=["ไม่มีสินค้านี้"])
    assert r2.ok, log_tail(r2)
    st = SqliteStore(home.listings_db)
    stored_before = {f"lazada:{w.item_id}" for w in ws[:2]}
    assert r2.report["stats"].get("tiswatch/revisits") == len(stored_before)
    for k in stored_before:
        d = st.get(k)
        visible = next(w for w in ws if f"lazada:{w.item_id}" == k).visible(2)
        assert d["status"] == ("active" if visible else "delisted")


def test_the_schedulers_revisit_fetches_only_the_given_listing_pages(server, small_world, tmp_path):
    home, cfg = make_home(tmp_path, small_world)
    ws = small_world.for_marketplace("lazada", 1)
    gone = next(w for w in ws if not w.visible(2))
    kept = next(w for w in ws if w.visible(2))
    r1 = crawl_lazada(server, home, cfg, categories=None, keywords=[gone.listing["title"], kept.listing["title"]])
    assert r1.ok, log_tail(r1)
    st = SqliteStore(home.listings_db)
    urls = [st.get(f"lazada:{w.item_id}")["url"] for w in (gone, kept)]
    server.sandbox.round = 2
    path = home.crawl_dir / "lazada" / "revisit-urls.txt"
    path.write_text("".join(u + "\n" for u in urls) + "not a url\n")
    r2 = crawl_lazada(server, home, cfg, categories=None, urls_file=path, job="revisit:lazada")
    assert r2.ok, log_tail(r2)
    st2 = r2.report["stats"]
    # robots.txt and the two pages, nothing else (but the pictures of those two listings: images/)
    assert st2["downloader/request_count"] - st2.get("tiswatch/images/requests", 0) <= 3
    assert st2.get("tiswatch/images/requests", 0) <= 2 * 6  # [images] max_images per listing
    assert st.get(f"lazada:{gone.item_id}")["status"] == "delisted"
    assert st.get(f"lazada:{kept.item_id}")["status"] == "active"
    assert (home.crawl_dir / "lazada" / "frontier-revisit.sqlite").exists()  # its own frontier, not the crawl's


def test_429_storm_slows_down_and_loses_nothing(server, small_world, tmp_path):
    home, cfg = make_home(tmp_path, small_world, extra={"retries": 6})
    cat = lazada_categories(server)[0]
    expected = len(server.sandbox.in_category("lazada", next(c[0] for c in server.sandbox.categories("lazada") if cat.endswith(f"/{c[2]}/"))))
    server.sandbox.modes.rate_limit = 6  # requests per second before the sandbox answers 429
    try:
        r = crawl_lazada(server, home, cfg, categories=[cat])
    finally:
        server.sandbox.modes.rate_limit = 0
    assert r.ok, log_tail(r)
    s = r.report["stats"]
    assert s["tiswatch/http_429"] > 0 and s["tiswatch/retry_wait_ms"] > 0 and s["tiswatch/slowdowns"] > 0
    assert r.report["listings"] == expected and r.report["complete"]
    assert server.sandbox.stats["429:lazada"] == s["tiswatch/http_429"]


def test_429_that_never_ends_pauses_the_marketplace(server, small_world, tmp_path):
    home, cfg = make_home(tmp_path, small_world, extra={"retries": 1})
    server.sandbox.modes.rate_limit = 0.001
    try:
        r = crawl_lazada(server, home, cfg)
    finally:
        server.sandbox.modes.rate_limit = 0
    assert r.returncode == 3 and r.reason == "blocked", log_tail(r)
    assert "429" in r.report["blocked"]["why"] and r.report["paused_until"]
    assert SqliteStore(home.listings_db).counts()["listings"] == 0


def test_cut_off_catalog_json_is_retried_then_reported(server, small_world, tmp_path):
    home, cfg = make_home(tmp_path, small_world)
    n = len(small_world.for_marketplace("lazada"))
    server.sandbox.modes.truncate_json = 2  # a transient fault: asked again, the site answers properly
    r = crawl_lazada(server, home, cfg)
    assert r.ok and r.report["listings"] == n, log_tail(r)
    assert r.report["stats"]["tiswatch/invalid_json_retries"] == 2 and r.report["complete"]

    home2, cfg2 = make_home(tmp_path, small_world, name="home2")
    server.sandbox.modes.truncate_json = 10_000  # a broken page: given up, reported, nothing stored from it
    try:
        r2 = crawl_lazada(server, home2, cfg2)
    finally:
        server.sandbox.modes.truncate_json = 0
    assert r2.returncode == 0 and r2.report["listings"] == 0, log_tail(r2)
    assert r2.report["stats"]["tiswatch/parse_errors"] == len(lazada_categories(server)) and not r2.report["complete"]
    assert "not a catalog JSON" in r2.log_path.read_text()


def test_odd_shop_pages(server, small_world, tmp_path):
    home, cfg = make_home(tmp_path, small_world)
    first = small_world.for_marketplace("shop")[0]
    urls = [f"{server.url}/shop/cp874.html", f"{server.url}/shop/huge.html", f"{server.url}/shop/broken.html",
            f"{server.url}/shop/private/{first.item_id}.html"]
    r = run_crawl(home, "shop", base_url=f"{server.url}/shop", config=cfg, start_urls=urls, time_limit=240)
    assert r.ok, log_tail(r)
    st = SqliteStore(home.listings_db)
    assert st.get("shop:cp874-1")["title"] == "ปลั๊กพ่วง 4 ช่อง มอก. 2432-2555"  # windows-874 read right
    s = r.report["stats"]
    assert s["tiswatch/pages_without_product"] == 2           # the 20 MB page and the broken JSON-LD
    assert s["robotstxt/forbidden"] == 1 and st.get(f"shop:{first.item_id}") is None
    assert r.report["listings"] == 1

    # an administrator lets the shop crawl ignore robots.txt; a page over the size cap is refused
    home2, cfg2 = make_home(tmp_path, small_world, name="home2",
                            extra={"max_page_mb": 8}, more="[marketplaces.shop]\nobey_robots = false\n")
    r2 = run_crawl(home2, "shop", base_url=f"{server.url}/shop", config=cfg2, start_urls=urls[1::2], time_limit=240)
    assert r2.returncode == 0, log_tail(r2)
    assert r2.report["stats"]["tiswatch/oversize"] == 1 and "max_page_mb" in r2.log_path.read_text()
    assert SqliteStore(home2.listings_db).get(f"shop:{first.item_id}") is not None


def test_a_block_pauses_the_marketplace_and_the_next_crawl_resumes_at_the_blocked_page(server, small_world, tmp_path):
    home, cfg = make_home(tmp_path, small_world)
    server.sandbox.modes.block = {"lazada"}
    try:
        r = crawl_lazada(server, home, cfg)
    finally:
        server.sandbox.modes.block = set()
    assert r.returncode == 3 and r.reason == "blocked" and "punish" in r.report["blocked"]["why"], log_tail(r)
    assert r.report["stats"]["tiswatch/blocked"] >= 1
    assert SqliteStore(home.listings_db).counts()["listings"] == 0       # no garbage stored
    status = json.loads((home.crawl_dir / "status.json").read_text())["lazada"]
    assert status["state"] == "blocked" and status["paused_until"] > status["at"] and "punish" in status["blocked"]["why"]
    assert "blocked at" in r.log_path.read_text()
    paused = crawl_lazada(server, home, cfg)                               # paused: not even started
    assert paused.returncode == 3 and paused.reason == "paused" and not paused.report
    forced = crawl_lazada(server, home, cfg, force=True)                   # an officer insists
    assert forced.ok and forced.report["resumed"] and forced.report["run"] == r.report["run"], log_tail(forced)
    assert forced.report["listings"] == len(small_world.for_marketplace("lazada"))
    assert json.loads((home.crawl_dir / "status.json").read_text())["lazada"]["state"] == "ok"


def _listings_in(db) -> int:
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return c.execute("SELECT count(*) FROM listings").fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return 0


def _pending_requests(home, marketplace: str) -> int:
    """Requests the open run of a marketplace's frontier still has to fetch (what a resumed crawl re-issues)."""
    c = sqlite3.connect(home.crawl_dir / marketplace / "frontier.sqlite", timeout=5)
    try:
        return c.execute("SELECT count(*) FROM requests JOIN runs ON runs.id = requests.run"
                         " WHERE runs.state = 'open' AND requests.state = 'pending' AND data IS NOT NULL").fetchone()[0]
    finally:
        c.close()


def _kill9_when(home, cfg, server, at_least: int, timeout: float = 120, fetched: int = 0) -> None:
    """Start a crawl and kill -9 its process group once `at_least` listings are stored (or, with
    `fetched`, once the sandbox has answered that many more pages)."""
    cmd = crawl_command(home, "lazada", base_url=f"{server.url}/lazada", categories=lazada_categories(server), config=cfg)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(home.log_dir / "killed.out", "ab") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env, start_new_session=True)
        t0 = time.monotonic()
        pages0 = sum(server.sandbox.fetched.values())
        try:
            while (sum(server.sandbox.fetched.values()) < pages0 + fetched if fetched
                   else _listings_in(home.listings_db) < at_least):
                assert p.poll() is None, "the crawl ended before it could be killed"
                assert time.monotonic() - t0 < timeout
                time.sleep(0.05)
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _pages(server) -> Counter:
    """The marketplace pages fetched since the last call, with how often (robots.txt aside: every crawl asks)."""
    c = Counter({u: k for u, k in server.sandbox.fetched.items() if not u.endswith("/robots.txt")})
    server.sandbox.fetched.clear()
    return c


def _snapshot(home):
    st = SqliteStore(home.listings_db)
    db = st.db
    snap = {
        "listings": {r[0]: (r[1], r[2], r[3]) for r in db.execute("SELECT key, verdict, title, price FROM listings")},
        "observations": Counter(r[0] for r in db.execute("SELECT key FROM observations")),
        "changes": db.execute("SELECT count(*) FROM changes").fetchone()[0],
        "evidence": Counter((r[0], r[1]) for r in db.execute("SELECT key, kind FROM evidence")),
        "verdict_events": Counter(e.key for e in EventLog(home.home / "events.sqlite").read(kinds=["verdict"], limit=100_000)),
    }
    st.close()
    return snap


@pytest.mark.parametrize("worker", [False, True], ids=["one_process", "store_worker"])
def test_kill_9_twice_then_resume_loses_and_duplicates_nothing(server, small_world, tmp_path, worker):
    # writes are committed in batches ([crawl] store_batch): a kill costs the uncommitted ones fetched
    # again; small batches here, so that the kills land mid-crawl in this 30-listing world. With the
    # store worker ([crawl] store_worker) the killed crawl is compared with one in a single process
    batch = 4
    extra = {"concurrency": 2, "concurrency_per_domain": 2, "store_batch": batch}
    # the store worker: listings also wait in its queue (one batch, at least 8), in the pipe (a few
    # pages' worth) and in the batch it was not yet asked to commit
    waiting = batch + (max(8, batch) + 8 + batch if worker else 0)
    # pictures off: reading them keeps items in the pipeline longer, so how many pages are in flight at
    # a kill (the bound below) would depend on OCR speed; the image stage has tests of its own
    more = "[images]\nenabled = false\n"
    n = len(small_world.for_marketplace("lazada"))
    base, cfg = make_home(tmp_path, small_world, "uninterrupted", extra=extra, more=more)
    server.sandbox.modes.slow_ms = 40
    try:
        r = crawl_lazada(server, base, cfg)
        assert r.ok, log_tail(r)
        once = _pages(server)
        home, cfg2 = make_home(tmp_path, small_world, "killed", extra={**extra, "store_worker": worker}, more=more)
        _kill9_when(home, cfg2, server, n // 3)
        first = _listings_in(home.listings_db)
        # the store worker takes a moment to start, while the crawl fills its queue, and then stores
        # the backlog at once: the resumed crawl is killed once it has fetched a few pages
        _kill9_when(home, cfg2, server, 2 * n // 3, fetched=6 if worker else 0)
        second = _listings_in(home.listings_db)
        assert first <= second < n and (worker or first < second)
        pending = _pending_requests(home, "lazada")
        r2 = crawl_lazada(server, home, cfg2)
    finally:
        server.sandbox.modes.slow_ms = 0
    assert r2.ok and r2.report["resumed"], log_tail(r2)
    # every page the uninterrupted crawl fetched was fetched, nothing else, and again only the pages in
    # flight at a kill (at most 2 downloading and a few waiting to be stored) or not yet committed (less
    # than a batch), per kill
    killed = _pages(server)
    assert set(once.values()) == {1} and set(killed) == set(once)
    again = sorted(u for u, k in killed.items() if k > 1)
    assert sum(killed[u] - 1 for u in again) <= 2 * (8 + waiting), again
    # the resumed crawl re-issued every request the killed ones had written down. With the store worker
    # that can be none: the frontier is written when a commit is answered, and a kill can land before the
    # first one (the next crawl then starts over, skipping the listings already stored, as counted above)
    assert r2.report["stats"].get("tiswatch/frontier/resumed_requests", 0) == pending
    assert worker or pending > 0
    # the resumed crawl did not fetch again what was committed before the kills
    assert r2.report["stats"].get("tiswatch/listings", 0) <= n - second + 8 + waiting
    assert bool(r2.report["stats"].get("tiswatch/store_worker")) == worker
    a, b = _snapshot(base), _snapshot(home)
    assert len(a["listings"]) == n
    assert b["listings"] == a["listings"]                       # nothing lost, same content and verdicts
    assert set(b["observations"].values()) == {1}               # nothing stored twice
    assert b["changes"] == a["changes"] == 0
    assert set(b["verdict_events"].values()) == {1} and b["verdict_events"].keys() == a["verdict_events"].keys()
    assert set(b["evidence"].values()) == {1} and b["evidence"].keys() == a["evidence"].keys()


def _store_worker_of(pid: int) -> int | None:
    """The store worker process of a crawl child (crawlers/storeworker.py), if it is running."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[-1].split()
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == pid and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            return int(d)
    return None


def test_a_store_worker_killed_stops_the_crawl_and_the_next_run_loses_nothing(server, small_world, tmp_path):
    # [crawl] store_worker: the worker dies (kill -9) with listings in its queue and batch: the crawl
    # stops at once (reason store_worker_failed), none of those pages counts as done, and the resumed
    # crawl stores exactly what one uninterrupted crawl stores
    extra = {"concurrency": 2, "concurrency_per_domain": 2, "store_batch": 4}
    more = "[images]\nenabled = false\n"
    n = len(small_world.for_marketplace("lazada"))
    base, cfg = make_home(tmp_path, small_world, "uninterrupted", extra=extra, more=more)
    home, cfg2 = make_home(tmp_path, small_world, "worker", extra={**extra, "store_worker": True}, more=more)
    server.sandbox.modes.slow_ms = 40
    try:
        assert crawl_lazada(server, base, cfg).ok
        cmd = crawl_command(home, "lazada", base_url=f"{server.url}/lazada", categories=lazada_categories(server),
                            config=cfg2) + ["--log-file", str(home.log_dir / "crawl-lazada.log")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        pages0 = sum(server.sandbox.fetched.values())
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env,
                             start_new_session=True)
        try:
            # once the crawl has asked for half its pages the sandbox stops answering (for longer than the
            # wait below), so the crawl cannot finish before its worker is killed, however slowly the
            # worker starts on a busy machine (it did: the crawl fetched everything meanwhile and the
            # worker had committed it all by the time the kill landed)
            t0 = time.monotonic()
            while sum(server.sandbox.fetched.values()) < pages0 + n // 2:
                assert p.poll() is None, "the crawl ended before its worker could be killed"
                assert time.monotonic() - t0 < 120
                time.sleep(0.01)
            server.sandbox.modes.slow_ms = 60_000
            while _listings_in(home.listings_db) < 4:
                assert p.poll() is None, "the crawl ended before its worker could be killed"
                assert time.monotonic() - t0 < 120
                time.sleep(0.05)
            worker = _store_worker_of(p.pid)
            assert worker is not None
            os.kill(worker, signal.SIGKILL)
            assert p.wait(timeout=120) == 1
        finally:
            server.sandbox.modes.slow_ms = 40
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        report = json.loads((home.crawl_dir / "lazada" / "last_run.json").read_text())
        assert report["reason"] == "store_worker_failed" and not report["complete"]
        assert "store worker" in (home.log_dir / "crawl-lazada.log").read_text()
        assert _listings_in(home.listings_db) < n
        r2 = crawl_lazada(server, home, cfg2)
    finally:
        server.sandbox.modes.slow_ms = 0
    assert r2.ok and r2.report["resumed"], log_tail(r2)
    # the killed worker was reported; the resumed crawl's worker, which ended when asked, was not
    assert (home.log_dir / "crawl-lazada.log").read_text().count("the store worker exited: the crawl stops") == 1, log_tail(r2)
    a, b = _snapshot(base), _snapshot(home)
    assert len(a["listings"]) == n and b["listings"] == a["listings"]
    assert set(b["observations"].values()) == {1}
    assert set(b["verdict_events"].values()) == {1} and b["verdict_events"].keys() == a["verdict_events"].keys()
    assert set(b["evidence"].values()) == {1} and b["evidence"].keys() == a["evidence"].keys()
