"""Retries with exponential backoff (honouring Retry-After), and the end-of-crawl report."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import UTC, datetime

from scrapy import signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request

from crawlers.context import context_for

log = logging.getLogger(__name__)


class BackoffRetryMiddleware(RetryMiddleware):
    """Like Scrapy's RetryMiddleware, but waits before a retry: Retry-After when the site gives it,
    else base × 2^attempt with jitter, capped. A 429 storm therefore slows the crawl down instead of
    hammering the site."""

    base_delay = 0.5
    max_delay = 60.0

    async def process_response(self, request, response, spider=None):
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        attempt = request.meta.get("retry_times", 0) + 1
        delay = None
        ra = response.headers.get("Retry-After")
        if ra:
            try:
                delay = float(ra.decode())
            except ValueError:
                delay = None
        if delay is None:
            delay = self.base_delay * (2 ** (attempt - 1))
        delay = min(self.max_delay, delay) * (0.75 + random.random() / 2)
        crawler = self.crawler
        crawler.stats.inc_value(f"tiswatch/http_{response.status}")
        retry = get_retry_request(request, reason=f"HTTP {response.status}", spider=crawler.spider,
                                  max_retry_times=self.max_retry_times, priority_adjust=self.priority_adjust)
        if retry is None:
            return response
        await asyncio.sleep(delay)
        return retry


class CrawlReport:
    """At the end of a crawl: write home/crawl/<marketplace>/last_run.json, the crawl status, and mark
    listings that a complete crawl no longer found as delisted."""

    def __init__(self, crawler):
        self.crawler = crawler
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def spider_opened(self, spider):
        ctx = context_for(self.crawler)
        ctx.write_status("running", pid=__import__("os").getpid())

    def spider_closed(self, spider, reason):
        ctx = context_for(self.crawler)
        stats = self.crawler.stats.get_stats()
        delisted: list[str] = []
        if ctx.blocked:
            ctx.write_status("blocked", **ctx.blocked)
        elif reason == "finished" and ctx.complete and getattr(spider, "complete_coverage", False) and ctx.seen:
            delisted = ctx.store.mark_delisted(ctx.marketplace, ctx.seen, ctx.started)
            ctx.events.append_many(("delisted", k, {"marketplace": ctx.marketplace}) for k in delisted)
            ctx.write_status("ok", listings=len(ctx.seen), delisted=len(delisted))
        else:
            ctx.write_status("ok" if reason == "finished" else reason, listings=len(ctx.seen))
        out = ctx.settings.crawl_dir / ctx.marketplace
        out.mkdir(parents=True, exist_ok=True)
        report = {
            "marketplace": ctx.marketplace, "reason": "blocked" if ctx.blocked else reason,
            "started": ctx.started.isoformat(timespec="seconds"), "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "listings": len(ctx.seen), "delisted": len(delisted), "blocked": ctx.blocked,
            "stats": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in stats.items()},
        }
        (out / "last_run.json").write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str), "utf-8")
        ctx.close()
