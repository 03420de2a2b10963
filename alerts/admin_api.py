"""Partner administration as a JSON API under /api/v1/partners (roles `partner_admin` and `admin`): what the
admin pages do, for scripts. The same operations as the pages (alerts/manage.py), with the same audit
log entries.

Authenticate as a user of the review app: a personal API token (`Authorization: Bearer tw_…`, made on
the account page; no CSRF token needed) or the session cookie with `X-CSRF-Token`. Partners' own keys
(`twk_…`) never reach these routes; a partner sees itself at `GET /api/v1/partner`.

| method and path                                          | what                                        |
|----------------------------------------------------------|---------------------------------------------|
| `GET /api/v1/partners`                                   | every partner with delivery figures         |
| `POST /api/v1/partners`                                  | add one (API key and secret in the answer, once) |
| `GET /api/v1/partners/{id}`                              | one partner, its keys (ids), figures        |
| `PATCH /api/v1/partners/{id}`                            | change fields or filters (given ones only)  |
| `POST /api/v1/partners/{id}/disable`, `/enable`          |                                             |
| `POST /api/v1/partners/{id}/rotate-key`, `/rotate-secret` | `{"grace_hours": 24}`; the new one, once   |
| `GET /api/v1/partners/{id}/deliveries?state=&limit=&offset=` | webhook deliveries, newest first       |
| `GET /api/v1/partners/{id}/deliveries/{delivery}`        | one delivery with every attempt             |
| `GET /api/v1/partners/{id}/dead-letters`                 | the dead-letter list                        |
| `POST /api/v1/partners/{id}/replay`                      | `{"message_ids": [...]}` or `{}` for all    |
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from alerts import manage
from alerts.api import alert_service
from alerts.model import DEFAULT_SCOPES
from alerts.rules import Filters
from alerts.store import PartnerError
from review.auth import require_role

router = APIRouter(prefix="/api/v1/partners", tags=["partner administration"])
partner_admin = require_role("partner_admin")
Admin = Annotated[Any, Depends(partner_admin)]


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    marketplaces: list[str] | None = None
    standards: list[str] | None = Field(None, description="TIS numbers; any edition of each matches")
    verdicts: list[str] | None = Field(None, description="unlicensed, mislabeled, needs_review; empty: all")
    min_risk: int | None = Field(None, ge=0, le=100)
    confirmed_only: bool | None = None

    def over(self, base: Filters) -> Filters:
        """These filters over `base`: fields not given keep the base's value."""
        def pick(new: list[str] | None, old: tuple[str, ...]) -> tuple[str, ...]:
            return old if new is None else tuple(x.strip() for x in new if x.strip())

        return Filters(pick(self.marketplaces, base.marketplaces), pick(self.standards, base.standards),
                       pick(self.verdicts, base.verdicts), base.min_risk if self.min_risk is None else self.min_risk,
                       base.confirmed_only if self.confirmed_only is None else self.confirmed_only)


class PartnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=2, max_length=32, description="lower-case letters, digits and '-'")
    name: str = Field("", max_length=200)
    kind: Literal["etda", "platform", "other"] = "other"
    operates: list[str] = Field([], description="for a platform: the marketplaces it operates")
    webhook_url: str | None = Field(None, max_length=2000)
    email: str | None = Field(None, max_length=320)
    digest: bool = False
    scopes: list[str] = Field(list(DEFAULT_SCOPES))
    filters: FiltersIn = FiltersIn()
    concurrency: int | None = Field(None, ge=1, le=64)
    backfill: bool = Field(True, description="open alerts at once for the listings that qualify now")


class PartnerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    kind: Literal["etda", "platform", "other"] | None = None
    operates: list[str] | None = None
    webhook_url: str | None = Field(None, max_length=2000, description="'' removes it")
    email: str | None = Field(None, max_length=320, description="'' removes it")
    digest: bool | None = None
    scopes: list[str] | None = None
    filters: FiltersIn | None = None
    concurrency: int | None = Field(None, ge=1, le=64)


class Grace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_hours: float = Field(24, ge=0, le=24 * 90, description="how long the old one keeps working")


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_ids: list[str] = Field([], max_length=10_000, description="webhook ids (msg_…); empty: every dead letter")


def _actor(request: Request, user: Any) -> manage.Actor:
    return manage.Actor(user, request.client.host if request.client else None, request.app.state.appdb)


def _partner(svc: Any, pid: str) -> Any:
    try:
        return manage.partner_or_404(svc, pid)
    except manage.NotFound:
        raise HTTPException(404, f"no partner {pid!r}") from None


def _bad(e: PartnerError) -> HTTPException:
    return HTTPException(409 if "exists already" in str(e) else 400, str(e))


def _view(svc: Any, p: Any, keys: bool = False) -> dict[str, Any]:
    out = {**p.public(), "deliveries": svc.store.delivery_stats(p.id), "open_alerts": len(svc.store.open_alerts(p.id))}
    if keys:
        out["keys"] = svc.store.keys(p.id)
    return out


@router.get("", summary="Every partner with its filters and delivery figures")
def list_partners(request: Request, user: Admin) -> list[dict[str, Any]]:
    svc = alert_service(request)
    return [_view(svc, p) for p in svc.store.partners()]


@router.post("", status_code=201, summary="Add a partner (its API key and webhook secret are in the answer, once)")
def add_partner(request: Request, body: PartnerIn, user: Admin) -> dict[str, Any]:
    svc = alert_service(request)
    try:
        c, n = manage.add_partner(svc, _actor(request, user), body.id, body.name,
                                  filters=body.filters.over(Filters(min_risk=svc.settings.alerts.min_risk)),
                                  scopes=tuple(body.scopes), webhook_url=body.webhook_url, email=body.email,
                                  digest=body.digest, kind=body.kind, operates=tuple(body.operates),
                                  concurrency=body.concurrency, backfill=body.backfill)
    except PartnerError as e:
        raise _bad(e) from None
    return {"partner": _view(svc, c.partner), "api_key": c.api_key, "webhook_secret": c.webhook_secret,
            "alerts_opened": n}


@router.get("/{pid}", summary="One partner: settings, API keys (ids only), delivery figures")
def get_partner(request: Request, pid: str, user: Admin) -> dict[str, Any]:
    svc = alert_service(request)
    return _view(svc, _partner(svc, pid), keys=True)


@router.patch("/{pid}", summary="Change a partner; given fields only (new filters or kind apply at once)")
def patch_partner(request: Request, pid: str, body: PartnerPatch, user: Admin) -> dict[str, Any]:
    svc = alert_service(request)
    p = _partner(svc, pid)
    try:
        q, secret, n = manage.update_partner(
            svc, _actor(request, user), pid, name=body.name, kind=body.kind,
            operates=tuple(body.operates) if body.operates is not None else None, webhook_url=body.webhook_url,
            email=body.email, digest=body.digest, scopes=tuple(body.scopes) if body.scopes is not None else None,
            filters=body.filters.over(p.filters) if body.filters is not None else None, concurrency=body.concurrency)
    except PartnerError as e:
        raise _bad(e) from None
    return {"partner": _view(svc, q), "webhook_secret": secret, "alerts_changed": n}


@router.post("/{pid}/disable", summary="Disable a partner: its keys are refused, nothing is made or sent")
def disable(request: Request, pid: str, user: Admin) -> dict[str, Any]:
    svc = alert_service(request)
    _partner(svc, pid)
    manage.set_enabled(svc, _actor(request, user), pid, False)
    return {"partner": _view(svc, _partner(svc, pid))}


@router.post("/{pid}/enable", summary="Enable a partner again; its alerts are brought up to date")
def enable(request: Request, pid: str, user: Admin) -> dict[str, Any]:
    svc = alert_service(request)
    _partner(svc, pid)
    n = manage.set_enabled(svc, _actor(request, user), pid, True)
    return {"partner": _view(svc, _partner(svc, pid)), "alerts_changed": n}


@router.post("/{pid}/rotate-key", summary="A new API key (in the answer, once); the old one works for the grace period")
def rotate_key(request: Request, pid: str, user: Admin, body: Grace | None = None) -> dict[str, Any]:
    svc = alert_service(request)
    _partner(svc, pid)
    g = (body or Grace()).grace_hours
    return {"api_key": manage.rotate_key(svc, _actor(request, user), pid, g), "grace_hours": g}


@router.post("/{pid}/rotate-secret", summary="A new webhook secret (in the answer, once); both sign for the grace period")
def rotate_secret(request: Request, pid: str, user: Admin, body: Grace | None = None) -> dict[str, Any]:
    svc = alert_service(request)
    _partner(svc, pid)
    g = (body or Grace()).grace_hours
    try:
        return {"webhook_secret": manage.rotate_secret(svc, _actor(request, user), pid, g), "grace_hours": g}
    except PartnerError as e:
        raise _bad(e) from None


def _rows(rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


@router.get("/{pid}/deliveries", summary="A partner's webhook deliveries, newest first")
def deliveries(request: Request, pid: str, user: Admin,
               state: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    svc = alert_service(request)
    _partner(svc, pid)
    return {"items": _rows(svc.store.deliveries(pid, state, limit, offset)), "limit": limit, "offset": offset,
            "stats": svc.store.delivery_stats(pid)}


@router.get("/{pid}/deliveries/{message_id}", summary="One delivery with every attempt (time, status, error, latency)")
def delivery(request: Request, pid: str, message_id: int, user: Admin) -> dict[str, Any]:
    svc = alert_service(request)
    _partner(svc, pid)
    try:
        d = manage.delivery(svc, message_id)
    except manage.NotFound:
        raise HTTPException(404, "no such delivery") from None
    if d["partner_id"] != pid:
        raise HTTPException(404, "no such delivery")
    return d


@router.get("/{pid}/dead-letters", summary="The partner's dead-letter list (deliveries given up after the retry window)")
def dead_letters(request: Request, pid: str, user: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                 offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    svc = alert_service(request)
    _partner(svc, pid)
    return {"items": _rows(svc.store.deliveries(pid, "dead", limit, offset)), "limit": limit, "offset": offset}


@router.post("/{pid}/replay", summary="Dead letters back in the queue (same webhook-id): these, or all")
def replay(request: Request, pid: str, user: Admin, body: ReplayIn | None = None) -> dict[str, Any]:
    svc = alert_service(request)
    _partner(svc, pid)
    ids = (body or ReplayIn()).message_ids
    return {"queued": manage.replay(svc, _actor(request, user), pid, ids or None)}


def listing_partners(request: Request, key: str) -> list[dict[str, Any]]:
    """Partner alerts and feedback of one listing, for the review app's listing endpoint."""
    return manage.partner_statuses(alert_service(request), key)
