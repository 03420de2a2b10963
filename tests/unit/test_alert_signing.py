"""Webhook signatures (Standard Webhooks), API keys and evidence links."""

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from alerts.signing import (
    SignatureError,
    evidence_token,
    key_matches,
    new_api_key,
    new_webhook_secret,
    parse_api_key,
    read_evidence_token,
    sign,
    verify,
    webhook_headers,
)

# The published Standard Webhooks / Svix test vector.
VECTOR = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
          '{"test": 2432232314}', "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


def test_signature_matches_the_published_test_vector():
    secret, msg_id, ts, body, want = VECTOR
    assert sign(secret, msg_id, ts, body) == want
    assert sign(secret, msg_id, ts, body.encode()) == want


def test_our_headers_verify_with_the_standard_verifier():
    secret = new_webhook_secret()
    body = '{"type":"alert.opened","data":{"title":"ปลั๊กพ่วง มอก."}}'.encode()
    now = int(datetime.now(UTC).timestamp())
    h = webhook_headers([secret], "msg_1", now, body)
    assert Webhook(secret).verify(body, h) == {"type": "alert.opened", "data": {"title": "ปลั๊กพ่วง มอก."}}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", h)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(body, h)


def test_during_rotation_both_secrets_verify():
    old, new = new_webhook_secret(), new_webhook_secret()
    now = datetime.now(UTC)
    body = b'{"x":1}'
    h = webhook_headers([new, old], "msg_2", int(now.timestamp()), body)
    assert len(h["webhook-signature"].split(" ")) == 2
    for s in (old, new):
        Webhook(s).verify(body, h)
        verify(s, h, body, now)
    with pytest.raises(SignatureError):
        verify(new_webhook_secret(), h, body, now)


@pytest.mark.parametrize("mutate,why", [
    (lambda h: {k: v for k, v in h.items() if k != "webhook-id"}, "missing"),
    (lambda h: {**h, "webhook-timestamp": "yesterday"}, "not a Unix time"),
    (lambda h: {**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 301)}, "too far"),
    (lambda h: {**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 301)}, "too far"),
    (lambda h: {**h, "webhook-id": "msg_other"}, "no matching"),
    (lambda h: {**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, "no matching"),
])
def test_verify_refuses_tampered_or_replayed_deliveries(mutate, why):
    s = new_webhook_secret()
    now = datetime(2026, 11, 23, tzinfo=UTC)
    h = webhook_headers([s], "msg_3", int(now.timestamp()), b"{}")
    verify(s, h, b"{}", now)
    with pytest.raises(SignatureError, match=why):
        verify(s, mutate(h), b"{}", now)


def test_bad_secrets_are_refused():
    with pytest.raises(ValueError):
        sign("whsec_!!!notbase64", "m", 1, b"")
    with pytest.raises(ValueError):
        sign("whsec_c2hvcnQ=", "m", 1, b"")  # 5 bytes: too short to be a key
    with pytest.raises(ValueError):
        webhook_headers([], "m", 1, b"")


def test_api_keys_are_checked_by_hash_and_shape():
    k = new_api_key()
    assert k.plain.startswith("twk_") and k.hash not in k.plain
    key_id, secret = parse_api_key(k.plain)
    assert key_id == k.key_id and key_matches(secret, k.hash)
    assert not key_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), k.hash)
    for bad in ("", "twk_", k.plain[:-1], k.plain + "x", "Bearer " + k.plain, k.plain.replace("twk_", "tWk_")):
        assert parse_api_key(bad) is None
    assert parse_api_key("  " + k.plain + "\n") == (key_id, secret)


def test_evidence_links_expire_and_cannot_be_forged():
    key = b"k" * 32
    now = datetime(2026, 11, 23, tzinfo=UTC)
    tok = evidence_token(key, "shopee:ลำโพง/1", "ab" * 32, now + timedelta(days=30))
    assert read_evidence_token(key, tok, now) == ("shopee:ลำโพง/1", "ab" * 32)
    with pytest.raises(ValueError, match="expired"):
        read_evidence_token(key, tok, now + timedelta(days=31))
    with pytest.raises(ValueError, match="bad signature"):
        read_evidence_token(b"x" * 32, tok, now)
    _payload, sig = tok.split(".")
    other = evidence_token(key, "shopee:2", "cd" * 32, now + timedelta(days=30)).split(".")[0]
    with pytest.raises(ValueError, match="bad signature"):
        read_evidence_token(key, other + "." + sig, now)  # a signature is only good for its own payload
    for junk in ("", ".", "abc", "a.b.c", "!!!.???"):
        with pytest.raises(ValueError):
            read_evidence_token(key, junk, now)
