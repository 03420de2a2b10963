"""The crawlers' pure decisions, as tables: backoff, search cards and refetching, block pages, start
points, the pause after a block."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from crawlers.incremental import RefetchPolicy, card_hash, decide
from crawlers.keywords import SEEDS_FILE, load_seeds, start_points
from crawlers.middlewares import backoff_delay
from crawlers.parsers.blocks import block_reason
from crawlers.run import paused_until
from listings.store import FetchState
from settings import MarketplaceSettings
from tests.conftest import MARKETPLACES

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize("attempt, retry_after, rand, expected", [
    (1, None, 0.5, 0.5),          # base
    (2, None, 0.5, 1.0),          # doubles
    (4, None, 0.5, 4.0),
    (20, None, 0.5, 60.0),        # capped
    (1, "7", 0.5, 7.0),           # the site's Retry-After wins
    (1, " 2.5 ", 0.0, 1.875),     # jitter: -25%
    (1, "2", 0.999, 2.499),       # ... up to +25%
    (3, "Wed, 21 Oct 2015 07:28:00 GMT", 0.5, 2.0),  # an HTTP date: exponential instead
    (1, "3600", 0.5, 60.0),       # an absurd Retry-After is capped too
    (1, "-5", 0.5, 0.0),
])
def test_backoff_delay(attempt, retry_after, rand, expected):
    assert backoff_delay(attempt, retry_after, 0.5, 60.0, rand) == pytest.approx(expected)


CARD = {"marketplace": "shopee", "item_id": "1", "title": "พัดลม  Hatari 16 นิ้ว", "price": 590.0, "sold": 1200,
        "seller": "ร้าน A", "images": ["a"]}


@pytest.mark.parametrize("change, same", [
    ({"sold": 5000}, True),                       # sold counts move all the time: not a change
    ({"images": ["b"]}, True),
    ({"title": "พัดลม Hatari 16 นิ้ว"}, True),       # whitespace
    ({"title": "พัดลม HATARI 16 นิ้ว"}, True),       # case
    ({"price": 590}, True),                       # 590 == 590.0
    ({"price": 490.0}, False),
    ({"title": "พัดลม Hatari 18 นิ้ว"}, False),
    ({"seller": "ร้าน B"}, False),
    ({"brand": "Hatari"}, False),
    ({"location": "ต่างประเทศ"}, False),
])
def test_card_hash(change, same):
    assert (card_hash(CARD) == card_hash({**CARD, **change})) is same


P = RefetchPolicy(every=7 * DAY, flagged_every=DAY)


def st(**kw):
    base = {"ref": "1", "keys": ["shopee:1"], "card_hash": "h", "fetched_at": NOW - 2 * DAY, "status": "active",
            "verdict": "licensed"}
    return FetchState(**{**base, **kw})


@pytest.mark.parametrize("card, state, fetch, why", [
    ("h", None, True, "new"),
    ("h", st(keys=[]), True, "new"),
    ("h", st(status=None), True, "new"),                      # fetched once but nothing was stored
    ("h", st(status="delisted"), True, "relisted"),
    ("h2", st(), True, "changed"),
    ("h", st(), False, "unchanged"),
    ("h", st(fetched_at=NOW - 7 * DAY), True, "due"),
    ("h", st(fetched_at=None), True, "due"),                  # stored before crawl bookkeeping existed
    ("h", st(verdict="unlicensed"), True, "due"),             # flagged: due after a day
    ("h", st(verdict="unlicensed", fetched_at=NOW - DAY / 2), False, "unchanged"),
    (None, st(), False, "unchanged"),                         # no card (a sitemap without lastmod): by age only
    (None, st(fetched_at=NOW - 8 * DAY), True, "due"),
    ("h", st(card_hash=None), False, "unchanged"),            # fetched by a revisit, without a card
])
def test_decide(card, state, fetch, why):
    d = decide(card, state, NOW, P)
    assert (d.fetch, d.why) == (fetch, why)


@pytest.mark.parametrize("url, status, body, blocked", [
    ("https://shopee.co.th/api/v4/search/search_items", 200, '{"error":90309999,"action_type":2}', True),
    ("https://shopee.co.th/api/v4/search/search_items", 200, '{"error": 90309999, "is_login": false}', True),
    ("https://shopee.co.th/verify/captcha?anti_bot_tracking_id=1", 200, "<html></html>", True),
    ("https://www.lazada.co.th/x", 200, "<script>var url='/_____tmd_____/punish?x5secdata=1'</script>", True),
    ("https://shop.example/p", 403, "<title>Just a moment...</title><div id=cf-chl-widget>", True),
    ("https://shop.example/p", 503, "<html><head><title>Attention Required! | Cloudflare</title>", True),
    ("https://shop.example/p", 429, "<title>Are you a robot?</title>", True),
    # not blocks: ordinary pages, even ones that talk about captchas, and plain errors
    ("https://shop.example/p", 200, "<title>Captcha solver USB dongle</title><p>captcha</p>", False),
    ("https://shop.example/p", 404, "<title>Not found</title>", False),
    ("https://shopee.co.th/api/v4/pdp/get_pc", 200, '{"error":4,"error_msg":"item not found"}', False),
    ("https://www.lazada.co.th/x", 200, "<p>punish the bad guys</p>", False),
])
def test_block_reason(url, status, body, blocked):
    assert (block_reason(url, status, body) is not None) is blocked
    assert (block_reason(url, status, body.encode()) is not None) is blocked


def mp(**kw):
    return MarketplaceSettings(**kw)


@pytest.mark.parametrize("cfg, kw, cats, expected_kw, expected_cats, explicit", [
    (mp(), [], [], ["w1", "w2"], ["s1"], False),                                  # catalogue words + seeds
    (mp(keywords=["k", "w1"]), [], [], ["k", "w1", "w2"], ["s1"], False),          # configured first, deduped
    (mp(catalogue_keywords=False, seed_categories=False, categories=["c"]), [], [], [], ["c"], False),
    (mp(), ["only"], [], ["only"], [], True),                                      # given for this crawl: only that
    (mp(), [], ["cat"], [], ["cat"], True),
    (None, [], [], ["w1", "w2"], ["s1"], False),                                  # no configuration at all
])
def test_start_points(cfg, kw, cats, expected_kw, expected_cats, explicit):
    sp = start_points("lazada", cfg, kw, cats, ["w1", "w2"], {"lazada": ["s1"], "shopee": ["x"]})
    assert (sp.keywords, sp.categories, sp.explicit) == (expected_kw, expected_cats, explicit)


def test_seed_file_is_a_subset_of_the_real_seeds():
    seeds = load_seeds()
    assert len(seeds["lazada"]) >= 30 and len(seeds["shopee"]) >= 10
    real = json.loads((MARKETPLACES / "lazada" / "lazada_shopee_th_category_seed_urls.json").read_text())
    lazada = {u.rstrip("/").rsplit("/", 1)[-1] for g in real.values() for u in g.get("lazada", [])}
    shopee = {u.split("?")[0].rsplit("/", 1)[-1] for g in real.values() for u in g.get("shopee", [])}
    assert set(seeds["lazada"]) <= lazada and set(seeds["shopee"]) <= shopee
    assert "shop-mobile-tablets-power-bank" in seeds["lazada"]


def test_bad_seed_file_names_itself(tmp_path):
    p = tmp_path / "seeds.toml"
    p.write_text("[lazada]\ncategories = ['ok', 3]\n")
    with pytest.raises(ValueError, match=r"seeds\.toml.*\[lazada\]"):
        load_seeds(p)
    p.write_text("[lazada\n")
    with pytest.raises(ValueError, match=r"seeds\.toml"):
        load_seeds(p)
    assert SEEDS_FILE.exists()


@pytest.mark.parametrize("status, expected", [
    ({}, None),
    ({"shopee": {"state": "ok"}}, None),
    ({"shopee": {"state": "blocked", "paused_until": (NOW + DAY).isoformat()}}, NOW + DAY),
    ({"shopee": {"state": "blocked", "paused_until": (NOW - DAY).isoformat()}}, None),   # the pause is over
    ({"shopee": {"state": "blocked", "paused_until": "garbage"}}, None),
    ({"lazada": {"state": "blocked", "paused_until": (NOW + DAY).isoformat()}}, None),  # another marketplace
])
def test_paused_until(status, expected):
    assert paused_until(status, "shopee", NOW) == expected


@pytest.mark.parametrize("value, cpus, on", [
    ("auto", 1, False), ("auto", 2, True), ("auto", 16, True),   # the default: a core for the worker
    (True, 1, True), (False, 16, False),                          # an administrator's choice wins
])
def test_store_worker_setting(value, cpus, on):
    from crawlers.storeworker import wanted
    from settings import CrawlSettings

    assert wanted(CrawlSettings(store_worker=value), cpu_count=cpus) is on


@pytest.mark.parametrize("toml, env, expected", [
    ("", {}, "auto"), ("store_worker = true\n", {}, True), ("store_worker = false\n", {}, False),
    ('store_worker = "auto"\n', {}, "auto"), ("", {"TISWATCH_CRAWL__STORE_WORKER": "false"}, False),
    ("store_worker = false\n", {"TISWATCH_CRAWL__STORE_WORKER": "auto"}, "auto"),
])
def test_store_worker_from_config_and_environment(tmp_path, toml, env, expected):
    from settings import load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text("[crawl]\n" + toml)
    assert load_settings(config=cfg, home=tmp_path / "h", environ=env).crawl.store_worker == expected


def test_a_store_worker_value_that_is_not_one_is_refused(tmp_path):
    from settings import ConfigError, load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text('[crawl]\nstore_worker = "sometimes"\n')
    with pytest.raises(ConfigError, match="store_worker"):
        load_settings(config=cfg, home=tmp_path / "h", environ={})


@pytest.mark.parametrize("marketplace, screenshots, plain", [
    ("lazada", False, True), ("shop", False, True), ("lazada", True, False), ("shopee", False, False),
])
def test_plain_http_reads_the_download_handlers(tmp_path, marketplace, screenshots, plain):
    """crawlers.run gives the garbage collector a larger young generation only to crawls without a
    browser: what the Scrapy settings' download handlers say."""
    from scrapy.settings import Settings

    from crawlers.run import _plain_http
    from crawlers.settings import scrapy_settings
    from settings import load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[crawl]\nscreenshots = {str(screenshots).lower()}\n")
    s = Settings()
    s.setmodule("crawlers.settings", priority="project")
    s.update(scrapy_settings(load_settings(config=str(cfg), home=tmp_path, environ={}), marketplace), priority="cmdline")
    assert _plain_http(s) is plain


def test_root_logger_takes_the_lowest_handler_level():
    """crawlers.run raises the root logger from NOTSET to the lowest level a handler writes, so DEBUG
    records no handler writes are never made; what the handlers write is the same. A handler that
    takes every level (NOTSET) leaves the root alone."""
    import logging

    from crawlers.run import _root_level_of_handlers

    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    # other tests of this process may have left handlers on named loggers: out of the way meanwhile
    others = [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger) and lg.handlers]
    saved_others = [(lg, lg.handlers[:]) for lg in others]
    for lg in others:
        lg.handlers[:] = []
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    try:
        root.handlers[:] = [Keep(logging.INFO), Keep(logging.WARNING)]
        root.setLevel(logging.NOTSET)
        _root_level_of_handlers()
        assert root.level == logging.INFO
        log = logging.getLogger("tiswatch.test.levels")
        assert not log.isEnabledFor(logging.DEBUG)
        log.debug("dropped")
        log.info("kept")
        log.warning("kept twice")
        assert seen == ["kept", "kept twice", "kept twice"]
        root.handlers[:] = [Keep(logging.NOTSET), Keep(logging.INFO)]
        root.setLevel(logging.NOTSET)
        _root_level_of_handlers()
        assert root.level == logging.NOTSET
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for lg, hs in saved_others:
            lg.handlers[:] = hs
