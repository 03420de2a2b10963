"""Webhooks to https:// partners: the webhook client speaks TLS, verifies the partner's certificate and
its name, and sends nothing to a partner whose certificate it cannot verify. Real TLS on a loopback
socket, with certificates made for the test (a CA of its own, trusted only where the test says so)."""

import asyncio
import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alerts.clock import run_async
from alerts.netguard import AddressPolicy, make_resolver, parse_networks
from alerts.webhook_http import WebhookClient, parse_target

pytestmark = pytest.mark.server
ALLOW = AddressPolicy(parse_networks(["127.0.0.1/32"]))


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(tmp_path, san):
    """A CA and a server certificate it signed for `san` (an IP address or a DNS name). Returns
    (the CA's PEM file, the server's certificate chain file, the server's key file)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("tiswatch test CA")).issuer_name(_name("tiswatch test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        alt = x509.IPAddress(ipaddress.ip_address(san))
    except ValueError:
        alt = x509.DNSName(san)
    cert = (x509.CertificateBuilder().subject_name(_name(san)).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem, chain, key_pem = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ca_pem, chain, key_pem


def post_over_tls(tmp_path, san, trust_ca: bool, n: int = 3):
    """Start a TLS server on 127.0.0.1 with a certificate for `san`, POST n webhooks to it with a client
    that trusts the test CA (or only the system's CAs). Returns (answers or the exception, requests the
    server received, connections it accepted)."""
    ca_pem, chain, key_pem = make_pki(tmp_path, san)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain, key_pem)
    got: list[str] = []
    conns = [0]

    async def handle(reader, writer):
        conns[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                hdr = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in head.decode().split("\r\n")[1:] if x)}
                await reader.readexactly(int(hdr.get("content-length", 0)))
                got.append(hdr.get("webhook-id", ""))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        client_ctx = ssl.create_default_context(cafile=str(ca_pem)) if trust_ca else None
        client = WebhookClient(make_resolver(ALLOW), connect_timeout=5.0, ssl_context=client_ctx)
        target = parse_target(f"https://127.0.0.1:{port}/hook")
        out: list = []
        try:
            for i in range(n):
                out.append(await client.post(target, {"webhook-id": f"msg_{i}", "content-type": "application/json"},
                                             b'{"a": 1}', timeout=10))
        except Exception as e:  # the test looks at what failed
            out.append(e)
        finally:
            await client.aclose()
            server.close()
        return out

    return run_async(main), got, conns[0]


def test_a_partner_with_a_valid_certificate_gets_every_webhook_on_one_connection(tmp_path):
    out, got, conns = post_over_tls(tmp_path, "127.0.0.1", trust_ca=True)
    assert [a.status for a in out] == [200, 200, 200]
    assert got == ["msg_0", "msg_1", "msg_2"]
    assert conns == 1  # the TLS connection is kept alive between webhooks


def test_a_certificate_from_an_unknown_authority_is_refused_and_nothing_is_sent(tmp_path):
    out, got, _ = post_over_tls(tmp_path, "127.0.0.1", trust_ca=False)
    assert len(out) == 1 and isinstance(out[0], Exception)
    assert "certificate verify failed" in str(out[0]) or "CERTIFICATE_VERIFY_FAILED" in str(out[0])
    assert got == []


def test_a_certificate_for_another_name_is_refused_and_nothing_is_sent(tmp_path):
    out, got, _ = post_over_tls(tmp_path, "hooks.other.example", trust_ca=True)
    assert len(out) == 1 and isinstance(out[0], Exception)
    assert "match" in str(out[0]).lower() or "mismatch" in str(out[0]).lower()
    assert got == []
