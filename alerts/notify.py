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
from alerts.webhook_http import ProtocolError, Target, WebhookClient, parse_target

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
        """`policy`: the addresses webhooks may reach (default: public ones only); `dns`: the aiohttp-style
        resolver that does the lookups (default: the system's), checked by the policy either way."""
        self.timeout = timeout
        self.clock = clock or SystemClock()
        self.user_agent = user_agent
        self.policy = policy or AddressPolicy()
        self.dns = dns
        self._client: WebhookClient | None = None
        self._targets: dict[str, Target | SendResult] = {}  # URL -> parsed, or why it is refused

    def _http(self) -> WebhookClient:
        if self._client is None:
            self._client = WebhookClient(make_resolver(self.policy, self.dns), connect_timeout=min(self.timeout, 5.0))
        return self._client

    def _target(self, target: str) -> Target | SendResult:
        """The parsed URL, or why it cannot be sent to by the URL alone (bad URL, an address literal the
        policy refuses). Remembered per URL: the answer depends only on the URL and the (fixed) policy;
        names are judged after every DNS lookup, in the resolver."""
        hit = self._targets.get(target)
        if hit is not None:
            return hit
        out: Target | SendResult
        try:
            out = parse_target(target)
            lit = ip_literal(out.host)
            if lit is not None:  # an address in the URL itself is not looked up: judge it here
                self.policy.check(out.host, [str(lit)])
        except BlockedAddress as e:
            out = SendResult(False, None, f"refused: {e}")
        except ValueError as e:
            out = SendResult(False, None, f"bad webhook URL {target!r}: {e}")
        if len(self._targets) > 10_000:
            self._targets.clear()
        self._targets[target] = out
        return out

    async def send(self, target: str, msg: Outgoing) -> SendResult:
        t = self._target(target)
        if isinstance(t, SendResult):
            return SendResult(False, None, t.error)
        ts = int(self.clock.now().timestamp())
        headers = {"User-Agent": self.user_agent, "Content-Type": msg.content_type, **msg.headers,
                   **webhook_headers(list(msg.secrets), msg.id, ts, msg.body)}
        client = self._http()
        t0 = time.perf_counter()
        try:
            ans = await client.post(t, headers, msg.body, timeout=self.timeout)
        except TimeoutError:
            return SendResult(False, None, f"timed out after {self.timeout:g} s", (time.perf_counter() - t0) * 1000)
        except BlockedAddress as e:
            return SendResult(False, None, f"refused: {e}"[:500], (time.perf_counter() - t0) * 1000)
        except (OSError, ProtocolError, ValueError) as e:
            return SendResult(False, None, f"{type(e).__name__}: {e}"[:300], (time.perf_counter() - t0) * 1000)
        ms = (time.perf_counter() - t0) * 1000
        ok = 200 <= ans.status < 300
        return SendResult(ok, ans.status, None if ok else f"HTTP {ans.status} {ans.reason}".strip(), ms,
                          ans.headers.get("retry-after"))

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


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
