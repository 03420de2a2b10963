"""The JSON API under /api/v1: what the pages do, for scripts and other systems.

Authenticate with a personal API token (`Authorization: Bearer tw_…`, made on the account page) or,
from the app's own pages, the session cookie plus the `X-CSRF-Token` header. Roles are the pages':
officers and investigators read, officers decide, administrators manage users and read the audit log;
a partner administrator reaches none of this (partners' own feeds are alerts/, with their own keys).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from alerts.admin_api import listing_partners
from review import service
from review.auth import DECIDERS, INTERNAL, require_role
from review.db import ROLES, User, UserError
from review.decisions import DISMISS_REASONS, TARGETS, DecisionError
from review.pages import (
    _evaluation_lines,
    _filters,
    _ip,
    _pack,
    _search_filters,
    audit_export,
    case_response,
    dashboard_export,
    evidence_file_response,
    export_response,
    operator_export,
    seller_export,
    users_export,
)
from review.service import BadParam, ListFilters

router = APIRouter(prefix="/api/v1", tags=["review"])
internal = require_role(*INTERNAL)
decider = require_role(*DECIDERS)
admin = require_role("admin")
anyone = require_role(*ROLES)


class DecisionIn(BaseModel):
    action: Literal["confirm", "dismiss", "escalate", "taken_down", "reopen", "note"]
    reason: str | None = Field(None, description=f"for dismiss: one of {', '.join(DISMISS_REASONS)}")
    target: str | None = Field(None, description=f"for escalate: one of {', '.join(TARGETS)}")
    note: str = Field("", max_length=4000)
    licence_no: str | None = Field(None, max_length=40, description="for a dismissal as licensed: the licence, if known")


class BulkDecisionIn(DecisionIn):
    keys: list[str] = Field(min_length=1, max_length=500)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=10, max_length=1000)
    role: Literal["officer", "investigator", "partner_admin", "admin"]
    display_name: str = ""


class CaseIn(BaseModel):
    keys: list[str] = Field(min_length=1, max_length=200)
    title: str = Field("", max_length=200)


class UserChangeIn(BaseModel):
    active: bool | None = Field(None, description="false disables the account (its sessions and tokens end)")
    role: Literal["officer", "investigator", "partner_admin", "admin"] | None = None
    unlock: bool = Field(False, description="true lifts a lock-out")


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=80, description="what the token is for (shown on My account)")


class PasswordIn(BaseModel):
    current: str = Field(min_length=1, max_length=1000)
    new: str = Field(min_length=10, max_length=1000, description="10+ characters, at least 4 different ones")


class PasswordResetIn(BaseModel):
    password: str = Field(min_length=10, max_length=1000)


class MeIn(BaseModel):
    lang: Literal["th", "en"] | None = Field(None, description="the language of the pages (and exports)")


class SavedSearchIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    query: dict[str, str]


def _search(request: Request, f: ListFilters, limit: int, offset: int) -> dict[str, Any]:
    app = request.app.state
    try:
        res, facets = service.search_with_counts(app.store, app.counts, f, limit, offset)
    except BadParam as e:
        raise HTTPException(400, str(e)) from None
    return {"total": res.total, "limit": limit, "offset": offset, "items": res.hits,
            "facets": {k: [[a, b] for a, b in v] for k, v in facets.items()}}


@router.get("/me", summary="Who the token (or session) belongs to")
def me(user: User = Depends(anyone)) -> dict[str, Any]:
    return {**user.public(), "lang": user.lang}


@router.patch("/me", summary="Change one's own settings: the language (the pages' language switch)")
def api_change_me(request: Request, body: MeIn, user: User = Depends(anyone)) -> dict[str, Any]:
    db = request.app.state.appdb
    if body.lang is not None:
        db.set_lang(user, body.lang)
    u = db.user_by_id(user.id)
    return {**u.public(), "lang": u.lang}


@router.get("/me/tokens", summary="One's own personal API tokens (never the token itself: only its first characters)")
def api_my_tokens(request: Request, user: User = Depends(anyone)) -> list[dict[str, Any]]:
    return request.app.state.appdb.tokens(user)


@router.post("/me/tokens", status_code=201, summary="Make a personal API token: the answer is the only time it is shown")
def api_new_token(request: Request, body: TokenIn, user: User = Depends(anyone)):
    from fastapi.responses import JSONResponse

    tid, token = request.app.state.appdb.new_token(user, body.name)
    rec = next(t for t in request.app.state.appdb.tokens(user) if t["id"] == tid)
    return JSONResponse({**rec, "token": token}, status_code=201, headers={"Cache-Control": "no-store"})


@router.delete("/me/tokens/{tid}", status_code=204, summary="Revoke one of one's own tokens (it stops working at once)")
def api_revoke_token(request: Request, tid: int, user: User = Depends(anyone)) -> None:
    if not request.app.state.appdb.revoke_token(user, tid):
        raise HTTPException(404, "no such live token of yours")


@router.post("/me/password", status_code=204, summary="Change one's own password (the current one is needed); "
             "every session of the account ends, tokens keep working")
def api_change_password(request: Request, body: PasswordIn, user: User = Depends(anyone)) -> None:
    db = request.app.state.appdb
    outcome, _ = db.authenticate(user.username, body.current, ip=_ip(request))
    if outcome != "ok":
        raise HTTPException(403 if outcome in ("bad", "locked") else 400,
                            "the current password is wrong" if outcome == "bad" else f"login {outcome}")
    try:
        db.set_password(user.username, body.new, by=user)
    except UserError as e:
        raise HTTPException(400, str(e)) from None


@router.get("/queue", summary="The triage queue: flagged listings by risk, with filters and facets")
def api_queue(request: Request, user: User = Depends(internal), f: ListFilters = Depends(_filters),
              limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)) -> dict[str, Any]:
    return _search(request, f, limit, offset)


@router.get("/listings", summary="Full-text search over all listings, with filters and facets")
def api_listings(request: Request, user: User = Depends(internal), f: ListFilters = Depends(_search_filters),
                 limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)) -> dict[str, Any]:
    return _search(request, f, limit, offset)


@router.get("/listings/{key:path}/evidence.zip", summary="The evidence pack of one listing (ZIP)")
def api_pack(request: Request, key: str, user: User = Depends(internal)):
    from fastapi.responses import Response

    return Response(_pack(request, [key], user, f"evidence pack {key}"), media_type="application/zip")


@router.get("/listings/{key:path}/evidence/{eid}", summary="One evidence file of a listing (screenshot, saved page, "
            "raw response, picture), by its place in the listing's `evidence` list")
def api_evidence_file(request: Request, key: str, eid: int, user: User = Depends(internal)):
    return evidence_file_response(request, key, eid)


@router.post("/listings/{key:path}/decisions", summary="Decide on a listing (officers)")
def api_decide(request: Request, key: str, body: DecisionIn, user: User = Depends(decider)) -> dict[str, Any]:
    try:
        d = request.app.state.decider.decide(key, body.action, user, body.reason, body.target, body.note, body.licence_no,
                                             _ip(request))
    except KeyError:
        raise HTTPException(404, "no such listing") from None
    except DecisionError as e:
        raise HTTPException(409, e.detail) from None
    return {"id": d.id, "key": d.key, "action": d.action, "previous": d.previous, "status": d.status}


@router.get("/listings/{key:path}", summary="A listing with its history, evidence, decisions and seller")
def api_listing(request: Request, key: str, user: User = Depends(internal)) -> dict[str, Any]:
    ctx = service.listing_page(request.app.state.store, request.app.state.decider, key)
    if ctx is None:
        raise HTTPException(404, "no such listing")
    seller = ctx["seller"]
    return service.jsonable({
        "listing": ctx["l"], "history": ctx["history"], "evidence": ctx["evidence"], "decisions": ctx["decisions"],
        "timeline": ctx["timeline"], "candidates": ctx["candidates"], "claims": ctx["claims"],
        "seller": {k: v for k, v in seller.items() if k != "items"} if seller else None,
        "seller_listings": [{"key": x["key"], "title": x["title"], "verdict": x["verdict"], "risk": x["risk"]}
                            for x in ctx["other_listings"]],
        "partners": listing_partners(request, key),  # alerts sent to partners, their reports (alerts/)
        # images/: each picture with the boxes of the claims read in it and the listings using the same photo
        "pictures": (ctx.get("pictures") or {}).get("pictures", [])})


@router.post("/decisions", summary="The same decision on several listings (officers)")
def api_bulk(request: Request, body: BulkDecisionIn, user: User = Depends(decider)) -> dict[str, Any]:
    done, failed = [], []
    for k in body.keys:
        try:
            d = request.app.state.decider.decide(k, body.action, user, body.reason, body.target, body.note,
                                                 body.licence_no, _ip(request))
            done.append({"key": k, "id": d.id, "status": d.status})
        except KeyError:
            failed.append({"key": k, "error": "no such listing"})
        except DecisionError as e:
            failed.append({"key": k, "error": e.detail})
    return {"done": done, "failed": failed}


@router.get("/sellers/{marketplace}/{seller_id:path}", summary="A seller: listings, first/last seen, flagged share, and "
            "the shops the same operator may run on any marketplace, with why each is linked")
def api_seller(request: Request, marketplace: str, seller_id: str, user: User = Depends(internal)) -> dict[str, Any]:
    st = request.app.state.store
    s = st.seller(marketplace, seller_id)
    if s is None:
        raise HTTPException(404, "no such seller")
    op = service.linked_shops(st, s)
    a = op["anchor"]
    return service.jsonable({
        **s, "contacts": sorted(a.contacts),
        "linked": [{**{k: v for k, v in x["profile"].items() if k != "items"}, "strength": x["strength"], "links": x["links"]}
                   for x in op["linked"]],
        "operator": op["totals"]})


@router.get("/dashboard", summary="Flags per day, by standard, backlog age, decisions per officer, takedown rate")
def api_dashboard(request: Request, user: User = Depends(internal), days: int = Query(30, ge=1, le=366)) -> dict[str, Any]:
    return service.dashboard(request.app.state.store, request.app.state.appdb, request.app.state.events,
                             datetime.now(UTC), days)


@router.get("/audit", summary="The audit log, newest first (administrators)")
def api_audit(request: Request, user: User = Depends(admin), target: str | None = None, who: str | None = None,
              action: str | None = None, limit: int = Query(200, ge=1, le=1000), before: int | None = None):
    return request.app.state.appdb.audit_rows(target, who, action, limit, before)


@router.get("/saved-searches")
def api_saved(request: Request, user: User = Depends(internal)) -> list[dict[str, Any]]:
    return request.app.state.appdb.saved_searches(user)


@router.post("/saved-searches", status_code=201)
def api_save(request: Request, body: SavedSearchIn, user: User = Depends(internal)) -> dict[str, Any]:
    q = {k: v for k, v in body.query.items() if k in ListFilters.__dataclass_fields__}
    return {"id": request.app.state.appdb.save_search(user, body.name, q), "name": body.name, "query": q}


@router.delete("/saved-searches/{sid}", status_code=204)
def api_unsave(request: Request, sid: int, user: User = Depends(internal)) -> None:
    if not request.app.state.appdb.delete_saved_search(user, sid):
        raise HTTPException(404, "no such saved search")


@router.put("/users/{name}/password", status_code=204, summary="Set another user's password (administrators): "
            "their sessions end and a lock-out is lifted")
def api_reset_password(request: Request, name: str, body: PasswordResetIn, user: User = Depends(admin)) -> None:
    try:
        request.app.state.appdb.set_password(name, body.password, by=user)
    except UserError as e:
        raise HTTPException(404 if str(e).startswith("no user") else 400, str(e)) from None


@router.get("/users/{name}/tokens", summary="A user's personal API tokens (administrators)")
def api_user_tokens(request: Request, name: str, user: User = Depends(admin)) -> list[dict[str, Any]]:
    u = request.app.state.appdb.user(name)
    if u is None:
        raise HTTPException(404, f"no user {name!r}")
    return request.app.state.appdb.tokens(u)


@router.delete("/users/{name}/tokens/{tid}", status_code=204, summary="Revoke a user's token (administrators)")
def api_revoke_user_token(request: Request, name: str, tid: int, user: User = Depends(admin)) -> None:
    db = request.app.state.appdb
    u = db.user(name)
    if u is None or not db.revoke_token(u, tid, by=user):
        raise HTTPException(404, "no such live token")


@router.get("/users", summary="Users (administrators)")
def api_users(request: Request, user: User = Depends(admin)) -> list[dict[str, Any]]:
    return [u.public() for u in request.app.state.appdb.users()]


@router.post("/users", status_code=201, summary="Add a user (administrators)")
def api_add_user(request: Request, body: UserIn, user: User = Depends(admin)) -> dict[str, Any]:
    try:
        return request.app.state.appdb.add_user(body.username, body.password, body.role, body.display_name, by=user).public()
    except UserError as e:
        raise HTTPException(400, str(e)) from None


@router.patch("/users/{name}", summary="Disable, enable, unlock a user or change the role (administrators)")
def api_change_user(request: Request, name: str, body: UserChangeIn, user: User = Depends(admin)) -> dict[str, Any]:
    db = request.app.state.appdb
    try:
        if body.active is False and name.casefold() == user.username.casefold():
            raise UserError("you cannot disable yourself")
        if body.active is not None:
            db.set_active(name, body.active, by=user)
        if body.unlock:
            db.unlock(name, by=user)
        if body.role is not None:
            db.set_role(name, body.role, by=user)
    except UserError as e:
        raise HTTPException(404 if str(e).startswith("no user") else 400, str(e)) from None
    u = db.user(name)
    if u is None:
        raise HTTPException(404, f"no user {name!r}")
    return u.public()


@router.post("/export/case.zip", summary="The evidence pack of several listings (a case), as one ZIP")
def api_case(request: Request, body: CaseIn, user: User = Depends(internal)):
    return case_response(request, user, body.keys, body.title)


@router.get("/export/seller/{marketplace}/{seller_id}.{fmt}", summary="A seller's listings as CSV or XLSX")
def api_export_seller(request: Request, marketplace: str, seller_id: str, fmt: str, user: User = Depends(internal)):
    return seller_export(request, user, marketplace, seller_id, fmt)


@router.get("/export/operator/{marketplace}/{seller_id}.{fmt}", summary="The listings of a seller and of the shops "
            "linked to it as one operator, as CSV or XLSX")
def api_export_operator(request: Request, marketplace: str, seller_id: str, fmt: str, user: User = Depends(internal)):
    return operator_export(request, user, marketplace, seller_id, fmt)


@router.get("/export/audit.{fmt}", summary="The audit log (its filters: target, who, action, before) as CSV or XLSX "
            "(administrators)")
def api_export_audit(request: Request, fmt: str, user: User = Depends(admin), target: str = "", who: str = "",
                     action: str = "", before: int | None = None):
    return audit_export(request, user, fmt, target, who, action, before)


@router.get("/export/users.{fmt}", summary="Users as CSV or XLSX (administrators)")
def api_export_users(request: Request, fmt: str, user: User = Depends(admin)):
    return users_export(request, user, fmt)


@router.get("/export/dashboard.{fmt}", summary="The dashboard's figures as one table, CSV or XLSX")
def api_export_dashboard(request: Request, fmt: str, user: User = Depends(internal), days: int = Query(30, ge=1, le=366)):
    return dashboard_export(request, user, fmt, days)


@router.get("/export/queue.{fmt}", summary="The queue as CSV or XLSX")
def api_export_queue(request: Request, fmt: str, user: User = Depends(internal), f: ListFilters = Depends(_filters)):
    return export_response(request, user, f, fmt, "queue")


@router.get("/export/search.{fmt}", summary="A search as CSV or XLSX")
def api_export_search(request: Request, fmt: str, user: User = Depends(internal),
                      f: ListFilters = Depends(_search_filters)):
    return export_response(request, user, f, fmt, "search")


@router.get("/export/evaluation.jsonl", summary="Officers' decisions as a labeled evaluation set (DOMAIN.md §4.2)")
def api_evaluation(request: Request, user: User = Depends(internal)):
    request.app.state.appdb.audit("export.evaluation", None, None, None, user, _ip(request))
    return StreamingResponse(_evaluation_lines(request), media_type="application/x-ndjson")
