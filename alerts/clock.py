"""The clock alerts/ reads: the real one, or a fake one that tests and benchmarks move by hand."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Time stands still until `advance`; `sleep` only yields to the event loop (a worker that would
    wait an hour for a retry returns at once and finds nothing due until the test moves the clock)."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0, **kw: float) -> datetime:
        self._now += timedelta(seconds=seconds, **kw)
        return self._now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, also when this thread already runs an event
    loop (Playwright's sync API does, for one): then it runs on a loop of its own in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(make())
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=target, name="tiswatch-alerts-async")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


_last_iso: tuple[datetime | None, str] = (None, "")


def iso(dt: datetime) -> str:
    """The one text form of a time in alerts.sqlite: UTC, microseconds, sortable as text. The last answer
    is remembered: a batch writes the same `now` into many rows."""
    global _last_iso
    last = _last_iso
    if last[0] is dt:
        return last[1]
    src = dt
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    elif dt.utcoffset():
        dt = dt.astimezone(UTC)
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{dt.microsecond:06d}Z"
    _last_iso = (src, text)
    return text


def parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))
