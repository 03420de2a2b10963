"""Checking that a listing a partner reported as "removed" really is gone.

Three sources, most trusted first:
1. the crawl: a `delisted` event for the listing after the report means a full crawl of the marketplace
   no longer found it (gone); a crawl that saw it again after the report (`last_seen` later than the
   report, or a `relisted` event) means it is still listed;
2. an HTTP check of the listing's URL, for marketplaces whose item pages answer without JavaScript
   (`[alerts] verify_http_marketplaces`): 404 or 410 is gone, a page that still shows the item id is
   still listed, anything else (a block page, a redirect, an error) decides nothing;
3. time: a report still undecided after `[alerts] verify_days` is marked unverified.

`tiswatch partners verify` runs the checks; `--crawl` first revisits the listings awaiting one with the
crawler (`revisit_removed`: each marketplace's crawl in revisit mode fetches just those pages; a page
that says the item is gone writes a `delisted` event, one that still shows it updates `last_seen`);
`--list` prints them (JSON Lines with the URL). The outcome is recorded with the feedback and shown to officers and to
the partner (`GET /api/v1/alerts/{id}`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.clock import Clock, parse_iso
from alerts.store import AlertStore

VERIFY_STATES = ("pending", "gone", "still_listed", "unverified")


def removal_watcher(store: AlertStore, clock: Clock) -> Callable[[Any, Any], None]:
    """The engine's hook: settles pending "removed" reports from delisted / relisted events."""

    def on_event(ev: Any, facts: Any) -> None:
        if ev.kind not in ("delisted", "relisted"):
            return
        for fb in store.feedback(key=ev.key):
            if fb["verify_state"] != "pending" or parse_iso(fb["at"]) > ev.at:
                continue
            if ev.kind == "delisted":
                store.set_verification(fb["id"], "gone", f"crawl: no longer listed (event {ev.id})", clock.now())
            else:
                store.set_verification(fb["id"], "still_listed", f"crawl: listed again (event {ev.id})", clock.now())

    return on_event


@dataclass(frozen=True)
class HttpAnswer:
    status: int | None
    text: str = ""
    error: str | None = None


def judge_http(answer: HttpAnswer, item_id: str) -> tuple[str | None, str]:
    """(gone / still_listed / None for undecided, why) from one fetch of the listing's URL. Pure."""
    if answer.status in (404, 410):
        return "gone", f"HTTP {answer.status}"
    if answer.status == 200 and item_id and item_id in answer.text:
        return "still_listed", "HTTP 200 and the page shows the item"
    if answer.status is None:
        return None, answer.error or "no answer"
    return None, f"HTTP {answer.status}: undecided"


def judge_store(listing: dict[str, Any] | None, reported: datetime) -> tuple[str | None, str]:
    """What the listing store says about a report made at `reported`. Pure."""
    if not listing:
        return None, "listing not in the store"
    if listing.get("status") == "delisted" and listing.get("delisted_at") and parse_iso(listing["delisted_at"]) >= reported:
        return "gone", f"crawl: delisted at {listing['delisted_at']}"
    if listing.get("last_seen") and parse_iso(listing["last_seen"]) > reported:
        return "still_listed", f"crawl: seen at {listing['last_seen']}"
    return None, "no crawl since the report"


def _fetch(url: str, timeout: float, user_agent: str) -> HttpAnswer:
    import httpx

    try:
        r = httpx.get(url, timeout=timeout, follow_redirects=False, headers={"User-Agent": user_agent})
        return HttpAnswer(r.status_code, r.text[:2_000_000])
    except httpx.HTTPError as e:
        return HttpAnswer(None, "", f"{type(e).__name__}: {e}"[:200])


@dataclass
class VerifyResult:
    checked: int = 0
    gone: int = 0
    still_listed: int = 0
    unverified: int = 0
    undecided: int = 0


def verify_removals(store: AlertStore, listings: Any, clock: Clock, *, http_marketplaces: tuple[str, ...] = (),
                    give_up: timedelta = timedelta(days=14), fetch: Callable[[str], HttpAnswer] | None = None,
                    timeout: float = 15, user_agent: str = "tiswatch/0.1") -> VerifyResult:
    out = VerifyResult()
    fetch = fetch or (lambda u: _fetch(u, timeout, user_agent))
    for fb in store.awaiting_verification():
        out.checked += 1
        now = clock.now()
        reported = parse_iso(fb["at"])
        try:
            listing = listings.get(fb["key"]) if listings is not None else None
        except Exception:
            listing = None
        state, why = judge_store(listing, reported)
        mp, _, item = fb["key"].partition(":")
        if state is None and mp in http_marketplaces and listing and listing.get("url"):
            state, why = judge_http(fetch(listing["url"]), item)
            why = f"{listing['url']}: {why}"
        if state is None and now - reported >= give_up:
            state, why = "unverified", f"not verified within {give_up.days} days ({why})"
        if state is None:
            out.undecided += 1
            continue
        store.set_verification(fb["id"], state, why, now)
        setattr(out, state, getattr(out, state) + 1)
    return out


def revisit_removed(settings: Any, store: AlertStore, listings: Any, *, run: Callable[..., Any] | None = None,
                    time_limit: float | None = None, config: str | None = None) -> dict[str, Any]:
    """Revisit, with the crawler, every listing awaiting a removal check: one revisit crawl per
    marketplace (crawlers/run.py --urls-file). Returns {marketplace: crawl result}."""
    if run is None:
        from crawlers.runner import run_crawl as run
    urls: dict[str, list[str]] = {}
    for fb in store.awaiting_verification():
        try:
            d = listings.get(fb["key"]) if listings is not None else None
        except Exception:
            d = None
        url = (d or {}).get("url")
        if url and url.startswith(("http://", "https://")):
            urls.setdefault(fb["key"].split(":", 1)[0], [])
            if url not in urls[fb["key"].split(":", 1)[0]]:
                urls[fb["key"].split(":", 1)[0]].append(url)
    out: dict[str, Any] = {}
    for mp, us in sorted(urls.items()):
        folder = settings.crawl_dir / mp
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "removal-revisit-urls.txt"
        path.write_text("".join(u + "\n" for u in us), "utf-8")
        out[mp] = run(settings, mp, urls_file=path, job=f"revisit:{mp}", time_limit=time_limit, config=config)
    return out
