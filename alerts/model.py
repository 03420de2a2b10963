"""What a partner receives: an explicit allow-list of fields, nothing else.

Every payload a partner sees (webhook body, pull feed, `GET /api/v1/alerts/{id}`) is serialised through
these models, built field by field from the stored data. A field that is not named here cannot reach a
partner: officer notes, officer names and ids, review statuses, internal scores, the listing's raw
detail and other partners' alerts and feedback never do. `extra="forbid"` makes adding one by mistake
an error rather than a leak.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MESSAGE_TYPES = ("alert.opened", "alert.updated", "alert.retracted", "alert.resolved", "alert.reopened")
FEEDBACK_STATUSES = ("removed", "seller_warned", "rejected")
SCOPES = {
    "alerts:read": "read the alert feed and single alerts",
    "alerts:feedback": "report what was done about an alert",
    "licences:check": "call the licence check API",
}
DEFAULT_SCOPES = ("alerts:read", "alerts:feedback")
# Evidence files a partner may fetch: what the marketplace showed (raw response, rendered page,
# screenshot, the listing as read) and the manifest with their SHA-256; not the matcher's working.
PUBLIC_EVIDENCE_KINDS = frozenset({"raw", "html", "screenshot", "listing", "manifest"})


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublicReason(_Public):
    code: str
    th: str
    en: str


class PublicStandard(_Public):
    tis_no: str
    name_th: str | None = None
    name_en: str | None = None


class PublicListing(_Public):
    key: str
    marketplace: str
    item_id: str
    shop_id: str | None = None
    url: str | None = None
    title: str | None = None
    seller: str | None = None
    seller_id: str | None = None
    price: float | None = None
    currency: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None


class PublicEvidence(_Public):
    kind: str
    sha256: str
    size: int | None = None
    captured_at: str | None = None
    url: str
    expires_at: str


class PublicRetraction(_Public):
    reason: str
    th: str
    en: str


class PublicResolution(_Public):
    """Why an alert was closed with nothing left to do (not a retraction: no takedown to undo)."""

    reason: str  # "delisted"
    th: str
    en: str
    at: str | None = None  # when it happened (the crawl found the listing gone)


class AlertData(_Public):
    alert_id: str
    state: Literal["open", "retracted", "resolved"]
    # automatic: the matcher's own flag; confirmed: an officer confirmed it; escalated: an officer sent it
    # to you (ETDA, or the platform that operates the marketplace) for action
    basis: Literal["automatic", "confirmed", "escalated"] | None = None
    verdict: str | None = None
    risk: int | None = None
    licence_no: str | None = None
    standard: PublicStandard | None = None
    listing: PublicListing
    reasons: list[PublicReason] = Field(default_factory=list)
    evidence: list[PublicEvidence] = Field(default_factory=list)
    retraction: PublicRetraction | None = None
    resolution: PublicResolution | None = None
    opened_at: str


class AlertMessage(_Public):
    """One entry of a partner's feed; the body of one webhook (Standard Webhooks: type, timestamp, data)."""

    id: str  # the webhook-id: the same on every retry, and in the pull feed
    seq: int  # the partner's feed position: poll with added_after=<the last seq you processed>
    type: Literal["alert.opened", "alert.updated", "alert.retracted", "alert.resolved", "alert.reopened"]
    timestamp: str
    data: AlertData


class PublicFeedback(_Public):
    status: str
    reason: str | None = None
    at: str
    verification: str | None = None  # for "removed": pending, gone, still_listed, unverified
    verified_at: str | None = None


class AlertView(_Public):
    """`GET /api/v1/alerts/{id}`: the alert as it stands now, with this partner's own feedback."""

    alert: AlertData
    feedback: list[PublicFeedback] = Field(default_factory=list)


class FeedPage(_Public):
    items: list[AlertMessage]
    next: str  # the cursor to pass as added_after next time (unchanged when nothing new)
    has_more: bool


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["removed", "seller_warned", "rejected"]
    reason: str | None = Field(None, max_length=2000)
