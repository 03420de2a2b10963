"""Downloading a listing's pictures politely and safely.

The crawl fetches pictures through Scrapy's downloader (images/pipeline.py), so robots.txt, the
throttle, retries and the per-domain concurrency apply to them as to pages. `tiswatch images read URL`
and tests use `fetch_image`, a small bounded fetcher with the same rules. The rules themselves are pure
(`refusal`): a status other than 200, a Content-Type that is not an image, a declared size over the
limit. The body is read up to the limit and no further; what it really is is decided by its bytes
(images/decode.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from images.decode import content_type_ok


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 5_000_000
    timeout: float = 20.0
    user_agent: str = "tiswatch/0.1"


class FetchRefused(Exception):
    def __init__(self, url: str, why: str):
        super().__init__(f"{url}: {why}")
        self.url, self.why = url, why


def refusal(status: int, content_type: str | None, content_length: str | int | None, max_bytes: int) -> str | None:
    """Why a picture's response is refused before its body is read, or None."""
    if status != 200:
        return f"HTTP {status}"
    if not content_type_ok(content_type):
        return f"Content-Type {content_type!r} is not an image"
    if content_length not in (None, ""):
        try:
            n = int(content_length)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return f"bad Content-Length {content_length!r}"
        if n > max_bytes:
            return f"{n:,} bytes is over the limit of {max_bytes:,}"
    return None


def fetch_image(url: str, limits: FetchLimits = FetchLimits(), client=None) -> bytes:
    """GET a picture with the limits; raises FetchRefused naming the URL and why."""
    import httpx

    if not url.startswith(("http://", "https://")):
        raise FetchRefused(url, "not an http(s) URL")
    own = client is None
    client = client or httpx.Client(timeout=limits.timeout, follow_redirects=True, max_redirects=5,
                                    headers={"User-Agent": limits.user_agent, "Accept": "image/*"})
    try:
        with client.stream("GET", url) as r:
            why = refusal(r.status_code, r.headers.get("content-type"), r.headers.get("content-length"), limits.max_bytes)
            if why:
                raise FetchRefused(url, why)
            buf = bytearray()
            for chunk in r.iter_bytes():
                buf += chunk
                if len(buf) > limits.max_bytes:
                    raise FetchRefused(url, f"body is over the limit of {limits.max_bytes:,} bytes")
            return bytes(buf)
    except httpx.HTTPError as e:
        raise FetchRefused(url, f"{type(e).__name__}: {e}") from None
    finally:
        if own:
            client.close()
