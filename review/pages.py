"""The HTML pages: login, queue, listing, decisions, search, sellers, dashboard, audit log, users,
account, exports. Each route states the roles it needs; the JSON API (api.py) mirrors them."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse

from review import charts, exports, service
from review.auth import (
    DECIDERS,
    INTERNAL,
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginRequired,
    current_user,
    login_token,
    new_login_nonce,
    require_role,
    resolve,
    safe_next,
)
from review.db import ROLES, User, UserError
from review.decisions import DISMISS_REASONS, TARGETS, DecisionError
from review.i18n import tr
from review.service import BadParam, ListFilters
from review.web import lang_of, render, svg

router = APIRouter(include_in_schema=False)  # pages; the API (api.py) is what OpenAPI documents
internal = require_role(*INTERNAL)
decider = require_role(*DECIDERS)
admin = require_role("admin")
anyone = require_role(*ROLES)


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _back(url: str, **msg: str) -> RedirectResponse:
    url = safe_next(url)
    if msg:
        url += ("&" if "?" in url else "?") + urlencode(msg)
    return RedirectResponse(url, status_code=303)


# ---- login, logout, language --------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", error: str = "", msg: str = ""):
    nonce = new_login_nonce()
    resp = render(request, "login.html", {"next": safe_next(next), "login_error": error, "login_msg": msg,
                                          "login_csrf": login_token(request.app.state.secret, nonce)})
    resp.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", path="/login",
                    secure=request.app.state.settings.review.secure_cookies)
    return resp


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=200)], password: Annotated[str, Form(max_length=1000)],
          csrf: Annotated[str, Form(max_length=200)] = "", next: Annotated[str, Form(max_length=2000)] = "/"):
    import hmac

    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(csrf, login_token(request.app.state.secret, nonce)):
        return _back("/login?" + urlencode({"next": safe_next(next)}), error="csrf")
    db = request.app.state.appdb
    outcome, user = db.authenticate(username, password, ip=_ip(request))
    if outcome != "ok" or user is None:
        return _back("/login?" + urlencode({"next": safe_next(next)}), error=outcome)
    s = request.app.state.settings.review
    token, _ = db.new_session(user, s.session_hours, _ip(request), request.headers.get("user-agent"))
    resp = RedirectResponse(safe_next(next), status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, max_age=int(s.session_hours * 3600), httponly=True, samesite="lax",
                    secure=s.secure_cookies, path="/")
    resp.delete_cookie(LOGIN_COOKIE, path="/login")
    return resp


@router.post("/logout")
def logout(request: Request, user: User = Depends(anyone)):
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        request.app.state.appdb.end_session(cookie)
        request.app.state.appdb.audit("logout", f"user:{user.username}", None, None, user, _ip(request))
    resp = _back("/login", msg="logged_out")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/lang/{code}")
def switch_lang(request: Request, code: str, next: str = "/"):
    """Switch the language (a cookie, and the user's saved choice). Changes nothing else."""
    if code not in ("th", "en"):
        raise HTTPException(404)
    u = current_user(request)
    if u is not None and u.lang != code:
        request.app.state.appdb.set_lang(u, code)
    resp = RedirectResponse(safe_next(next), status_code=303)
    resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", httponly=True,
                    secure=request.app.state.settings.review.secure_cookies)
    return resp


# ---- the API's documentation ------------------------------------------------------------------
@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request):
    """Swagger UI over /api/openapi.json, served from review/static/vendor (no CDN) and started by
    review/static/api-docs.js (no inline script), so the app's CSP holds here too. Open like the
    OpenAPI document itself; the API behind it needs a token or a session."""
    return render(request, "api_docs.html", {"spec": request.app.openapi_url or "/api/openapi.json"})


# ---- the queue ----------------------------------------------------------------------------------
def _filters(q: str = "", marketplace: str = "", verdict: str = "", tis: str = "", seller: str = "", date_from: str = "",
             date_to: str = "", status: str = "new", order: str = "risk") -> ListFilters:
    return ListFilters(q=q[:500], marketplace=marketplace[:64], verdict=verdict[:32], tis=tis[:40], seller=seller[:200],
                       date_from=date_from[:10], date_to=date_to[:10], status=status[:20], flagged=True, order=order[:20])


@router.get("/", response_class=HTMLResponse)
def home(request: Request):
    a = resolve(request)
    if a is None:
        raise LoginRequired()
    if a.user.role == "partner_admin":
        return RedirectResponse("/partners" if has_page(request.app, "/partners") else "/account", status_code=303)
    return queue(request, user=a.user, f=_filters(**{k: v for k, v in request.query_params.items()
                                                       if k in ListFilters.__dataclass_fields__ and k != "flagged"}),
                 page=_int(request.query_params.get("page"), 1), msg=request.query_params.get("msg", ""))


def has_page(app: Any, path: str) -> bool:
    """Whether some router (another package's, say) answers GET `path`."""
    from starlette.routing import Match

    scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "path_params": {}, "headers": [],
             "query_string": b""}
    for r in app.router.routes:
        try:
            if r.matches(scope)[0] == Match.FULL:
                return True
        except Exception:  # a route kind that cannot answer for an HTTP scope
            continue
    return False


def _int(v: str | None, default: int) -> int:
    try:
        return max(1, min(100_000, int(v or default)))
    except ValueError:
        return default


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, user: User = Depends(internal), f: ListFilters = Depends(_filters),
          page: int = Query(1, ge=1, le=100_000), msg: str = ""):
    size = request.app.state.settings.review.page_size
    error = ""
    try:
        f.query(size, 0)
    except BadParam as e:
        error, f = str(e), ListFilters(status=f.status if f.status in ("", "all", "new") else "new")
    res, facets = _search_counts(request, f, size, (page - 1) * size)
    status_counts = _status_counts(request, f, res.total)
    return render(request, "queue.html", {
        "res": res, "facets": facets, "f": f, "page": page, "pages": max(1, -(-res.total // size)), "error": error,
        "msg": msg, "params": f.params(), "qs": _qs(f.params(), flagged=None),
        "qs_nostatus": _qs(f.params(), flagged=None, status=None),
        "status_counts": status_counts, **_row_options(lang_of(request)), "can_decide": user.role in ("officer", "admin"),
        "here": request.url.path + ("?" + request.url.query if request.url.query else "")})


def _search_counts(request: Request, f: ListFilters, limit: int, offset: int):
    """The page's listings (read now) and the facet counts (kept briefly: review/counts.py)."""
    app = request.app.state
    return service.search_with_counts(app.store, app.counts, f, limit, offset)


def _status_counts(request: Request, f: ListFilters, total: int) -> dict[str, int]:
    """How many flagged listings in each review status under the other filters (the tabs), from the
    store's `review_status` facet of the same filters in every status (kept like the other counts);
    the current tab shows the page's own, exact total."""
    from dataclasses import replace

    app = request.app.state
    counts: dict[str, int] = {}
    try:
        n_all, facets = service.counts_of(app.store, app.counts, replace(f, status="all"))
    except BadParam:
        n_all, facets = None, {}
    if "review_status" in facets:
        counts.update(dict(facets["review_status"]))
        counts["all"] = n_all or 0
    counts[f.status or "all"] = total
    return counts


def _qs(params: dict[str, Any], **over: Any) -> str:
    p = {**params, **over}
    return urlencode({k: v for k, v in p.items() if v not in ("", None)})


# ---- the listing page and decisions -------------------------------------------------------------
@router.get("/listing/{key:path}/evidence/{eid}")
def evidence_file(request: Request, key: str, eid: int, user: User = Depends(internal)):
    return evidence_file_response(request, key, eid)


def evidence_file_response(request: Request, key: str, eid: int):
    found = service.evidence_file(request.app.state.store, request.app.state.settings.home, key, eid)
    if found is None:
        raise HTTPException(404, "no such evidence file")
    p, rec = found
    kind = rec["kind"]
    if kind == "screenshot":
        return FileResponse(p, media_type="image/png")
    if kind.startswith("image:"):  # a listing's picture (images/): served as the image its bytes are, or not
        from images.decode import sniff

        with p.open("rb") as f:
            fmt = sniff(f.read(16))
        if fmt is None:
            raise HTTPException(404, "not a picture")
        return FileResponse(p, media_type=f"image/{fmt.lower()}",
                            headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"})
    # a saved page or response is the seller's content: shown as an inert document (no script, no
    # network), or as plain text
    headers = {"Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'",
               "X-Content-Type-Options": "nosniff", "Content-Disposition": f"inline; filename*=UTF-8''{quote(p.name)}"}
    media = "text/html; charset=utf-8" if p.suffix == ".html" else "text/plain; charset=utf-8"
    return FileResponse(p, media_type=media, headers=headers)


@router.get("/listing/{key:path}/evidence.zip")
def evidence_pack(request: Request, key: str, user: User = Depends(internal)):
    data = _pack(request, [key], user, f"evidence pack {key}")
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(_file_safe(key))}-evidence.zip"})


def _file_safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)[:80]


def _pack(request: Request, keys: list[str], user: User, title: str) -> bytes:
    st, dec = request.app.state.store, request.app.state.decider
    now = datetime.now(UTC)
    b = exports.PackBuilder(request.app.state.settings.home, user.username, now, lang_of(request))
    found = []
    for k in keys:
        d = st.get(k)
        if d is None:
            continue
        found.append(k)
        b.add_listing(d, st.history(k), st.evidence(k), dec.for_listing(k))
    if not found:
        raise HTTPException(404, "no such listing")
    data = b.finish(title)
    import hashlib

    request.app.state.appdb.audit("export.evidence_pack", ",".join(found)[:2000], None,
                                  {"listings": found, "sha256": hashlib.sha256(data).hexdigest()}, user, _ip(request))
    return data


@router.get("/listing/{key:path}", response_class=HTMLResponse)
def listing(request: Request, key: str, user: User = Depends(internal), msg: str = "", error: str = ""):
    lang = lang_of(request)
    ctx = service.listing_page(request.app.state.store, request.app.state.decider, key, lang)
    if ctx is None:
        raise HTTPException(404, "no such listing")
    ctx.update({"msg": msg, "error": error, "dismiss_reasons": list(DISMISS_REASONS), "targets": TARGETS,
                "can_decide": user.role in ("officer", "admin"),
                "price_chart": svg(charts.sparkline([(x[0][:10], x[1]) for x in ctx["prices"]], tr("listing.chart_price", lang))),
                "ev_index": {id(e): i for i, e in enumerate(ctx["evidence"])}})
    return render(request, "listing.html", ctx)


@router.post("/decide")
def decide(request: Request, user: User = Depends(decider),
           key: Annotated[list[str], Form()] = [],  # noqa: B006
           action: Annotated[str, Form(max_length=20)] = "", reason: Annotated[str, Form(max_length=40)] = "",
           target: Annotated[str, Form(max_length=20)] = "", note: Annotated[str, Form(max_length=4000)] = "",
           licence_no: Annotated[str, Form(max_length=40)] = "", next: Annotated[str, Form(max_length=2000)] = "/"):
    """One decision on one or more listings (the queue's bulk actions post several `key`s)."""
    lang = lang_of(request)
    done, skipped = 0, []
    why = ""
    for k in key[:500]:
        try:
            request.app.state.decider.decide(k, action, user, reason or None, target or None, note, licence_no, _ip(request))
            done += 1
        except DecisionError as e:
            skipped.append(k)
            why = tr(e.code, lang)
        except KeyError:
            skipped.append(k)
            why = tr("err.404", lang)
    if request.headers.get("hx-request") == "true" and len(key) == 1:  # keyboard triage: the row only
        if skipped:
            return HTMLResponse(f'<span class="flash error">{_esc(why)}</span>', status_code=409)
        return _row(request, key[0])
    if done:
        request.app.state.counts.clear()  # the page this redirects to shows the counts: make them new
    if not key:
        return _back(next, error=tr("act.not_allowed", lang))
    if skipped and not done:
        return _back(next, error=why)
    m = tr("act.bulk_done", lang, n=done) if len(key) > 1 else tr("act.done", lang)
    if skipped:
        m += " · " + tr("act.bulk_skipped", lang, n=len(skipped), why=why)
    return _back(next, msg=m)


def _esc(s: str) -> str:
    from markupsafe import escape

    return str(escape(s))


def _row(request: Request, key: str):
    d = request.app.state.store.get(key)
    return render(request, "_row.html", {"l": d, "can_decide": True, **_row_options(lang_of(request)),
                                         "here": request.headers.get("hx-current-url", "/")})


@functools.cache
def _row_options(lang: str) -> dict[str, Any]:
    """The dismissal reasons and escalation targets, and their <option>s rendered once per language
    (every queue row has both lists: rendering them 50 times was a third of the queue page's time)."""
    from markupsafe import Markup

    def opts(first: str | None, prefix: str, values: tuple[str, ...] | list[str]) -> Markup:
        head = Markup('<option value="">{}…</option>').format(first) if first else Markup("")
        return head + Markup("").join(Markup('<option value="{}">{}</option>').format(v, tr(prefix + v, lang))
                                      for v in values)

    return {"dismiss_reasons": list(DISMISS_REASONS), "targets": TARGETS,
            "reason_options": opts(tr("act.reason", lang), "dismiss.", DISMISS_REASONS),
            "target_options": opts(None, "target.", TARGETS)}


# ---- search, sellers, saved searches ------------------------------------------------------------
def _search_filters(q: str = "", marketplace: str = "", verdict: str = "", tis: str = "", seller: str = "",
                    date_from: str = "", date_to: str = "", status: str = "", flagged: str = "0", order: str = "relevance",
                    price_min: str = "", price_max: str = "") -> ListFilters:
    def num(v: str) -> float | None:
        try:
            return float(v) if v.strip() else None
        except ValueError:
            return None

    return ListFilters(q=q[:500], marketplace=marketplace[:64], verdict=verdict[:32], tis=tis[:40], seller=seller[:200],
                       date_from=date_from[:10], date_to=date_to[:10], status=status[:20] or "all",
                       flagged=flagged in ("1", "on", "true"), order=order[:20], price_min=num(price_min),
                       price_max=num(price_max))


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, user: User = Depends(internal), f: ListFilters = Depends(_search_filters),
           page: int = Query(1, ge=1, le=100_000), msg: str = ""):
    size = request.app.state.settings.review.page_size
    error, res = "", None
    searched = any(request.query_params.get(k) for k in ("q", "marketplace", "verdict", "tis", "seller", "date_from",
                                                         "date_to", "flagged", "price_min", "price_max"))
    facets: dict[str, Any] = {}
    if searched:
        try:
            res, facets = _search_counts(request, f, size, (page - 1) * size)
        except BadParam as e:
            error = str(e)
    return render(request, "search.html", {
        "res": res, "facets": facets, "f": f, "page": page, "pages": max(1, -(-res.total // size)) if res else 1,
        "error": error, "msg": msg, "params": f.params(), "saved": request.app.state.appdb.saved_searches(user),
        "searched": searched})


@router.post("/search/save")
def save_search(request: Request, user: User = Depends(internal), name: Annotated[str, Form(max_length=120)] = "",
                query: Annotated[str, Form(max_length=4000)] = ""):
    params = {k: v for k, v in _parse_qs(query).items() if k in ListFilters.__dataclass_fields__}
    request.app.state.appdb.save_search(user, name or params.get("q", "") or "search", params)
    return _back("/search?" + urlencode(params), msg=tr("common.save", lang_of(request)) + " ✓")


def _parse_qs(q: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(q, keep_blank_values=False))


@router.post("/search/saved/{sid}/delete")
def delete_saved(request: Request, sid: int, user: User = Depends(internal)):
    request.app.state.appdb.delete_saved_search(user, sid)
    return _back("/search")


@router.get("/seller/{marketplace}/{seller_id:path}", response_class=HTMLResponse)
def seller(request: Request, marketplace: str, seller_id: str, user: User = Depends(internal)):
    st = request.app.state.store
    s = st.seller(marketplace, seller_id)
    if s is None:
        raise HTTPException(404, "no such seller")
    op = service.linked_shops(st, s)
    return render(request, "seller.html", {"s": s, "op": op, "anchor_key": f"{marketplace}:{seller_id}",
                                           "operator_items": service.operator_listings(s, op["linked"], 200)
                                           if any(x["strength"] != "weak" for x in op["linked"]) else []})


def operator_export(request: Request, user: User, marketplace: str, seller_id: str, fmt: str):
    """The listings of a shop and of the shops linked to it as one operator (review/linking.py)."""
    _fmt_ok(fmt)
    st = request.app.state.store
    s = st.seller(marketplace, seller_id)
    if s is None:
        raise HTTPException(404, "no such seller")
    op = service.linked_shops(st, s)
    lang = lang_of(request)
    rows = [{**exports.listing_row(h, lang)} for h in service.operator_listings(s, op["linked"], 100_000)]
    request.app.state.appdb.audit(f"export.{fmt}", f"operator:{marketplace}:{seller_id}", None,
                                  {"shops": [f"{marketplace}:{seller_id}"] + [f"{x['profile']['marketplace']}:{x['profile']['seller_id']}"
                                                                             for x in op["linked"] if x["strength"] != "weak"]},
                                  user, _ip(request))
    return table_response(fmt, "operator", rows, exports.LISTING_COLUMNS)


@router.get("/export/operator/{marketplace}/{seller_id:path}.{fmt}")
def export_operator(request: Request, marketplace: str, seller_id: str, fmt: str, user: User = Depends(internal)):
    return operator_export(request, user, marketplace, seller_id, fmt)


# ---- dashboard, audit ---------------------------------------------------------------------------
@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, user: User = Depends(internal)):
    lang = lang_of(request)
    d = service.dashboard(request.app.state.store, request.app.state.appdb, request.app.state.events, datetime.now(UTC))
    days = [x[5:] for x in d["days"]]
    none = tr("dash.no_data", lang)
    return render(request, "dashboard.html", {
        "d": d,
        "chart_days": svg(charts.stacked_bars(days, d["per_marketplace"], tr("dash.flags_per_day", lang), empty=none)),
        "chart_std_days": svg(charts.lines(days, {tr("dash.other", lang) if k == service.OTHER else k: v
                                                  for k, v in d["per_standard"].items()},
                                           tr("dash.flags_per_day_standard", lang), empty=none)),
        "chart_std": svg(charts.hbars(d["by_standard"], tr("dash.flags_by_standard", lang), empty=none, label_width=120)),
        "chart_backlog": svg(charts.hbars([(tr(f"dash.age.{a}", lang), n) for a, n in d["backlog"]],
                                          tr("dash.backlog", lang), empty=none, color="#dc6803", label_width=120)),
        "chart_officers": svg(charts.hbars(d["per_officer"], tr("dash.decisions", lang), empty=none, color="#079455",
                                           label_width=160)),
    })


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, user: User = Depends(admin), target: str = "", who: str = "", action: str = "",
          before: int | None = None):
    rows = request.app.state.appdb.audit_rows(target[:300] or None, who[:64] or None, action[:64] or None, 200, before)
    return render(request, "audit.html", {"rows": rows, "target": target, "who": who, "action": action, "before": before,
                                          "older": rows[-1]["id"] if len(rows) == 200 else None})


# ---- users (administrators) and one's own account -----------------------------------------------
@router.get("/users", response_class=HTMLResponse)
def users(request: Request, user: User = Depends(admin), msg: str = "", error: str = ""):
    return render(request, "users.html", {"users": request.app.state.appdb.users(), "roles": ROLES, "msg": msg,
                                          "error": error})


@router.post("/users")
def add_user(request: Request, user: User = Depends(admin), username: Annotated[str, Form(max_length=64)] = "",
             password: Annotated[str, Form(max_length=1000)] = "", role: Annotated[str, Form(max_length=20)] = "",
             display_name: Annotated[str, Form(max_length=200)] = ""):
    try:
        request.app.state.appdb.add_user(username, password, role, display_name, by=user)
    except UserError as e:
        return _back("/users", error=str(e))
    return _back("/users", msg=tr("users.added", lang_of(request)))


@router.post("/users/{name}/{op}")
def user_op(request: Request, name: str, op: str, user: User = Depends(admin), role: Annotated[str, Form(max_length=20)] = ""):
    db = request.app.state.appdb
    try:
        if op == "disable":
            if name.casefold() == user.username.casefold():
                raise UserError("you cannot disable yourself")
            db.set_active(name, False, by=user)
        elif op == "enable":
            db.set_active(name, True, by=user)
        elif op == "unlock":
            db.unlock(name, by=user)
        elif op == "role":
            db.set_role(name, role, by=user)
        else:
            raise HTTPException(404)
    except UserError as e:
        return _back("/users", error=str(e))
    return _back("/users", msg=f"{name}: {op} ✓")


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, user: User = Depends(anyone), msg: str = "", error: str = ""):
    return render(request, "account.html", {"tokens": request.app.state.appdb.tokens(user), "new_token": None,
                                            "msg": msg, "error": error})


@router.post("/account/tokens", response_class=HTMLResponse)
def new_token(request: Request, user: User = Depends(anyone), name: Annotated[str, Form(max_length=80)] = ""):
    _, token = request.app.state.appdb.new_token(user, name)
    # shown once, on this response only; never cached
    return render(request, "account.html", {"tokens": request.app.state.appdb.tokens(user), "new_token": token,
                                            "msg": "", "error": ""}, headers={"Cache-Control": "no-store"})


@router.post("/account/tokens/{tid}/revoke")
def revoke_token(request: Request, tid: int, user: User = Depends(anyone)):
    request.app.state.appdb.revoke_token(user, tid)
    return _back("/account")


@router.post("/account/password")
def change_password(request: Request, user: User = Depends(anyone), current: Annotated[str, Form(max_length=1000)] = "",
                    new: Annotated[str, Form(max_length=1000)] = ""):
    db = request.app.state.appdb
    lang = lang_of(request)
    outcome, _ = db.authenticate(user.username, current, ip=_ip(request))
    if outcome != "ok":
        return _back("/account", error=tr("account.pw_wrong", lang))
    try:
        db.set_password(user.username, new, by=user)
    except UserError as e:
        return _back("/account", error=str(e))
    resp = _back("/login", msg="pw_changed")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# ---- exports ------------------------------------------------------------------------------------
def _rows(request: Request, f: ListFilters, limit: int):
    st = request.app.state.store
    lang = lang_of(request)
    done, step = 0, 1000
    while done < limit:
        res = st.search(f.query(min(step, limit - done), done))
        for h in res.hits:
            yield exports.listing_row(h, lang)
        done += len(res.hits)
        if len(res.hits) < step:
            break


def export_response(request: Request, user: User, f: ListFilters, fmt: str, name: str, limit: int = 100_000):
    try:
        f.query(1, 0)
    except BadParam as e:
        raise HTTPException(400, str(e)) from None
    request.app.state.appdb.audit(f"export.{fmt}", name, None, {"filters": f.params()}, user, _ip(request))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        return StreamingResponse(exports.csv_bytes(_rows(request, f, limit), exports.LISTING_COLUMNS),
                                 media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="tiswatch-{name}-{stamp}.csv"'})
    if fmt == "xlsx":
        data = exports.xlsx_bytes(_rows(request, f, limit), exports.LISTING_COLUMNS, name)
        return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="tiswatch-{name}-{stamp}.xlsx"'})
    raise HTTPException(404, "csv or xlsx")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def table_response(fmt: str, name: str, rows: Any, columns: tuple[str, ...]) -> Response:
    """Rows (dicts) as a CSV (streamed) or XLSX download; every cell goes through exports.safe_cell."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    fname = f"tiswatch-{_file_safe(name)}-{stamp}.{fmt}"
    if fmt == "csv":
        return StreamingResponse(exports.csv_bytes(rows, columns), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{fname}"'})
    if fmt == "xlsx":
        return Response(exports.xlsx_bytes(rows, columns, name), media_type=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="{fname}"'})
    raise HTTPException(404, "csv or xlsx")


def _fmt_ok(fmt: str) -> None:
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(404, "csv or xlsx")


def audit_export(request: Request, user: User, fmt: str, target: str = "", who: str = "", action: str = "",
                 before: int | None = None):
    """The audit log under the page's filters (every matching entry, newest first, read in pages)."""
    _fmt_ok(fmt)
    db = request.app.state.appdb
    lang = lang_of(request)
    filters = {"target": target[:300], "who": who[:64], "action": action[:64], "before": before}
    db.audit(f"export.{fmt}", "audit", None, {"filters": {k: v for k, v in filters.items() if v}}, user, _ip(request))

    def rows():
        cursor = before
        while True:
            page = db.audit_rows(target[:300] or None, who[:64] or None, action[:64] or None, 1000, cursor)
            yield from (exports.audit_row(r, lang) for r in page)
            if len(page) < 1000:
                return
            cursor = page[-1]["id"]

    return table_response(fmt, "audit", rows(), exports.AUDIT_COLUMNS)


def users_export(request: Request, user: User, fmt: str):
    _fmt_ok(fmt)
    lang = lang_of(request)
    request.app.state.appdb.audit(f"export.{fmt}", "users", None, None, user, _ip(request))
    return table_response(fmt, "users", [exports.user_row(u, lang) for u in request.app.state.appdb.users()],
                          exports.USER_COLUMNS)


def dashboard_export(request: Request, user: User, fmt: str, days: int = 30):
    _fmt_ok(fmt)
    st = request.app.state
    d = service.dashboard(st.store, st.appdb, st.events, datetime.now(UTC), days)
    st.appdb.audit(f"export.{fmt}", "dashboard", None, {"days": days}, user, _ip(request))
    return table_response(fmt, "dashboard", list(exports.dashboard_rows(d, lang_of(request))), exports.DASHBOARD_COLUMNS)


@router.get("/export/audit.{fmt}")
def export_audit(request: Request, fmt: str, user: User = Depends(admin), target: str = "", who: str = "",
                 action: str = "", before: int | None = None):
    return audit_export(request, user, fmt, target, who, action, before)


@router.get("/export/users.{fmt}")
def export_users(request: Request, fmt: str, user: User = Depends(admin)):
    return users_export(request, user, fmt)


@router.get("/export/dashboard.{fmt}")
def export_dashboard(request: Request, fmt: str, user: User = Depends(internal), days: int = Query(30, ge=1, le=366)):
    return dashboard_export(request, user, fmt, days)


@router.get("/export/queue.{fmt}")
def export_queue(request: Request, fmt: str, user: User = Depends(internal), f: ListFilters = Depends(_filters)):
    return export_response(request, user, f, fmt, "queue")


@router.get("/export/search.{fmt}")
def export_search(request: Request, fmt: str, user: User = Depends(internal), f: ListFilters = Depends(_search_filters)):
    return export_response(request, user, f, fmt, "search")


@router.get("/export/seller/{marketplace}/{seller_id:path}.{fmt}")
def export_seller(request: Request, marketplace: str, seller_id: str, fmt: str, user: User = Depends(internal)):
    return seller_export(request, user, marketplace, seller_id, fmt)


def seller_export(request: Request, user: User, marketplace: str, seller_id: str, fmt: str):
    """A seller's listings as CSV or XLSX (the seller page's export; the API's too)."""
    s = request.app.state.store.seller(marketplace, seller_id)
    if s is None:
        raise HTTPException(404, "no such seller")
    lang = lang_of(request)
    rows = [exports.listing_row(h, lang) for h in s["items"]]
    request.app.state.appdb.audit(f"export.{fmt}", f"seller:{marketplace}:{seller_id}", None, None, user, _ip(request))
    if fmt == "csv":
        return StreamingResponse(exports.csv_bytes(rows, exports.LISTING_COLUMNS), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="tiswatch-seller.csv"'})
    if fmt == "xlsx":
        return Response(exports.xlsx_bytes(rows, exports.LISTING_COLUMNS, "seller"),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": 'attachment; filename="tiswatch-seller.xlsx"'})
    raise HTTPException(404, "csv or xlsx")


@router.post("/export/case.zip")
def case_pack(request: Request, user: User = Depends(internal), key: Annotated[list[str], Form()] = [],  # noqa: B006
              title: Annotated[str, Form(max_length=200)] = ""):
    """An evidence pack of several listings (a case): the queue's or search's selection."""
    return case_response(request, user, key, title)


def case_response(request: Request, user: User, keys: list[str], title: str) -> Response:
    if not keys:
        raise HTTPException(400, "select listings first")
    keys = list(dict.fromkeys(keys))[:200]
    data = _pack(request, keys, user, title or f"case of {len(keys)} listings")
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="tiswatch-case-{len(keys)}.zip"'})


@router.get("/export/evaluation.jsonl")
def evaluation(request: Request, user: User = Depends(internal)):
    request.app.state.appdb.audit("export.evaluation", None, None, None, user, _ip(request))
    return StreamingResponse(_evaluation_lines(request), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="tiswatch-decisions.jsonl"'})


def _evaluation_lines(request: Request):
    db, st = request.app.state.appdb, request.app.state.store
    rows = db.q("SELECT d.* FROM decisions d WHERE d.id = (SELECT max(id) FROM decisions WHERE key = d.key AND action != 'note')"
                " ORDER BY d.id")
    for r in rows:
        listing = st.get(r["key"])
        if listing is None:
            continue
        exp = exports.expected_label(dict(r), listing)
        if exp is not None:
            yield (exports.evaluation_line(listing, exp) + "\n").encode()
