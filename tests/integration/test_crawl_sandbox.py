"""Spiders against the sandbox marketplaces, each crawl in its own child process as in production."""

import json
import urllib.request

import pytest

from crawlers.runner import run_crawl
from listings.sqlite_store import SqliteStore
from registry.store import RegistryStore, bulk


@pytest.fixture
def crawl_home(home, world):
    rs = RegistryStore(home.registry_db)
    rs.import_licences(bulk(world.licences))
    rs.close()
    cfg = home.home / "fast.toml"
    cfg.write_text("[crawl]\ndownload_delay = 0.0\nautothrottle = false\nconcurrency = 16\nconcurrency_per_domain = 16\n")
    return home, str(cfg)


def _verdicts_match(store, world, marketplace):
    wrong = []
    for w in world.for_marketplace(marketplace):
        d = store.get(f"{marketplace}:{w.item_id}")
        assert d is not None, f"{w.item_id} not stored"
        if (d["verdict"], d["tis_no"], d["licence_no"]) != (w.expected["verdict"], w.expected["tis_no"], w.expected["licence_no"]):
            wrong.append((w.listing["title"], w.expected, d["verdict"], d["reasons"]))
    return wrong


@pytest.mark.slow
@pytest.mark.parametrize("marketplace", ["lazada", "shop"])
def test_http_spiders_store_every_listing_with_the_right_verdict(sandbox, world, crawl_home, marketplace):
    home, cfg = crawl_home
    seeds = json.load(urllib.request.urlopen(sandbox.url + "/_sandbox/seeds.json"))
    kw = {"categories": seeds["lazada"]["categories"]} if marketplace == "lazada" else {"sitemap": seeds["shop"]["sitemap"]}
    if marketplace == "shop":  # rendering for screenshots is the same code for both; Chromium time is spent once
        with open(cfg, "a") as f:
            f.write("screenshots = false\n")
    r = run_crawl(home, marketplace, base_url=f"{sandbox.url}/{marketplace}", config=cfg, time_limit=300, **kw)
    assert r.ok, r.log_path.read_text()[-3000:]
    st = SqliteStore(home.listings_db)
    assert st.counts()["by_marketplace"][marketplace] == len(world.for_marketplace(marketplace))
    assert _verdicts_match(st, world, marketplace) == []
    flagged = [w for w in world.for_marketplace(marketplace) if w.expected["verdict"] in ("unlicensed", "mislabeled", "needs_review")]
    ev = st.evidence(f"{marketplace}:{flagged[0].item_id}")
    # the listing's pictures are kept with the evidence too (images/, one kind "image:N" each)
    pictures = [e for e in ev if e["kind"].startswith("image:")]
    assert [e["kind"] for e in pictures] == [f"image:{i}" for i in range(1, len(st.get(f"{marketplace}:{flagged[0].item_id}")["images"]) + 1)]
    ev = [e for e in ev if e not in pictures]
    if marketplace == "shop":
        assert {e["kind"] for e in ev} == {"raw", "verdict", "listing", "manifest"}
    else:  # plain-HTTP pages of flagged listings are rendered in Chromium for the screenshot
        from listings.evidence import verify_manifest

        assert {e["kind"] for e in ev} == {"raw", "html", "screenshot", "verdict", "listing", "manifest"}
        shot = next(e for e in ev if e["kind"] == "screenshot")
        assert (home.home / shot["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert verify_manifest((home.home / shot["path"]).parent) == []
        assert r.report["stats"]["tiswatch/screenshots"] == len(flagged)
        assert r.report["stats"]["tiswatch/browser_pages_open_at_end"] == 0
    assert r.report["listings"] == len(world.for_marketplace(marketplace))
    # every listing's first verdict is an event for the alerts and the other consumers
    from listings.events import EventLog

    events = EventLog(home.home / "events.sqlite").read(limit=10_000, kinds=["verdict"])
    assert {e.key for e in events} == {f"{marketplace}:{w.item_id}" for w in world.for_marketplace(marketplace)}
    assert all(e.data["source"] == "crawl" and e.data["previous"] is None for e in events)


@pytest.mark.slow
def test_blocked_marketplace_stops_and_reports(sandbox, crawl_home):
    home, cfg = crawl_home
    req = urllib.request.Request(sandbox.url + "/_sandbox/config", data=json.dumps({"block": ["lazada"]}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).read()
    try:
        r = run_crawl(home, "lazada", base_url=f"{sandbox.url}/lazada", config=cfg, time_limit=120,
                      categories=[f"{sandbox.url}/lazada/shop-general/"])
    finally:
        req = urllib.request.Request(sandbox.url + "/_sandbox/config", data=json.dumps({"block": []}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req).read()
    assert r.returncode == 3 and r.reason == "blocked"
    assert "punish" in r.report["blocked"]["why"]
    status = json.loads((home.crawl_dir / "status.json").read_text())
    assert status["lazada"]["state"] == "blocked"
    assert SqliteStore(home.listings_db).counts()["listings"] == 0


@pytest.mark.slow
def test_plain_scrapy_commands_work_from_the_repository_root(sandbox, home, world):
    import os
    import subprocess
    import sys

    from settings import ROOT

    env = {**os.environ, "TISWATCH_HOME": str(home.home), "PYTHONPATH": str(ROOT)}
    scrapy = [sys.executable, "-m", "scrapy"]
    out = subprocess.run([*scrapy, "list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["lazada", "shop", "shopee"], out.stderr[-2000:]
    item = world.for_marketplace("shop")[0]
    url = f"{sandbox.url}/shop/product/{item.item_id}.html"
    out = subprocess.run([*scrapy, "crawl", "shop", "-a", f"start_urls={url}", "-s", "LOG_LEVEL=INFO"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert SqliteStore(home.listings_db).get(f"shop:{item.item_id}")["title"] == item.listing["title"]
    assert json.loads((home.crawl_dir / "shop" / "last_run.json").read_text())["reason"] == "finished"
