"""Item pipelines: validate (DOMAIN.md §4.2) → check (matching.check) → store → evidence for flags.

Spiders yield plain dicts; keys starting with "_" carry what only the pipelines need (the raw response,
the rendered page, a screenshot, a verdict already computed by the spider) and never reach the store.
A bad item is dropped with a log line naming its URL; it never stops the crawl.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from scrapy.exceptions import DropItem

from crawlers.context import context_for
from listings.evidence import dumps_indented
from listings.model import Listing

log = logging.getLogger(__name__)


class _Base:
    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    @property
    def ctx(self):
        return context_for(self.crawler)

    def _remote(self) -> bool:
        """The store worker checks, stores and keeps evidence ([crawl] store_worker, crawlers/storeworker.py)."""
        return getattr(getattr(self.ctx, "_batch", None), "remote", False)


class ValidatePipeline(_Base):
    def process_item(self, item: dict[str, Any], spider=None) -> dict[str, Any]:
        data = {k: v for k, v in item.items() if not k.startswith("_")}
        data.setdefault("observed_at", datetime.now(UTC))
        try:
            item["_listing"] = Listing.model_validate(data)
        except ValidationError as e:
            self.crawler.stats.inc_value("tiswatch/invalid")
            first = e.errors()[0]
            raise DropItem(f"invalid listing from {item.get('url') or item.get('_url') or '?'}: "
                           f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}") from None
        return item


_check: Any = None  # matching.check, once imported


class CheckPipeline(_Base):
    def process_item(self, item: dict[str, Any], spider=None) -> dict[str, Any]:
        if self._remote():
            return item  # checked by the store worker
        global _check
        check = _check
        if check is None:  # imported on first use (not at import: the crawl process may never check)
            from matching import check

            _check = check
        # claims read from the listing's pictures (images/pipeline.py) join the text's: check again
        if item.get("_verdict") is None or item.get("_image_claims"):
            item["_verdict"] = check(item["_listing"], self.ctx.registry, image_claims=item.get("_image_claims"))
        v = item["_verdict"]
        self.crawler.stats.inc_value(f"tiswatch/verdict/{v.verdict}")
        return item


class StorePipeline(_Base):
    """Stores the listing and its verdict, then writes the events (verdict change, relisting), then
    notes what the next crawl compares its search card with.

    The store and the event log are two databases, so a crawl killed (kill -9) between the two commits
    has stored a verdict without its event. Such a page is fetched again by the resumed run (the fetch
    is noted last, so the incremental crawl cannot skip it), and a resumed run writes the event that
    is missing: the listing's stored verdict differs from its latest verdict event.

    Writes are batched ([crawl] store_batch, crawlers/batch.py): committed every N listings or T
    seconds, when the crawl goes idle and when it closes, in the same order as above."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self._timer = None

    def open_spider(self, spider=None) -> None:
        import gc

        # objects of the start-up left out of the collector's full passes (crawlers.procmem.freeze_start_up)
        self.crawler.stats.set_value("tiswatch/gc_frozen", gc.get_freeze_count())
        self.crawler.stats.set_value("tiswatch/gc_young_threshold", gc.get_threshold()[0])
        batch = getattr(self.ctx, "batch", None)
        if batch is None:
            return
        if getattr(batch, "remote", False):
            stats = self.crawler.stats

            def add(counts: dict[str, Any]) -> None:
                for k, v in counts.items():
                    stats.inc_value(k, v)

            batch.on_stats = add
            batch.on_failed = self._worker_failed
            stats.set_value("tiswatch/store_worker", 1)
        batch.start()
        if getattr(batch, "prestarted", False):
            self.crawler.stats.set_value("tiswatch/store_worker/prestarted", 1)
        from twisted.internet import task

        self._timer = task.LoopingCall(batch.flush_if_due)
        self._timer.start(max(0.05, batch.max_seconds / 2), now=False)

    def close_spider(self, spider=None) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        batch = getattr(self.ctx, "_batch", None)
        if batch is not None:
            batch.stop()

    def _worker_failed(self, why: str) -> None:
        from scrapy.utils.defer import deferred_from_coro

        self.ctx.complete = False
        self.crawler.stats.set_value("tiswatch/store_worker/failed", why)
        if self.crawler.engine is not None and self.crawler.engine.spider is not None:
            d = deferred_from_coro(self.crawler.engine.close_spider_async(reason="store_worker_failed"))
            d.addErrback(lambda f: log.error("closing the crawl after the store worker failed: %s", f.getErrorMessage()))

    def process_item(self, item: dict[str, Any], spider=None) -> dict[str, Any]:
        listing: Listing = item["_listing"]
        batch = getattr(self.ctx, "_batch", None)
        if getattr(batch, "remote", False):
            from crawlers.storeworker import StoreWorkerFailed

            try:
                batch.send_item(dict(item))  # a copy: the sender thread pickles it while the crawl goes on
                batch.item_stored()
            except StoreWorkerFailed as e:
                raise DropItem(f"not stored ({e}): {listing.url}") from None
            self.ctx.seen.add(listing.key)
            return item
        v = item["_verdict"]
        res = self.ctx.store.ingest(listing, v, listing.observed_at)
        self.ctx.seen.add(listing.key)
        self.crawler.stats.inc_value("tiswatch/listings")
        if res.new_listing:
            self.crawler.stats.inc_value("tiswatch/new_listings")
        item["_ingest"] = res
        previous: str | None = res.previous_verdict
        missing = False
        if not res.verdict_changed and self._resumed():
            last = self.ctx.events.last_of("verdict", listing.key)
            missing = last is None or last.data.get("verdict") != v.verdict
            if missing:
                previous = last.data.get("verdict") if last is not None else None
                self.crawler.stats.inc_value("tiswatch/events_repaired")
        if res.verdict_changed or missing:
            from listings.events import verdict_event

            self.ctx.events.append("verdict", listing.key, verdict_event(v, previous, listing.marketplace, "crawl"))
            # structured logs carry the listing (ops/logs.py); a first verdict is no news at INFO
            log.log(logging.INFO if previous else logging.DEBUG, "verdict of %s: %s → %s (risk %s)",
                    listing.key, previous, v.verdict, v.risk, extra={"listing": listing.key})
        if any(c[0] == "relisted" for c in res.changes):
            self.ctx.events.append("relisted", listing.key, {"marketplace": listing.marketplace})
        if item.get("_ref"):  # what the next crawl compares its search card with (crawlers/incremental.py)
            self.ctx.store.record_fetch(listing.marketplace, item["_ref"], item.get("_ref_keys") or [listing.key],
                                        item.get("_card"), listing.observed_at or datetime.now(UTC))
        batch = getattr(self.ctx, "_batch", None)
        if batch is not None:
            batch.item_stored()
        return item

    def _resumed(self) -> bool:
        run = getattr(getattr(self.ctx, "frontier", None), "run", None)
        return bool(getattr(run, "resumed", False))


def relative_path(path: Any, home: Any) -> str:
    """str(path.relative_to(home)), from the strings where path is below home (evidence files are:
    Path.relative_to parses both paths each time, five times per flagged listing)."""
    p, under = str(path), str(home) + os.sep
    return p[len(under):] if p.startswith(under) else str(path.relative_to(home))


class EvidencePipeline(_Base):
    """Keeps the raw response, rendered HTML and screenshot of every flagged listing, with a manifest."""

    def process_item(self, item: dict[str, Any], spider=None) -> dict[str, Any]:
        if self._remote():
            return item  # kept by the store worker
        v = item["_verdict"]
        listing: Listing = item["_listing"]
        if not v.flagged:
            return item
        res = item.get("_ingest")
        if res is not None and not (res.new_observation or res.verdict_changed) and self.ctx.store.evidence(listing.key):
            return item  # the same view was captured before
        files: dict[str, tuple[str, bytes]] = {}
        raw = item.get("_raw")
        if raw:
            name = "response.json" if item.get("_raw_kind") == "json" else "response.html"
            files["raw"] = (name, raw if isinstance(raw, bytes) else str(raw).encode())
        if item.get("_html"):
            files["html"] = ("page.html", item["_html"].encode() if isinstance(item["_html"], str) else item["_html"])
        if item.get("_screenshot"):
            files["screenshot"] = ("screenshot.png", item["_screenshot"])
        files.update(item.get("_evidence_files") or {})  # other stages' files, e.g. the pictures (images/)
        files["verdict"] = ("verdict.json", dumps_indented(v.detail()).encode())
        files["listing"] = ("listing.json", dumps_indented(listing.record()).encode())
        at = listing.observed_at or datetime.now(UTC)
        _, written = self.ctx.evidence.save(listing.marketplace, listing.item_id, listing.url, files, at,
                                                 {"source_urls": item.get("_sources", []), **(item.get("_evidence_extra") or {})})
        store, home = self.ctx.store, self.ctx.settings.home
        for f in written:
            store.add_evidence(listing.key, f.kind, relative_path(f.path, home), f.sha256, f.size, at)
        self.crawler.stats.inc_value("tiswatch/evidence")
        return item
