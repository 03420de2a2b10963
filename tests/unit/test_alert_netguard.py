"""Webhook URLs may not reach internal networks: the address rules, the allow-list, the URL check at
configuration (with a fake resolver), and the error messages."""

import ipaddress

import pytest

from alerts.netguard import AddressPolicy, BlockedAddress, address_problem, check_url_now, parse_networks
from alerts.store import PartnerError, validate_webhook_url


@pytest.mark.parametrize("address,problem", [
    ("93.184.216.34", None),
    ("1.1.1.1", None),
    ("2606:4700:4700::1111", None),
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fd00::1", "private"),  # unique local
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),  # broadcast
    ("100.64.0.1", "shared"),  # carrier-grade NAT
    ("192.0.2.10", "private"),  # documentation (TEST-NET-1)
    ("198.18.0.1", "private"),  # benchmarking
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: reaches 127.0.0.1
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:8.8.8.8", None),
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("fec0::1", "site-local"),
])
def test_address_rules(address, problem):
    got = address_problem(ipaddress.ip_address(address))
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got, got


def test_an_administrator_may_allow_internal_networks():
    p = AddressPolicy(parse_networks(["127.0.0.1", "10.20.0.0/16", "::1"]))
    assert p.problem(ipaddress.ip_address("127.0.0.1")) is None
    assert "loopback" in p.problem(ipaddress.ip_address("127.0.0.2"))  # only what was allowed
    assert p.problem(ipaddress.ip_address("10.20.3.4")) is None
    assert "private" in p.problem(ipaddress.ip_address("10.21.0.1"))
    assert p.problem(ipaddress.ip_address("::1")) is None
    assert p.problem(ipaddress.ip_address("8.8.8.8")) is None  # public addresses stay allowed
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not an IP address or network"):
        parse_networks(["10.0.0.0/33"])


def fake_dns(table):
    return lambda host: table.get(host, [])


STRICT = AddressPolicy()
LOCAL = AddressPolicy(parse_networks(["127.0.0.1/32"]))
DNS = fake_dns({"hooks.partner.example": ["93.184.216.34"], "evil.example": ["93.184.216.34", "10.0.0.7"],
                "localhost": ["127.0.0.1"], "meta.example": ["169.254.169.254"], "v6.example": ["::1"]})


@pytest.mark.parametrize("url,policy,problem", [
    ("https://hooks.partner.example/tw", STRICT, None),
    ("https://not-yet-in-dns.example/tw", STRICT, None),  # judged at delivery, after resolution
    ("https://93.184.216.34/hook", STRICT, None),
    ("https://127.0.0.1/hook", STRICT, "127.0.0.1 is a loopback address; webhooks may not reach internal networks"),
    ("https://[::1]:8443/hook", STRICT, "::1 is a loopback address"),
    ("https://localhost/hook", STRICT, "localhost resolves to 127.0.0.1, which is a loopback address"),
    ("https://meta.example/latest/meta-data", STRICT, "169.254.169.254, which is a link-local address"),
    ("https://evil.example/hook", STRICT, "evil.example resolves to 10.0.0.7, which is a private address"),
    ("https://10.0.0.8/hook", STRICT, "[alerts] webhook_allow_networks"),  # the message says how to allow it
    ("http://127.0.0.1:9999/hook", LOCAL, None),  # allowed by the administrator: http is fine there
    ("http://localhost:9999/hook", LOCAL, None),
    ("https://v6.example/hook", LOCAL, "resolves to ::1, which is a loopback address"),
    ("http://hooks.partner.example/tw", LOCAL, "must use https"),  # plain http only to allowed networks
    ("http://not-yet-in-dns.example/tw", LOCAL, "must use https"),
    ("ftp://hooks.partner.example/tw", STRICT, "must be an http(s) URL"),
    ("https://u:pw@hooks.partner.example/tw", STRICT, "put no credentials"),
    ("https://hooks.partner.example:0/tw", STRICT, "port 0"),
    ("https://hooks.partner.example:99999/tw", STRICT, "not a valid URL"),
])
def test_webhook_urls_at_configuration(url, policy, problem):
    if problem is None:
        assert validate_webhook_url(url, policy, DNS) == url
    else:
        with pytest.raises(PartnerError) as e:
            validate_webhook_url(url, policy, DNS)
        assert problem in str(e.value) and repr(url) in str(e.value)  # the URL is named


def test_one_bad_address_among_good_ones_refuses_the_host():
    with pytest.raises(BlockedAddress) as e:
        check_url_now("https://evil.example/", STRICT, DNS)
    assert e.value.host == "evil.example" and e.value.address == "10.0.0.7"
    assert check_url_now("https://hooks.partner.example/", STRICT, DNS) == ["93.184.216.34"]
