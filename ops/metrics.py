"""Prometheus metrics (`GET /metrics`), computed when scraped from what the data directory records,
so that work done by any process (the service, a crawl child, `tiswatch jobs run`, a manual
`tiswatch crawl`) is counted and nothing is lost when the service restarts:

| metric                                          | type      | from                                      |
|-------------------------------------------------|-----------|-------------------------------------------|
| tiswatch_crawl_pages_total{marketplace}         | counter   | crawl reports (pages fetched)             |
| tiswatch_crawl_listings_total{marketplace}      | counter   | crawl reports (listings checked)          |
| tiswatch_crawl_blocks_total{marketplace}        | counter   | crawls stopped by a block page            |
| tiswatch_crawl_captchas_total{marketplace}      | counter   | ... of which captcha / verification pages |
| tiswatch_crawl_errors_total{marketplace}        | counter   | pages that failed or did not parse        |
| tiswatch_crawl_runs_total{marketplace,reason}   | counter   | crawl runs by how they ended              |
| tiswatch_crawl_last_end_timestamp_seconds{marketplace} | gauge | the last crawl's end                   |
| tiswatch_crawl_running{marketplace}             | gauge     | 1 while a crawl holds the marketplace     |
| tiswatch_listings{verdict}                      | gauge     | listing store (current verdicts)          |
| tiswatch_flagged_listings{verdict}              | gauge     | ... the flagged ones                      |
| tiswatch_review_backlog                         | gauge     | flagged, active, not reviewed yet         |
| tiswatch_verdicts_total{verdict,source}         | counter   | verdict events (crawl, registry re-check) |
| tiswatch_registry_licences / _import            | gauge     | registry store                            |
| tiswatch_alert_deliveries{state}                | gauge     | alerts/ (pending, delivered, dead)        |
| tiswatch_alert_attempts_total / _failures_total | counter   | alerts/ delivery attempts                 |
| tiswatch_job_runs_total{job,status}             | counter   | job history                               |
| tiswatch_job_duration_seconds{job}              | histogram | job history                               |
| tiswatch_job_last_success_timestamp_seconds{job}| gauge     | job history                               |
| tiswatch_metrics_part_up{part}                  | gauge     | 0 when a source could not be read         |

A scrape reads SQLite counts; the result is kept for `cache_seconds` so that several scrapers (or a
fast scrape interval) cost one computation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ops.history import DURATION_BUCKETS as BUCKETS

log = logging.getLogger(__name__)
FLAGGED = ("unlicensed", "mislabeled", "needs_review")


def _ts(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None


class TiswatchCollector:
    def __init__(self, settings: Any, cache_seconds: float = 10.0, clock: Any = time.monotonic):
        self.settings = settings
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached[0] >= self.cache_seconds:
                self._cached = (now, list(self._compute()))
            yield from self._cached[1]

    # ---- the parts -------------------------------------------------------------------------------
    def _compute(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tiswatch_metrics_part_up", "1 when this source of metrics could be read", labels=["part"])
        for part, fn in (("crawls", self._crawls), ("listings", self._listings), ("verdicts", self._verdicts),
                         ("registry", self._registry), ("alerts", self._alerts), ("jobs", self._jobs)):
            try:
                metrics = list(fn())
            except Exception as e:  # one unreadable source must not empty the whole scrape
                log.warning("metrics: %s unavailable: %s", part, e)
                up.add_metric([part], 0)
                continue
            up.add_metric([part], 1)
            yield from metrics
        yield up

    def _crawls(self) -> Iterator[Metric]:
        from ops.history import open_history, sync_reports
        from ops.locks import crawl_lock_path, is_locked

        h = open_history(self.settings)
        try:
            sync_reports(h, self.settings.crawl_dir)
            totals = h.crawl_totals()
            last = h.last_crawls()
            runs = h.db.execute("SELECT marketplace, coalesce(reason, 'unknown'), count(*) FROM crawls GROUP BY 1, 2").fetchall()
        finally:
            h.close()
        fams = {k: CounterMetricFamily(f"tiswatch_crawl_{k}", doc, labels=["marketplace"]) for k, doc in (
            ("pages", "Pages fetched by crawls"), ("listings", "Listings checked by crawls"),
            ("blocks", "Crawls stopped by a block or captcha page"), ("captchas", "Crawls stopped by a captcha or verification page"),
            ("errors", "Pages that failed or could not be parsed"))}
        for t in totals:
            m = t["marketplace"]
            fams["pages"].add_metric([m], t["pages"] or 0)
            fams["listings"].add_metric([m], t["listings"] or 0)
            fams["blocks"].add_metric([m], t["blocked"] or 0)
            fams["captchas"].add_metric([m], t["captcha"] or 0)
            fams["errors"].add_metric([m], t["errors"] or 0)
        yield from fams.values()
        r = CounterMetricFamily("tiswatch_crawl_runs", "Crawl runs by how they ended", labels=["marketplace", "reason"])
        for m, reason, n in runs:
            r.add_metric([m, reason], n)
        yield r
        end = GaugeMetricFamily("tiswatch_crawl_last_end_timestamp_seconds", "When the last crawl of a marketplace ended",
                                labels=["marketplace"])
        for m, row in last.items():
            t = _ts(row.get("finished"))
            if t is not None:
                end.add_metric([m], t)
        yield end
        running = GaugeMetricFamily("tiswatch_crawl_running", "1 while a crawl of the marketplace runs", labels=["marketplace"])
        for m in self.settings.marketplaces:
            running.add_metric([m], 1 if is_locked(crawl_lock_path(self.settings.home, m)) else 0)
        yield running

    def _listings(self) -> Iterator[Metric]:
        from ops.status import listing_counts

        c = listing_counts(self.settings)
        g = GaugeMetricFamily("tiswatch_listings", "Stored listings by current verdict", labels=["verdict"])
        f = GaugeMetricFamily("tiswatch_flagged_listings", "Flagged listings by verdict", labels=["verdict"])
        for v, n in sorted(c.get("by_verdict", {}).items()):
            g.add_metric([v], n)
        for v in FLAGGED:
            f.add_metric([v], c.get("by_verdict", {}).get(v, 0))
        yield g
        yield f
        yield GaugeMetricFamily("tiswatch_review_backlog", "Flagged active listings no officer has reviewed yet",
                                value=c.get("review_backlog", 0))
        yield GaugeMetricFamily("tiswatch_delisted_listings", "Listings no longer listed", value=c.get("delisted", 0))

    def _verdicts(self) -> Iterator[Metric]:
        from ops.status import verdict_events

        c = CounterMetricFamily("tiswatch_verdicts", "Verdicts recorded (verdict events), by verdict and source",
                                labels=["verdict", "source"])
        for v, src, n in verdict_events(self.settings):
            c.add_metric([v, src], n)
        yield c

    def _registry(self) -> Iterator[Metric]:
        from ops.recheck import import_id
        from ops.status import registry_info

        info = registry_info(self.settings)
        yield GaugeMetricFamily("tiswatch_registry_licences", "Licences in the registry", value=info["licences"])
        yield GaugeMetricFamily("tiswatch_registry_import", "The registry version (its last changing import)",
                                value=import_id(info["version"]))

    def _alerts(self) -> Iterator[Metric]:
        from ops.status import alert_info

        a = alert_info(self.settings)
        if a is None:
            return
        g = GaugeMetricFamily("tiswatch_alert_deliveries", "Alert deliveries by state", labels=["state"])
        for state in ("pending", "delivered", "dead"):
            g.add_metric([state], a.get(state, 0) or 0)
        yield g
        yield CounterMetricFamily("tiswatch_alert_attempts", "Alert delivery attempts", value=a.get("attempts", 0) or 0)
        yield CounterMetricFamily("tiswatch_alert_attempt_failures", "Alert delivery attempts that failed",
                                  value=max(0, (a.get("attempts", 0) or 0) - (a.get("ok_attempts", 0) or 0)))

    def _jobs(self) -> Iterator[Metric]:
        from ops.history import open_history

        h = open_history(self.settings)
        try:
            counts = h.run_counts()
            durations = h.durations()
            last_ok = h.db.execute("SELECT job, max(finished_at) FROM runs WHERE status='ok' GROUP BY job").fetchall()
            rolled = h.rolled_up()
            rolled_d = h.rolled_durations()
        finally:
            h.close()
        runs = CounterMetricFamily("tiswatch_job_runs", "Job runs by how they ended", labels=["job", "status"])
        merged: dict[tuple[str, str], int] = {}
        for job, status, n in counts + rolled:
            if status != "running":
                merged[(job, status)] = merged.get((job, status), 0) + n
        for (job, status), n in sorted(merged.items()):
            runs.add_metric([job, status], n)
        yield runs
        hist = HistogramMetricFamily("tiswatch_job_duration_seconds", "How long job runs take", labels=["job"])
        per: dict[str, list[float]] = {}
        for job, secs in durations:
            per.setdefault(job, []).append(secs)
        for job in sorted(set(per) | set(rolled_d)):
            vals, old = per.get(job, []), rolled_d.get(job, {})
            buckets = [(str(float(b)), sum(1 for v in vals if v <= b) + old.get(str(b), 0)) for b in BUCKETS]
            buckets.append(("+Inf", len(vals) + old.get("+Inf", 0)))
            hist.add_metric([job], buckets, sum_value=sum(vals) + old.get("sum", 0.0))
        yield hist
        g = GaugeMetricFamily("tiswatch_job_last_success_timestamp_seconds", "When a job last ended ok", labels=["job"])
        for job, at in last_ok:
            t = _ts(at)
            if t is not None:
                g.add_metric([job], t)
        yield g


def registry_for(settings: Any) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(TiswatchCollector(settings))  # type: ignore[arg-type]
    return reg


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def start_listener(settings: Any) -> Any:
    """`[ops] metrics = "listener"`: /metrics on its own address (e.g. a private interface), apart from
    the app. Returns the server (its `shutdown()` stops it)."""
    from prometheus_client import start_http_server

    host, _, port = settings.ops.metrics_listen.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=registry_for(settings))
    return server
