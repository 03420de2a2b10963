"""The webhook HTTP client against real sockets: kept-alive connections are reused, a connection the
partner closed while idle is replaced (the POST sent again), redirects are answers and never followed,
slow and refusing servers give clear errors, and only policy-allowed addresses are reached."""

import asyncio
import socket

import pytest

from alerts.clock import run_async
from alerts.netguard import AddressPolicy, parse_networks
from alerts.notify import Outgoing, WebhookNotifier

pytestmark = pytest.mark.server
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ALLOW = AddressPolicy(parse_networks(["127.0.0.1/32"]))


class RawServer:
    """A tiny HTTP server on a free port whose answers the test chooses, one per request, and which
    records each connection's requests (webhook-ids)."""

    def __init__(self, answers, close_after=None):
        self.answers = list(answers)
        self.close_after = close_after  # close each connection after this many requests (no answer to the next)
        self.connections: list[list[str]] = []

    async def handle(self, reader, writer):
        seen: list[str] = []
        self.connections.append(seen)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                hdr = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                await reader.readexactly(int(hdr.get("content-length", 0)))
                if self.close_after is not None and len(seen) >= self.close_after:
                    break
                seen.append(hdr.get("webhook-id", ""))
                ans = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
                if isinstance(ans, float):
                    await asyncio.sleep(ans)
                    ans = b"HTTP/1.1 204 No Content\r\n\r\n"
                writer.write(ans)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"


def send_all(server_args, n, timeout=2.0, pause=0.0, policy=ALLOW):
    async def main():
        async with RawServer(**server_args) as srv:
            nt = WebhookNotifier(timeout, policy=policy)
            out = []
            try:
                for i in range(n):
                    out.append(await nt.send(srv.url, Outgoing(id=f"msg_{i}", body=b"{}", secrets=(SECRET,))))
                    if pause:
                        await asyncio.sleep(pause)
            finally:
                await nt.aclose()
            return out, srv.connections
    return run_async(main)


def test_one_connection_carries_many_webhooks():
    res, conns = send_all({"answers": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]}, 20)
    assert all(r.ok and r.status == 200 for r in res)
    assert conns == [[f"msg_{i}" for i in range(20)]]


def test_a_connection_the_partner_closed_while_idle_is_replaced():
    # the server closes every connection after 3 requests, without answering the 4th: the client
    # sends that one again on a new connection (same webhook-id) and nothing fails
    res, conns = send_all({"answers": [b"HTTP/1.1 204 No Content\r\n\r\n"], "close_after": 3}, 7, pause=0.05)
    assert all(r.ok for r in res)
    assert [x for c in conns for x in c] == [f"msg_{i}" for i in range(7)]
    assert len(conns) == 3


def test_connection_close_and_chunked_answers():
    res, conns = send_all({"answers": [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                                       b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                                       b"HTTP/1.1 204 No Content\r\n\r\n"]}, 3)
    assert [r.status for r in res] == [200, 200, 204]
    assert conns == [["msg_0"], ["msg_1", "msg_2"]]


def test_a_redirect_is_an_answer_never_followed():
    res, conns = send_all({"answers": [b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://169.254.169.254/\r\n"
                                       b"Content-Length: 0\r\n\r\n"]}, 1)
    assert not res[0].ok and res[0].status == 307 and res[0].error == "HTTP 307 Temporary Redirect"
    assert conns == [["msg_0"]]


def test_retry_after_and_errors():
    res, _ = send_all({"answers": [b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n"]}, 1)
    assert (res[0].ok, res[0].status, res[0].retry_after) == (False, 503, "120")
    res, _ = send_all({"answers": [1.0]}, 1, timeout=0.3)  # answers after 1 s: a timeout
    assert not res[0].ok and res[0].error == "timed out after 0.3 s"
    res, _ = send_all({"answers": [b"SSH-2.0-x\r\n\r\n"]}, 1)
    assert not res[0].ok and res[0].error.startswith("ProtocolError: not an HTTP/1.x status line")
    res, _ = send_all({"answers": [b"HTTP/1.1 204 No Content\r\n\r\n"]}, 1, policy=AddressPolicy())
    assert not res[0].ok and res[0].error.startswith("refused: 127.0.0.1 is a loopback address")


def test_nobody_listening():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    async def main():
        nt = WebhookNotifier(2.0, policy=ALLOW)
        try:
            return await nt.send(f"http://127.0.0.1:{port}/h", Outgoing(id="m", body=b"{}", secrets=(SECRET,)))
        finally:
            await nt.aclose()

    r = run_async(main)
    assert not r.ok and r.status is None and r.error.startswith("ConnectionError: cannot connect to 127.0.0.1")


def test_a_host_name_is_resolved_by_the_system_and_judged():
    async def main(policy):
        async with RawServer([b"HTTP/1.1 204 No Content\r\n\r\n"]) as srv:
            nt = WebhookNotifier(2.0, policy=policy)
            try:
                return await nt.send(f"http://localhost:{srv.port}/hook", Outgoing(id="m", body=b"{}", secrets=(SECRET,)))
            finally:
                await nt.aclose()

    both = AddressPolicy(parse_networks(["127.0.0.1/32", "::1/128"]))  # localhost may also be ::1 (tried, then 127.0.0.1)
    assert run_async(lambda: main(both)).status == 204
    r = run_async(lambda: main(AddressPolicy()))
    assert not r.ok and r.error.startswith("refused: localhost resolves to ") and "loopback" in r.error
