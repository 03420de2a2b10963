"""Helpers for the alerts tests and benchmark: a webhook receiver on a free loopback port that can fail,
hang and recover, and a way to feed real listings through the store and the event log like a crawl."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from alerts.signing import SignatureError, verify


@dataclass
class Received:
    msg_id: str
    body: bytes
    headers: dict[str, str]
    at: float  # time.time() on arrival


@dataclass
class Receiver:
    """An idempotent webhook receiver: it processes each webhook-id once and acknowledges duplicates.

    Behaviour by request number: the first `fail_first` requests get HTTP 500; the next `hang_next` are
    processed and then answered only after `hang` seconds (longer than the sender's timeout, so the
    sender sees a timeout and retries a message the receiver already has); after that every request is
    answered 200 at once (after `delay` seconds). `down` makes every request fail with 503."""

    secret: str | None = None
    fail_first: int = 0
    hang_next: int = 0
    hang: float = 3.0
    delay: float = 0.0
    down: bool = False
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    verifier: Callable[[bytes, dict[str, str]], Any] | None = None  # e.g. standardwebhooks.Webhook(secret).verify
    requests: int = 0
    processed: dict[str, Received] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    bad_signatures: list[str] = field(default_factory=list)
    bodies_by_id: dict[str, list[bytes]] = field(default_factory=dict)  # every body each webhook-id came with
    port: int = 0

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests += 1
        n = self.requests
        if self.down:
            return web.Response(status=503, text="down")
        if n <= self.fail_first:
            return web.Response(status=500, text="failing on purpose")
        try:
            if self.verifier is not None:
                self.verifier(body, headers)
            elif self.secret:
                verify(self.secret, headers, body, self.now())
        except (SignatureError, Exception) as e:
            self.bad_signatures.append(f"{headers.get('webhook-id')}: {e}")
            return web.Response(status=400, text="bad signature")
        mid = headers["webhook-id"]
        self.bodies_by_id.setdefault(mid, []).append(body)
        if mid in self.processed:
            self.duplicates.append(mid)
        else:
            self.processed[mid] = Received(mid, body, headers, time.time())
        if n <= self.fail_first + self.hang_next:
            await asyncio.sleep(self.hang)
        elif self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=204)

    # ---- running in a thread ----------------------------------------------------------------------------
    def __enter__(self) -> Receiver:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __exit__(self, *exc: object) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        try:
            fut.result(10)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.processed.values()]


T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def listing(n: int, title: str = "ปลั๊กพ่วง 4 ช่อง สายยาว 3 เมตร", marketplace: str = "shopee", **kw: Any):
    from listings.model import Listing

    base = {"marketplace": marketplace, "item_id": str(n), "title": title, "url": f"https://{marketplace}.example/item/{n}",
            "seller": f"ร้าน {n % 7}", "seller_id": f"s{n % 7}", "price": 199.0 + n, "currency": "THB"}
    return Listing(**{**base, **kw})


def ingest(store: Any, events: Any, item: Any, registry: Any, at: datetime = T0) -> Any:
    """What the crawl's StorePipeline does: store the listing and its verdict, and write a `verdict`
    event when the verdict changed."""
    from listings.events import verdict_event
    from matching import check

    v = check(item, registry)
    res = store.ingest(item, v, at)
    if res.verdict_changed:
        events.append("verdict", item.key, verdict_event(v, res.previous_verdict, item.marketplace, "crawl"), at=at)
    return v


def verdict(events: Any, key: str, verdict_: str, risk: int, tis_no: str | None = "2432-2555",
            reasons: list[str] | None = None, source: str = "registry") -> int:
    """A `verdict` event as the registry re-check writes it."""
    return events.append("verdict", key, {"verdict": verdict_, "risk": risk, "tis_no": tis_no, "licence_no": None,
                                          "reasons": reasons or ["no_claim"], "previous": None,
                                          "marketplace": key.split(":")[0], "source": source})


def decide(events: Any, key: str, decision: str, note: str = "ส่งเรื่องแล้ว", by: str = "officer-17",
           at: datetime | None = None) -> int:
    """A `decision` event as the review app writes it (with the officer's note and id, which must never
    reach a partner)."""
    return events.append("decision", key, {"decision": decision, "note": note, "previous": "new", "by": by}, at=at)


ROOT_README = __import__("pathlib").Path(__file__).resolve().parents[1] / "README.md"
