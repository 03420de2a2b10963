"""Recognising a block or captcha page instead of data. Pure.

A marketplace that decides a crawler is a bot answers with something that is not an error status:
Shopee's API says {"error": 90309999} with HTTP 200, or the page goes to /verify/captcha; Lazada
serves its "punish" slider page (x5sec, RGV587_ERROR); shop sites behind Cloudflare serve a
challenge page. Treating any of these as data would store garbage, and retrying them would loop.
"""

from __future__ import annotations

import re

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_CHALLENGE_TITLES = ("just a moment", "attention required", "access denied", "security verification",
                     "verify you are human", "are you a robot", "captcha")


def block_reason(url: str, status: int, text: str | bytes) -> str | None:
    """Why this response is a block or captcha page, or None. Looks at the URL, the status and the
    start of the body only, so a listing that merely mentions a captcha is not taken for one."""
    head = text[:20_000] if isinstance(text, str) else text[:20_000].decode("utf-8", "replace")
    if "/verify/captcha" in url or "/verify/traffic" in url:
        return "captcha / traffic verification page"
    if '"error":90309999' in head.replace(" ", ""):
        return "error 90309999 (anti-bot)"
    if ("punish" in head and ("x5sec" in head or "RGV587" in head)) or "_____tmd_____" in head:
        return "captcha/punish page (RGV587_ERROR)"
    if "cf-chl" in head or "challenge-platform" in head:
        return f"Cloudflare challenge (HTTP {status})"
    m = _TITLE.search(head)
    title = " ".join(m.group(1).split()).casefold() if m else ""
    if status in (403, 429, 503) and any(t in title for t in _CHALLENGE_TITLES):
        return f"block page (HTTP {status}: {title[:60]})"
    return None
