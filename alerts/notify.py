"""Notifiers: what does the sending. alerts/ decides what to send and records every attempt; a notifier
only sends one message to one target and says how it went.

- `WebhookNotifier` POSTs a JSON body signed per Standard Webhooks (alerts/signing.py) to a partner's
  URL: no redirects followed, a hard timeout, any 2xx is success, and only to addresses the
  `AddressPolicy` allows, checked after DNS resolution (alerts/netguard.py), so a partner's DNS cannot
  point our webhooks into our own network.
- `EmailNotifier` sends a message (digests) through the SMTP server of `[alerts.smtp]`.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

from alerts.clock import Clock, SystemClock
from alerts.netguard import AddressPolicy, BlockedAddress, ip_literal, make_resolver
from alerts.signing import webhook_headers

USER_AGENT = "tiswatch-webhooks/1.0 (+https://www.standardwebhooks.com/)"


@dataclass
class Outgoing:
    id: str  # webhook-id / Message-ID: the same on every retry
    body: bytes
    content_type: str = "application/json"
    secrets: tuple[str, ...] = ()  # webhook secrets to sign with, newest first
    subject: str = ""
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SendResult:
    ok: bool
    status: int | None = None
    error: str | None = None
    latency_ms: float = 0.0
    retry_after: str | None = None


class Notifier(Protocol):
    async def send(self, target: str, msg: Outgoing) -> SendResult: ...
    async def aclose(self) -> None: ...


class WebhookNotifier:
    def __init__(self, timeout: float = 10.0, clock: Clock | None = None, user_agent: str = USER_AGENT,
                 policy: AddressPolicy | None = None, dns: Any = None):
        """`policy`: the addresses webhooks may reach (default: public ones only); `dns`: the aiohttp
        resolver that does the lookups (default: the system's), checked by the policy either way."""
        self.timeout = timeout
        self.clock = clock or SystemClock()
        self.user_agent = user_agent
        self.policy = policy or AddressPolicy()
        self.dns = dns
        self._session: Any = None
        self._targets: dict[str, SendResult | None] = {}  # URL -> why it is refused (None: may be sent to)
        import aiohttp  # here, not at the first send: importing it then delayed the first deliveries by ~0.3 s

        self._aiohttp = aiohttp

    async def _client(self) -> Any:
        aiohttp = self._aiohttp
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300,
                                               resolver=make_resolver(self.policy, self.dns)),
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=min(self.timeout, 5.0)),
                headers={"User-Agent": self.user_agent}, trust_env=False)
        return self._session

    def _refused(self, target: str) -> SendResult | None:
        """Why `target` cannot be sent to by its URL alone (bad URL, an address literal the policy refuses),
        or None. Remembered per URL: the answer depends only on the URL and the (fixed) policy; names are
        judged after every DNS lookup, in the resolver."""
        if target in self._targets:
            return self._targets[target]
        from yarl import URL

        why: SendResult | None = None
        try:  # an address in the URL itself is not looked up: judge it here (names: in the resolver)
            host = URL(target).raw_host or ""
            lit = ip_literal(host)
            if lit is not None:
                self.policy.check(host, [str(lit)])
        except BlockedAddress as e:
            why = SendResult(False, None, f"refused: {e}")
        except ValueError as e:
            why = SendResult(False, None, f"bad webhook URL {target!r}: {e}")
        if len(self._targets) > 10_000:
            self._targets.clear()
        self._targets[target] = why
        return why

    async def send(self, target: str, msg: Outgoing) -> SendResult:
        aiohttp = self._aiohttp
        refused = self._refused(target)
        if refused is not None:
            return SendResult(False, None, refused.error)
        ts = int(self.clock.now().timestamp())
        headers = {"Content-Type": msg.content_type, **msg.headers,
                   **webhook_headers(list(msg.secrets), msg.id, ts, msg.body)}
        session = await self._client()
        t0 = time.perf_counter()
        try:
            async with session.post(target, data=msg.body, headers=headers, allow_redirects=False) as resp:
                await resp.content.read(65536)  # a little of the answer, so the connection can be reused
                ms = (time.perf_counter() - t0) * 1000
                ok = 200 <= resp.status < 300
                return SendResult(ok, resp.status, None if ok else f"HTTP {resp.status} {resp.reason or ''}".strip(),
                                  ms, resp.headers.get("Retry-After"))
        except TimeoutError:
            return SendResult(False, None, f"timed out after {self.timeout:g} s", (time.perf_counter() - t0) * 1000)
        except aiohttp.ClientConnectorError as e:
            blocked = _blocked(e)
            why = f"refused: {blocked}" if blocked else f"{type(e).__name__}: {e}"
            return SendResult(False, None, why[:500], (time.perf_counter() - t0) * 1000)
        except (aiohttp.ClientError, OSError, ValueError) as e:
            return SendResult(False, None, f"{type(e).__name__}: {e}"[:300], (time.perf_counter() - t0) * 1000)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def _blocked(e: BaseException) -> BlockedAddress | None:
    """The BlockedAddress behind a connection error, if that is what it was."""
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 5:
        if isinstance(cur, BlockedAddress):
            return cur
        inner = getattr(cur, "os_error", None)
        cur = inner if isinstance(inner, BaseException) and inner is not cur else cur.__cause__
        seen += 1
    return None


@dataclass
class SmtpConfig:
    host: str = "localhost"
    port: int = 25
    username: str = ""
    password: str = ""
    security: str = "none"  # none, starttls or ssl
    sender: str = "tiswatch@localhost"
    timeout: float = 30.0


class EmailNotifier:
    def __init__(self, cfg: SmtpConfig):
        self.cfg = cfg

    def _send_sync(self, target: str, msg: Outgoing) -> SendResult:
        m = EmailMessage()
        m["From"] = self.cfg.sender
        m["To"] = target
        m["Subject"] = msg.subject
        m["Message-ID"] = f"<{msg.id}@tiswatch>"
        for k, v in msg.headers.items():
            m[k] = v
        m.set_content(msg.body.decode("utf-8"))
        if msg.html:
            m.add_alternative(msg.html, subtype="html")
        t0 = time.perf_counter()
        try:
            if self.cfg.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout)
            with smtp:
                if self.cfg.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.cfg.username:
                    smtp.login(self.cfg.username, self.cfg.password)
                smtp.send_message(m)
            return SendResult(True, 250, None, (time.perf_counter() - t0) * 1000)
        except (smtplib.SMTPException, OSError) as e:
            return SendResult(False, None, f"{type(e).__name__}: {e}"[:300], (time.perf_counter() - t0) * 1000)

    async def send(self, target: str, msg: Outgoing) -> SendResult:
        return await asyncio.to_thread(self._send_sync, target, msg)

    async def aclose(self) -> None:
        return None
