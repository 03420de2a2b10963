"""The image stage end to end: a sandbox world whose claims are partly only in the listings' pictures,
crawled by the real spiders in child processes; the verdicts must equal the truth."""

import json
import urllib.request
from pathlib import Path

import pytest
from image_helpers import needs_tesseract

from crawlers.runner import run_crawl
from listings.evidence import verify_manifest
from listings.sqlite_store import SqliteStore
from registry.store import RegistryStore, bulk
from sandbox.server import SandboxServer
from sandbox.world import build_world

FAST = "[crawl]\ndownload_delay = 0.0\nautothrottle = false\nconcurrency = 16\nconcurrency_per_domain = 16\n"


@pytest.fixture(scope="module")
def image_world(catalogue):
    from sandbox.images import image_name

    w = build_world(seed=11, n_listings=66, catalogue=catalogue, image_only_share=0.9)
    # one operator, two shops: a lazada listing re-uses (re-encoded) the cover photo of a shop listing
    a = next(x for x in w.for_marketplace("shop") if w.images[image_name(x, 0)].kind == "photo")
    b = next(x for x in w.for_marketplace("lazada") if x.listing["seller_id"] != a.listing["seller_id"])
    src, dst = w.images[image_name(a, 0)], w.images[image_name(b, 0)]
    dst.kind, dst.seed, dst.brand, dst.variant, dst.quality, dst.reused_from = "photo", src.seed, src.brand, "jpeg", 45, src.name
    dst.angle, dst.scale, dst.noise = 0.0, 1.0, 0.0
    src.variant, src.angle, src.scale, src.noise, src.quality = "clean", 0.0, 1.0, 0.0, 90
    w.reuse_pair = (a, b)
    return w


@pytest.fixture(scope="module")
def image_sandbox(image_world):
    with SandboxServer(image_world) as srv:
        yield srv


def _home(home, world, extra=""):
    rs = RegistryStore(home.registry_db)
    rs.import_licences(bulk(world.licences))
    rs.close()
    cfg = home.home / "fast.toml"
    cfg.write_text(FAST + extra)
    return str(cfg)


def _crawl(srv, home, cfg, marketplace):
    seeds = json.load(urllib.request.urlopen(srv.url + "/_sandbox/seeds.json"))
    kw = {"categories": seeds["lazada"]["categories"]} if marketplace == "lazada" else {"sitemap": seeds["shop"]["sitemap"]}
    r = run_crawl(home, marketplace, base_url=f"{srv.url}/{marketplace}", config=cfg, time_limit=600, **kw)
    assert r.ok, r.log_path.read_text()[-3000:]
    return r


def _wrong(store, world, marketplace):
    out = []
    for w in world.for_marketplace(marketplace):
        d = store.get(f"{marketplace}:{w.item_id}")
        got = (d["verdict"], d["tis_no"], d["licence_no"]) if d else None
        if got != (w.expected["verdict"], w.expected["tis_no"], w.expected["licence_no"]):
            out.append((w.scenario, w.expected, got, d and d["reasons"]))
    return out


@pytest.mark.slow
@needs_tesseract
def test_claims_only_in_pictures_end_with_the_right_verdict(image_sandbox, image_world, home):
    cfg = _home(home, image_world)
    for marketplace in ("shop", "lazada"):
        only = [w for w in image_world.for_marketplace(marketplace) if "/" in w.scenario]
        assert len(only) >= 3, "the world should hold listings whose claim is only in a picture"
        r = _crawl(image_sandbox, home, cfg, marketplace)
        st = SqliteStore(home.listings_db)
        assert _wrong(st, image_world, marketplace) == []
        stats = r.report.get("stats", {})
        assert stats.get("tiswatch/images/fetched", 0) >= len(image_world.for_marketplace(marketplace))
        assert stats.get("tiswatch/images/claims", 0) >= len(only)

        # the reasons say which picture a claim was read from, and the verdict keeps where in it
        w = next(x for x in only if x.expected["verdict"] == "mislabeled")
        key = f"{marketplace}:{w.item_id}"
        d = st.get(key)
        assert any(r.split(":")[0] in ("claims_tis_image", "claims_licence_image", "qr_licence") for r in d["reasons"])
        detail = d["detail"] if isinstance(d["detail"], dict) else json.loads(d["detail"])
        boxes = [c for c in detail["claims"] if c["where"].startswith("image:")]
        assert boxes and all(len(c["box"]) == 4 and c["box"][2] > c["box"][0] for c in boxes)

        # the pictures of a flagged listing are kept with its evidence, their SHA-256 in the manifest
        pics = [e for e in st.evidence(key) if e["kind"].startswith("image:")]
        assert pics
        folder = home.home / pics[0]["path"].rsplit("/", 1)[0]
        manifest = json.loads((folder / "manifest.json").read_text())
        assert {f["sha256"] for f in manifest["files"] if f["kind"].startswith("image:")} == {p["sha256"] for p in pics}
        assert manifest["images"][0]["url"].startswith(image_sandbox.url)
        assert verify_manifest(folder) == []
        assert [i["index"] for i in st.images_of(key)] == list(range(1, len(st.get(key)["images"]) + 1))
        st.close()

    # the re-used photo links the two shops, and nothing else is linked to it
    a, b = image_world.reuse_pair
    st = SqliteStore(home.listings_db)
    same = st.same_images(f"lazada:{b.item_id}")
    assert [(s["key"], s["image"], s["index"]) for s in same] == [(f"shop:{a.item_id}", 1, 1)]
    assert same[0]["seller"] == st.get(f"shop:{a.item_id}")["seller"] != st.get(f"lazada:{b.item_id}")["seller"]
    assert same[0]["distance"] <= 4


@pytest.mark.slow
def test_stage_switched_off_reads_no_picture(image_sandbox, image_world, home):
    cfg = _home(home, image_world, "[images]\nenabled = false\n")
    r = _crawl(image_sandbox, home, cfg, "shop")
    # (a browser rendering a flagged page for its screenshot loads the page's pictures: not the stage)
    assert not any(k.startswith("tiswatch/images/") for k in r.report.get("stats", {}))
    assert not (home.home / "images.sqlite").exists()
    st = SqliteStore(home.listings_db)
    keys = [f"shop:{w.item_id}" for w in image_world.for_marketplace("shop")]
    assert all(st.images_of(k) == [] for k in keys)
    assert not any(e["kind"].startswith("image:") for k in keys for e in st.evidence(k))
    # the claims that were only in pictures are not seen: text-only verdicts
    only = [w for w in image_world.for_marketplace("shop") if "/" in w.scenario and w.expected["verdict"] == "mislabeled"]
    assert only and all(st.get(f"shop:{w.item_id}")["verdict"] != "mislabeled" for w in only)


def test_max_pages_counts_pages_not_pictures(image_sandbox, image_world, home):
    """[crawl] max_pages caps the pages a crawl fetches: the pictures the image stage downloads (two or
    three a listing) and robots.txt do not use it up (with Scrapy's CLOSESPIDER_PAGECOUNT they did, and
    a crawl asked for N pages with pictures on got far fewer listings)."""
    cap = 12
    cfg = _home(home, image_world, f"max_pages = {cap}\n[images]\nocr = false\n")
    # one request at a time, so that few responses are still on their way when the cap is reached
    Path(cfg).write_text(Path(cfg).read_text().replace("concurrency = 16", "concurrency = 1")
                         .replace("concurrency_per_domain = 16", "concurrency_per_domain = 1"))
    seeds = json.load(urllib.request.urlopen(image_sandbox.url + "/_sandbox/seeds.json"))
    r = run_crawl(home, "lazada", base_url=f"{image_sandbox.url}/lazada", config=cfg, time_limit=600,
                  categories=seeds["lazada"]["categories"])
    assert r.report["reason"] == "closespider_pagecount", r.log_path.read_text()[-3000:]
    st = r.report["stats"]
    pictures = st.get("tiswatch/images/requests", 0)
    assert pictures > 0 and st.get("tiswatch/images/fetched", 0) > 0   # the image stage did download pictures
    robots = st.get("robotstxt/response_count", 0)
    assert robots >= 1
    pages = st["response_received_count"] - pictures - robots
    assert pages >= cap                      # every page of the cap was a page
    assert st["tiswatch/pages"] >= cap
    assert st["response_received_count"] >= cap + pictures
    assert len(image_world.for_marketplace("lazada")) > cap  # the world had more: the cap stopped it
