"""Webhook URLs must not reach internal networks (server-side request forgery).

A partner's webhook URL is typed in by an administrator, but the host name in it is controlled by
whoever runs its DNS. Without a guard, `https://hooks.partner.example/` could resolve to 127.0.0.1,
10.0.0.5 or 169.254.169.254 (a cloud metadata service) and every alert would be POSTed inside our own
network. So a webhook address must be a globally routable unicast address: loopback, private,
shared (carrier-grade NAT), link-local, multicast, unspecified and reserved addresses are refused,
unless an administrator allows a network with `[alerts] webhook_allow_networks` (the tests and the
sandbox allow 127.0.0.1).

The check runs twice:
- when the URL is configured (`check_url_now`): an IP literal is judged at once, a host name is
  resolved and every address it has now must be allowed; a name that does not resolve yet is
  accepted (it is judged at each delivery);
- at every delivery, after DNS resolution (`GuardedResolver`, the resolver of the webhook client):
  the client connects only to addresses that passed the check, so a name that resolved to a public
  address at configuration and to an internal one later (DNS rebinding) is refused.

`address_problem` and `AddressPolicy` are pure; resolution sits at the edges.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SETTING = "[alerts] webhook_allow_networks"
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not private, not global


class BlockedAddress(OSError):
    """A webhook host that is, or resolves to, an address webhooks may not reach."""

    def __init__(self, host: str, address: str, why: str):
        self.host, self.address, self.why = host, address, why
        where = host if host == address else f"{host} resolves to {address}, which"
        super().__init__(f"{where} is {why}; webhooks may not reach internal networks "
                         f"(an administrator can allow a network with {SETTING})")


def address_problem(ip: IP) -> str | None:
    """Why a webhook may not be sent to `ip` ('a loopback address', …), or None for a public unicast
    address. Pure."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:  # ::ffff:10.0.0.1 and 2002:0a00:0001:: reach the IPv4 address inside
            inner = address_problem(mapped)
            return f"{inner} (inside the IPv6 address {ip})" if inner else None
        if ip.teredo is not None:
            return "a Teredo tunnel address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if not ip.is_global:
        return "not a globally routable address"
    return None


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """`["127.0.0.1", "10.20.0.0/16", "::1"]` as networks; ValueError naming a bad entry."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address or network (e.g. 127.0.0.1 or 10.20.0.0/16)") from None
    return tuple(out)


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses webhooks may reach: public unicast ones, and the networks an administrator allowed."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> AddressPolicy:
        return cls(parse_networks(getattr(settings.alerts, "webhook_allow_networks", ()) or ()))

    def allows_network(self, ip: IP) -> bool:
        return any(ip.version == n.version and ip in n for n in self.allowed)

    def problem(self, ip: IP) -> str | None:
        """None when webhooks may go to `ip`, else why not. Pure."""
        if self.allows_network(ip):
            return None
        return address_problem(ip)

    def check(self, host: str, addresses: Sequence[str]) -> None:
        """Raise BlockedAddress unless every address of `host` is allowed (one bad address is enough to
        refuse: the client could pick it)."""
        for a in addresses:
            ip = ipaddress.ip_address(a.split("%", 1)[0])  # an IPv6 zone id (fe80::1%eth0) is not part of it
            why = self.problem(ip)
            if why:
                raise BlockedAddress(host, str(ip), why)

    def internal_allowed(self, addresses: Sequence[str]) -> bool:
        """True when every address is in an administrator-allowed network (plain http is accepted there)."""
        return bool(addresses) and all(self.allows_network(ipaddress.ip_address(a.split("%", 1)[0])) for a in addresses)


def ip_literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def system_resolve(host: str) -> list[str]:
    """Every address the system resolver gives for `host` (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return sorted({i[4][0] for i in infos})


def check_url_now(url: str, policy: AddressPolicy,
                  resolve: Callable[[str], list[str]] = system_resolve) -> list[str]:
    """At configuration: the addresses the URL's host has now, all allowed (BlockedAddress otherwise).
    An empty list means the name does not resolve yet."""
    host = urlsplit(url).hostname or ""
    lit = ip_literal(host)
    addresses = [str(lit)] if lit is not None else resolve(host)
    policy.check(host, addresses)
    return addresses


async def system_resolve_async(host: str, port: int = 0, family: int = socket.AF_UNSPEC) -> list[dict[str, Any]]:
    """The system resolver's addresses for `host`, as the webhook client takes them (aiohttp's resolver
    shape: dicts with host, port, family, ...)."""
    import asyncio

    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    out, seen = [], set()
    for fam, _type, proto, _name, addr in infos:
        if addr[0] in seen:
            continue
        seen.add(addr[0])
        out.append({"hostname": host, "host": addr[0], "port": addr[1], "family": fam, "proto": proto,
                    "flags": socket.AI_NUMERICHOST})
    return out


class GuardedResolver:
    """Resolves with `inner` (an object with `async resolve(host, port, family)`, such as an aiohttp
    resolver; default: the system's), then refuses (BlockedAddress, an OSError, so the client reports a
    connection error) a host with any address the policy does not allow. The webhook client connects
    only to the addresses returned here."""

    def __init__(self, policy: AddressPolicy, inner: Any = None):
        self.policy, self._inner = policy, inner

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_UNSPEC) -> list[dict[str, Any]]:
        res = await (self._inner.resolve(host, port, family) if self._inner is not None
                     else system_resolve_async(host, port, family))
        self.policy.check(host, [r["host"] for r in res])
        return list(res)

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def make_resolver(policy: AddressPolicy, inner: Any = None) -> GuardedResolver:
    return GuardedResolver(policy, inner)
