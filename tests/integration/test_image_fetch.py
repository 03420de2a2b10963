"""The bounded picture fetcher against a local server that misbehaves, and the reading cache."""

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from images.cache import ReadingCache
from images.fetch import FetchLimits, FetchRefused, fetch_image
from images.pipeline import choose_for_ocr
from images.reader import ImageReading, ReadOptions, read_image
from matching.image_claims import ImageFindings


def _jpeg(w=200, h=150):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


JPEG = _jpeg()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        p = self.path
        if p == "/ok.jpg":
            self._send(200, "image/jpeg", JPEG)
        elif p == "/missing.jpg":
            self._send(404, "text/html", b"<html>not found</html>")
        elif p == "/captcha.jpg":
            self._send(200, "text/html; charset=utf-8", b"<!DOCTYPE html><html>verify you are human</html>")
        elif p == "/declared-huge.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(50_000_000))
            self.end_headers()
            self.wfile.write(JPEG)
        elif p == "/endless.jpg":  # no Content-Length: the body is cut at the limit
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"\xff" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif p == "/slow.jpg":
            time.sleep(3)
            self._send(200, "image/jpeg", JPEG)
        elif p == "/redirect.jpg":
            self.send_response(302)
            self.send_header("Location", "/ok.jpg")
            self.end_headers()
        else:
            self._send(404, "text/plain", b"?")

    def _send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


LIMITS = FetchLimits(max_bytes=1_000_000, timeout=1.0)


def test_fetches_a_picture_and_follows_a_redirect(server):
    assert fetch_image(server + "/ok.jpg", LIMITS) == JPEG
    assert fetch_image(server + "/redirect.jpg", LIMITS) == JPEG


@pytest.mark.parametrize("path, why", [
    ("/missing.jpg", "HTTP 404"), ("/captcha.jpg", "is not an image"), ("/declared-huge.jpg", "over the limit"),
    ("/endless.jpg", "over the limit of 1,000,000 bytes"), ("/slow.jpg", "Timeout"),
])
def test_refuses_with_url_and_reason(server, path, why):
    with pytest.raises(FetchRefused) as e:
        fetch_image(server + path, LIMITS)
    assert why in e.value.why and e.value.url == server + path and path in str(e.value)


def test_refuses_what_is_not_http():
    for url in ("file:///etc/passwd", "ftp://x/y.jpg", "javascript:alert(1)"):
        with pytest.raises(FetchRefused):
            fetch_image(url, LIMITS)


def test_reading_cache_round_trip_and_ocr_upgrade(tmp_path):
    cache = ReadingCache(tmp_path / "images.sqlite")
    opts = ReadOptions(ocr=False)
    r = read_image(JPEG, 1, opts)
    assert cache.get(r.sha256, opts.key(), need_ocr=False) is None
    cache.put(r.sha256, opts.key(), r.record())
    got = ImageReading.from_record(cache.get(r.sha256, opts.key(), need_ocr=False), 4)
    assert (got.sha256, got.phash, got.width, got.findings.index) == (r.sha256, r.phash, 200, 4)
    assert cache.get(r.sha256, opts.key(), need_ocr=True) is None  # read without OCR: not enough
    with_ocr = {**r.record(), "ocr": True}
    cache.put(r.sha256, opts.key(), with_ocr)
    cache.put(r.sha256, opts.key(), r.record())  # a reading without OCR never replaces one with it
    assert cache.get(r.sha256, opts.key(), need_ocr=True)["ocr"] is True
    assert cache.get(r.sha256, "other-reader", need_ocr=False) is None
    assert len(cache) == 1
    cache.close()


def _reading(index, score, ocr=False):
    return ImageReading("x", "0" * 16, "JPEG", 10, 10, ImageFindings(index), score, ocr)


@pytest.mark.parametrize("scores, done, budget, chosen", [
    ([0.5, 0.1, 0.4], [], 2, [1, 3]),
    ([0.5, 0.1, 0.4], [], 1, [1]),
    ([0.5, 0.1, 0.4], [1], 1, [3]),        # read by OCR before (cache): free, not counted
    ([0.1, 0.05], [], 3, []),             # nothing text-like: no OCR at all
    ([0.3, 0.3, 0.3], [], 2, [1, 2]),     # ties: the listing's order
    ([0.9], [], 0, []),
])
def test_choose_for_ocr(scores, done, budget, chosen):
    rs = [_reading(i, s, i in done) for i, s in enumerate(scores, 1)]
    assert [r.findings.index for r in choose_for_ocr(rs, budget, 0.2)] == chosen


def test_a_listing_without_pictures_costs_nothing(home):
    import asyncio

    from crawlers.context import CrawlContext
    from images.pipeline import ImagePipeline
    from listings.model import Listing

    class Stats:
        def __init__(self):
            self.values = {}

        def inc_value(self, k, n=1):
            self.values[k] = self.values.get(k, 0) + n

    class Crawler:
        stats = Stats()
        engine = None  # a download would fail loudly

    crawler = Crawler()
    crawler.tiswatch = CrawlContext(home, "shop")
    p = ImagePipeline(crawler)
    item = {"_listing": Listing(marketplace="shop", item_id="1", title="พัดลม", images=[])}
    # a fresh thread: another test in this process may have left an event loop running in this one
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as ex:
        out = ex.submit(lambda: asyncio.run(p.process_item(dict(item)))).result()
    assert out == item and crawler.stats.values == {}
    assert p._cache is None and crawler.tiswatch._store is None and crawler.tiswatch._registry is None


def test_a_picture_with_a_tisi_licence_qr_is_not_read_again_by_ocr():
    from matching.image_claims import QrCode, licence_qr_url

    r = _reading(1, 0.9)
    r.findings.qr = [QrCode(licence_qr_url("ท5137-2/10"), (0, 0, 9, 9))]
    other = _reading(2, 0.5)
    other.findings.qr = [QrCode("https://line.me/R/ti/p/@x", (0, 0, 9, 9))]
    assert [x.findings.index for x in choose_for_ocr([r, other], 2, 0.2)] == [2]
