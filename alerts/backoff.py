"""When to try a failed webhook again, when to give up, when to pause a failing partner. Pure.

A failed delivery waits `base * factor^(attempt-1)` seconds (capped at `max_delay`), shortened by up to
`jitter` at random so that the retries of many messages do not arrive together. A message still not
delivered `give_up_after` seconds after it was created goes to the dead-letter list (72 hours by
default) from which an administrator can replay it.

A partner whose endpoint fails `circuit_after` times in a row is paused as a whole (its lane "opens
the circuit"): one probe message is tried when the pause ends, instead of every queued message
knocking on a dead endpoint. The first success closes the circuit and makes the whole backlog due at
once, so a partner that comes back after an outage is caught up at full speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 5.0  # seconds before the first retry
    factor: float = 2.0
    max_delay: float = 6 * 3600.0
    give_up_after: float = 72 * 3600.0
    jitter: float = 0.5  # a delay is drawn from [d * (1 - jitter), d]
    circuit_after: int = 5  # consecutive failures that pause a partner

    def delay(self, attempt: int, u: float) -> float:
        """Seconds to wait after the `attempt`-th consecutive failure (1-based); `u` uniform in [0, 1)."""
        n = max(1, attempt)
        d = min(self.max_delay, self.base * self.factor ** min(n - 1, 64))
        return d * (1.0 - self.jitter * min(max(u, 0.0), 1.0))

    def next_attempt(self, now: datetime, attempt: int, u: float, retry_after: float | None = None) -> datetime:
        """When to try again; a `Retry-After` from the receiver is honoured up to `max_delay`."""
        d = self.delay(attempt, u)
        if retry_after is not None and retry_after > d:
            d = min(retry_after, self.max_delay)
        return now + timedelta(seconds=d)

    def deadline(self, created: datetime) -> datetime:
        return created + timedelta(seconds=self.give_up_after)

    def circuit_pause(self, consecutive_failures: int, u: float) -> float | None:
        """Seconds to pause a partner after this many consecutive failures, or None to keep going."""
        if consecutive_failures < self.circuit_after:
            return None
        return self.delay(consecutive_failures - self.circuit_after + 1, u)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
