"""Secrets, signatures and tokens. Pure: no I/O, no clock (the time is always passed in).

- **Webhook signatures** follow the Standard Webhooks specification: the secret is `whsec_` + base64 of
  random bytes; the signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the
  `webhook-signature` header is `v1,<base64 HMAC-SHA256>`, several separated by spaces while a rotated
  secret is in its grace period (a receiver accepts any one that verifies).
- **API keys** are `twk_<key id>_<secret>`: the key id finds the stored row, the secret is compared by
  its SHA-256. A key carries 256 random bits, so a fast hash is enough (a slow password hash would only
  slow every API call); the plain key is shown once and never stored.
- **Evidence links** are `<token>` = base64url(JSON {k: listing key, h: SHA-256 of the file, e: expiry})
  + "." + base64url(HMAC-SHA256): a partner can fetch that one file until the expiry, nothing else.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

SECRET_PREFIX = "whsec_"
KEY_PREFIX = "twk_"
TOLERANCE_SECONDS = 300
_KEY = re.compile(r"^twk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


class SignatureError(Exception):
    """A webhook whose signature, headers or timestamp do not verify."""


# ---- webhook secrets and signatures ------------------------------------------------------------
def new_webhook_secret(entropy: bytes | None = None) -> str:
    return SECRET_PREFIX + base64.b64encode(entropy or secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=256)
def secret_bytes(secret: str) -> bytes:
    """The key bytes of a `whsec_...` secret (the part after the prefix is base64). Remembered: a
    delivery worker signs every message with the same few secrets."""
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except ValueError:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """One `v1,<base64>` signature of `id.timestamp.body`."""
    data = body.encode() if isinstance(body, str) else body
    mac = hmac.digest(secret_bytes(secret), f"{msg_id}.{timestamp}.".encode() + data, "sha256")
    return "v1," + base64.b64encode(mac).decode()


def webhook_headers(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every given secret (current first)."""
    if not secrets_:
        raise ValueError("no webhook secret to sign with")
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(timestamp)),
            "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)}


def verify(secret: str, headers: dict[str, str], body: bytes | str, now: datetime,
           tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise SignatureError unless one `v1` signature in the headers is valid for `secret` and the
    timestamp is within `tolerance` seconds of `now` (which stops replays of old deliveries)."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and ts and sigs):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        t = int(ts)
    except ValueError:
        raise SignatureError(f"webhook-timestamp {ts!r} is not a Unix time in seconds") from None
    if abs(now.timestamp() - t) > tolerance:
        raise SignatureError("webhook-timestamp is too far from now (replay?)")
    want = sign(secret, msg_id, t, body).split(",", 1)[1].encode()
    for part in sigs.split():
        version, _, value = part.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), want):
            return
    raise SignatureError("no matching v1 signature")


# ---- API keys -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewKey:
    key_id: str
    plain: str  # shown once
    hash: str


def hash_key_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> NewKey:
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)  # 43 characters
    return NewKey(key_id, f"{KEY_PREFIX}{key_id}_{secret}", hash_key_secret(secret))


def parse_api_key(plain: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    m = _KEY.match(plain.strip())
    return (m[1], m[2]) if m else None


def key_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key_secret(secret), stored_hash)


# ---- signed, expiring evidence links -------------------------------------------------------------
def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def evidence_token(key: bytes, listing_key: str, sha256: str, expires: datetime) -> str:
    payload = _b64(json.dumps({"k": listing_key, "h": sha256, "e": int(expires.timestamp())},
                              separators=(",", ":"), ensure_ascii=False).encode())
    return payload + "." + _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def read_evidence_token(key: bytes, token: str, now: datetime) -> tuple[str, str]:
    """(listing key, file SHA-256) of a valid, unexpired token; ValueError saying why otherwise."""
    payload, _, sig = token.partition(".")
    try:
        good = hmac.compare_digest(_unb64(sig), hmac.new(key, payload.encode(), hashlib.sha256).digest())
    except ValueError:
        good = False
    if not good:
        raise ValueError("bad signature")
    try:
        d = json.loads(_unb64(payload))
        k, h, e = str(d["k"]), str(d["h"]), int(d["e"])
    except (ValueError, KeyError, TypeError):
        raise ValueError("malformed token") from None
    if now.timestamp() > e:
        raise ValueError(f"link expired at {datetime.fromtimestamp(e, UTC).isoformat()}")
    return k, h
