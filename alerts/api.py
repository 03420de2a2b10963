"""The partner API: the pull feed, single alerts, feedback, evidence links.

Partners authenticate with their API key: `Authorization: Bearer twk_...` (or `X-API-Key: twk_...`).
`require_partner(scope)` is the reusable FastAPI dependency for that; another router (the licence
check API, say) protects a route with `partner: Partner = Depends(require_partner("licences:check"))`.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from alerts.feeds import CursorError, page_url, parse_cursor, to_atom, to_csv
from alerts.model import (
    MESSAGE_TYPES,
    AlertData,
    AlertView,
    FeedbackIn,
    FeedPage,
    PublicFeedback,
)
from alerts.service import AlertService, open_service
from alerts.signing import read_evidence_token
from alerts.store import Partner

router = APIRouter(tags=["partners"])
_open_lock = threading.Lock()
MAX_PAGE = 500


def alert_service(request: Request) -> AlertService:
    """The app's alerts service, opened on first use (it shares the app's listing store)."""
    svc = getattr(request.app.state, "alerts", None)
    if svc is None:
        with _open_lock:
            svc = getattr(request.app.state, "alerts", None)
            if svc is None:
                svc = open_service(request.app.state.settings, listings=getattr(request.app.state, "store", None))
                request.app.state.alerts = svc
    return svc


def require_partner(scope: str):
    """A dependency that returns the partner whose API key came with the request and that holds
    `scope`; 401 without a valid key, 403 without the scope."""

    def dependency(request: Request, authorization: Annotated[str | None, Header()] = None,
                   x_api_key: Annotated[str | None, Header()] = None) -> Partner:
        plain = x_api_key or ""
        if authorization:
            kind, _, value = authorization.partition(" ")
            if kind.lower() == "bearer":
                plain = value.strip()
        if not plain:
            raise HTTPException(401, "an API key is needed: Authorization: Bearer <key>",
                                headers={"WWW-Authenticate": 'Bearer realm="tiswatch"'})
        svc = alert_service(request)
        p = svc.store.authenticate(plain, svc.clock.now())
        if p is None:
            raise HTTPException(401, "unknown, expired or disabled API key",
                                headers={"WWW-Authenticate": 'Bearer realm="tiswatch", error="invalid_token"'})
        if scope not in p.scopes:
            raise HTTPException(403, f"this key does not have the {scope!r} scope")
        return p

    return dependency


def _base(request: Request, svc: AlertService) -> str:
    return svc.settings.alerts.public_url or str(request.base_url).rstrip("/")


@router.get("/api/v1/partner")
def whoami(partner: Annotated[Partner, Depends(require_partner("alerts:read"))]) -> dict[str, Any]:
    """The calling partner: its id, scopes and the filters its feed applies."""
    return {"id": partner.id, "name": partner.name, "scopes": list(partner.scopes),
            "filters": partner.filters.to_json(), "webhook": bool(partner.webhook_url)}


@router.get("/api/v1/feeds/alerts", response_model=None)
def feed(request: Request, partner: Annotated[Partner, Depends(require_partner("alerts:read"))],
         added_after: Annotated[str | None, Query(description="the `next` (or last `seq`) of your previous poll")] = None,
         next: Annotated[str | None, Query(description="same as added_after")] = None,
         limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
         format: Annotated[str | None, Query(pattern="^(json|atom|csv)$")] = None,
         marketplace: str | None = None, verdict: str | None = None, standard: str | None = None,
         type: Annotated[str | None, Query(description="alert.opened, alert.updated, alert.retracted, alert.resolved or alert.reopened")] = None,
         ) -> Response:
    """A page of the partner's alert feed, oldest first, after the cursor. Poll with the `next` of the
    previous answer: no message is missed and none comes twice."""
    svc = alert_service(request)
    try:
        after = parse_cursor(added_after if added_after is not None else next)
    except CursorError as e:
        raise HTTPException(400, str(e)) from None
    if type and type not in MESSAGE_TYPES:
        raise HTTPException(400, f"type must be one of {', '.join(MESSAGE_TYPES)}")
    fmt = format or _negotiate(request.headers.get("accept", ""))
    rows, nxt, more = svc.store.feed(partner.id, after, limit, marketplace=marketplace, verdict=verdict,
                                     standard=standard, mtype=type)
    base = _base(request, svc)
    items = [svc.publisher.message(r, base) for r in rows]
    params = {"limit": limit, "format": format, "marketplace": marketplace, "verdict": verdict,
              "standard": standard, "type": type}
    self_url = page_url(f"{base}/api/v1/feeds/alerts", params, after)
    next_url = page_url(f"{base}/api/v1/feeds/alerts", params, nxt)
    headers = {"X-Next-Cursor": str(nxt), "Link": f'<{next_url}>; rel="next"', "Cache-Control": "no-store"}
    if fmt == "csv":
        return Response(to_csv(items), media_type="text/csv; charset=utf-8",
                        headers={**headers, "Content-Disposition": 'attachment; filename="tiswatch-alerts.csv"'})
    if fmt == "atom":
        xml = to_atom(items, feed_id=f"urn:tiswatch:feed:{partner.id}", title=f"tiswatch alerts for {partner.name}",
                      self_url=self_url, next_url=next_url if more else None, updated=svc.clock.now().isoformat())
        return Response(xml, media_type="application/atom+xml; charset=utf-8", headers=headers)
    page = FeedPage(items=items, next=str(nxt), has_more=more)
    return Response(page.model_dump_json(), media_type="application/json", headers=headers)


def _negotiate(accept: str) -> str:
    a = accept.lower()
    if "application/atom+xml" in a:
        return "atom"
    if "text/csv" in a:
        return "csv"
    return "json"


def _own_alert(svc: AlertService, partner: Partner, alert_id: str) -> Any:
    row = svc.store.alert(alert_id)
    if row is None or row["partner_id"] != partner.id:  # another partner's alert does not exist for you
        raise HTTPException(404, "no such alert")
    return row


def _feedback_view(rows: list[Any]) -> list[PublicFeedback]:
    return [PublicFeedback(status=r["status"], reason=r["reason"], at=r["at"], verification=r["verify_state"],
                           verified_at=r["verified_at"]) for r in rows]


@router.get("/api/v1/alerts/{alert_id}")
def get_alert(request: Request, alert_id: str,
              partner: Annotated[Partner, Depends(require_partner("alerts:read"))]) -> Response:
    """One alert as it stands now (its latest message, current evidence links) and your feedback on it."""
    svc = alert_service(request)
    _own_alert(svc, partner, alert_id)
    msgs = svc.store.messages_for_alert(alert_id)
    data: AlertData = svc.publisher.message(msgs[-1], _base(request, svc)).data
    view = AlertView(alert=data, feedback=_feedback_view(svc.store.feedback(alert_id=alert_id, pid=partner.id)))
    return Response(view.model_dump_json(), media_type="application/json")


@router.post("/api/v1/alerts/{alert_id}/status")
def post_status(request: Request, alert_id: str, body: FeedbackIn,
                partner: Annotated[Partner, Depends(require_partner("alerts:feedback"))],
                idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> JSONResponse:
    """Report what you did about an alert: `removed` (the listing is taken down: the crawler will check),
    `seller_warned`, or `rejected` with a `reason`. Sending the same report again changes nothing."""
    svc = alert_service(request)
    row = _own_alert(svc, partner, alert_id)
    reason = (body.reason or "").strip() or None
    if body.status == "rejected" and not reason:
        raise HTTPException(422, "a rejection needs a reason")
    basis = idempotency_key or f"{body.status}\n{reason or ''}"
    dedupe = "ps:" + hashlib.sha256(f"{partner.id}\n{alert_id}\n{basis}".encode()).hexdigest()[:32]
    now = svc.clock.now()
    fid, created = svc.store.add_feedback(alert_id, partner.id, row["key"], body.status, reason, now, dedupe)
    if created:
        eid = svc.events.append("partner_status", row["key"],
                                {"partner": partner.id, "status": body.status, "reason": reason, "alert_id": alert_id,
                                 "marketplace": row["key"].split(":", 1)[0]}, at=now, dedupe=dedupe)
        svc.store.set_feedback_event(fid, eid)
    fb = _feedback_view([r for r in svc.store.feedback(alert_id=alert_id, pid=partner.id) if r["id"] == fid])[0]
    return JSONResponse(fb.model_dump(), status_code=201 if created else 200)


_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".json": "application/json", ".html": "text/html",
          ".txt": "text/plain"}


@router.get("/api/v1/evidence/{token}")
def evidence(request: Request, token: str) -> FileResponse:
    """One evidence file, by the signed, expiring link in an alert (no API key needed: the link is it)."""
    svc = alert_service(request)
    try:
        key, sha = read_evidence_token(svc.publisher._key, token, svc.clock.now())
    except ValueError as e:
        raise HTTPException(403 if "expired" in str(e) else 404, f"evidence link: {e}") from None
    from alerts.model import PUBLIC_EVIDENCE_KINDS

    files = [f for f in (svc.listings.evidence(key) if svc.listings is not None else [])
             if f["sha256"] == sha and f["kind"] in PUBLIC_EVIDENCE_KINDS]
    if not files:
        raise HTTPException(404, "evidence file not found")
    home = Path(svc.settings.home).resolve()
    path = (home / files[0]["path"]).resolve()
    root = (home / "evidence").resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(404, "evidence file not found")
    media = _TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, filename=f"{key.replace(':', '_')}-{path.name}",
                        content_disposition_type="inline" if media.startswith("image/") else "attachment",
                        headers={"Content-Security-Policy": "sandbox; default-src 'none'", "X-Evidence-SHA256": sha,
                                 "Cache-Control": "private, max-age=3600"})
