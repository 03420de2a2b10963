"""The webhook HTTP client's pure parts: URLs, request heads, reading answers byte by byte."""

import pytest

from alerts.webhook_http import MAX_BODY, ProtocolError, _Reader, head_block, parse_target


@pytest.mark.parametrize("url, scheme, host, port, host_header, path", [
    ("http://127.0.0.1:8080/hook", "http", "127.0.0.1", 8080, "127.0.0.1:8080", "/hook"),
    ("https://hooks.partner.example/in?x=1&y=a%20b", "https", "hooks.partner.example", 443, "hooks.partner.example",
     "/in?x=1&y=a%20b"),
    ("https://hooks.partner.example:443", "https", "hooks.partner.example", 443, "hooks.partner.example", "/"),
    ("http://[::1]:9000/h", "http", "::1", 9000, "[::1]:9000", "/h"),
    ("https://ตัวอย่าง.ไทย/ที่", "https", "xn--72c1a1bt4awk9o.xn--o3cw4h", 443, "xn--72c1a1bt4awk9o.xn--o3cw4h",
     "/%E0%B8%97%E0%B8%B5%E0%B9%88"),
])
def test_targets(url, scheme, host, port, host_header, path):
    t = parse_target(url)
    assert (t.scheme, t.host, t.port, t.host_header, t.path) == (scheme, host, port, host_header, path)


@pytest.mark.parametrize("url", ["ftp://x.example/", "https://user:pw@x.example/", "/relative", "https:///nohost"])
def test_bad_targets(url):
    with pytest.raises(ValueError):
        parse_target(url)


def test_head_block_and_header_injection():
    t = parse_target("http://127.0.0.1:81/hook?a=1")
    head = head_block(t, {"webhook-id": "msg_1", "Content-Type": "application/json"}, 12)
    assert head == (b"POST /hook?a=1 HTTP/1.1\r\nHost: 127.0.0.1:81\r\nwebhook-id: msg_1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 12\r\n\r\n")
    for bad in ({"x": "a\r\nEvil: 1"}, {"x\r\nEvil": "1"}, {"a:b": "1"}):
        with pytest.raises(ValueError):
            head_block(t, bad, 0)


def read(chunks):
    r = _Reader()
    ans = None
    for c in chunks:
        assert ans is None, "an answer came before its last bytes"
        ans = r.feed(c)
    return r, ans


def bytewise(raw: bytes) -> list[bytes]:
    return [raw[i:i + 1] for i in range(len(raw))]


@pytest.mark.parametrize("raw, status, reusable", [
    (b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", 204, True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", 200, False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n", 200, True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 202, True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200, True),
    (b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n", 302, True),
    (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nContent-Length: 4\r\n\r\ndown", 503, True),
])
def test_answers_whole_and_byte_by_byte(raw, status, reusable):
    for chunks in ([raw], bytewise(raw)):
        r, ans = read(chunks)
        assert ans is not None and ans.status == status and r.reusable is reusable


def test_what_is_not_read_closes_the_connection():
    # length unknown: the status is known at once, the body is not waited for
    r, ans = read([b"HTTP/1.1 200 OK\r\n\r\nsome body until close"])
    assert ans.status == 200 and not r.reusable
    # a large body is not read either
    r, ans = read([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)])
    assert ans.status == 200 and not r.reusable
    big = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"8000\r\n" + b"x" * 0x8000 + b"\r\n") * 3
    r, ans = read([big])
    assert ans.status == 200 and not r.reusable
    # bytes after the answer (we sent one request): something is wrong with the connection
    r, ans = read([b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"])
    assert ans.status == 204 and not r.reusable


def test_answer_headers_and_retry_after():
    _, ans = read([b"HTTP/1.1 429 Too Many\r\nRetry-After: 30\r\nX-A:  b \r\nContent-Length: 0\r\n\r\n"])
    assert (ans.status, ans.reason, ans.headers["retry-after"], ans.headers["x-a"]) == (429, "Too Many", "30", "b")


@pytest.mark.parametrize("raw", [
    b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/2 200\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_garbage_is_a_protocol_error(raw):
    with pytest.raises(ProtocolError):
        read([raw])


def test_endless_headers_are_refused():
    r = _Reader()
    with pytest.raises(ProtocolError):
        for _ in range(100):
            r.feed(b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 1000 + b"\r\n")
