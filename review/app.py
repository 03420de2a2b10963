"""The review web application (FastAPI + Jinja2 + htmx). Listing text is written by sellers and may be
hostile: templates autoescape everything and a strict Content-Security-Policy forbids inline script
and style (htmx is vendored under review/static/vendor and configured not to inject styles).

`app.state` holds: settings, store (the listing store), appdb (app.sqlite: users, sessions, tokens,
decisions, audit), events (the listing event log), decider (review/decisions.py), secret, counts
(review/counts.py: the queue's and search's facet counts, kept briefly).
Other packages add routers with one `include_router` line below; see docs/DEVELOPING.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from listings.events import open_events
from listings.store import open_store
from review.counts import CountCache
from review.db import open_appdb, secret_key
from review.decisions import Decider
from settings import Settings, load_settings

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or ("application/json" in request.headers.get("accept", "") \
        and "text/html" not in request.headers.get("accept", ""))


TOKEN_TAGS = {"review", "listings"}  # the routers behind review.auth.require_role (partners' have their own keys)


def _bearer_in_openapi(app: FastAPI) -> None:
    """Declare the personal API token in the OpenAPI document (so /api/docs offers "Authorize") for
    the review API's operations; operations with their own scheme (partners' keys) keep theirs."""
    base = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["personal token"] = {
            "type": "http", "scheme": "bearer",
            "description": "A personal API token (My account → Personal API tokens): `Authorization: Bearer tw_…`"}
        for ops in schema.get("paths", {}).values():
            for op in ops.values():
                if isinstance(op, dict) and "security" not in op and set(op.get("tags", ())) & TOKEN_TAGS:
                    op["security"] = [{"personal token": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    settings.ensure_home()
    app = FastAPI(title="tiswatch", version="0.1.0", docs_url=None, openapi_url="/api/openapi.json",
                  redoc_url=None, swagger_ui_parameters={"persistAuthorization": True},
                  description="The review app's JSON API: everything the pages do. Authenticate with a personal "
                              "API token (My account → Personal API tokens): `Authorization: Bearer tw_…`.")
    _bearer_in_openapi(app)
    app.state.settings = settings
    app.state.store = open_store(settings)
    app.state.appdb = open_appdb(settings)
    app.state.events = open_events(settings)
    app.state.decider = Decider(app.state.store, app.state.appdb, app.state.events)
    app.state.secret = secret_key(settings)
    app.state.counts = CountCache(settings.review.count_cache_seconds)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers.setdefault("X-Frame-Options", "DENY")
        if request.url.path.startswith(("/api/", "/listing/", "/export/", "/account", "/users", "/audit")):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
        if exc.status_code == 401:
            nxt = request.url.path + ("?" + request.url.query if request.url.query else "")
            from urllib.parse import urlencode

            from review.auth import SESSION_COOKIE

            if request.cookies.get(SESSION_COOKIE):  # a session cookie the app no longer knows: idle or expired
                resp = RedirectResponse("/login?" + urlencode({"next": nxt, "msg": "session_ended"}), status_code=303)
                resp.delete_cookie(SESSION_COOKIE, path="/")
                return resp
            return RedirectResponse("/login?" + urlencode({"next": nxt}), status_code=303)
        from review.web import render

        key = "err.csrf" if "CSRF" in str(exc.detail) else "err.403" if exc.status_code == 403 else \
            "err.404" if exc.status_code == 404 else "err.title"
        return render(request, "error.html", {"code": exc.status_code, "key": key, "detail": str(exc.detail)},
                      status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        errs = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        if _wants_json(request):
            return JSONResponse({"detail": errs}, status_code=422)
        from review.web import render

        return render(request, "error.html", {"code": 422, "key": "err.title",
                                              "detail": "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errs)},
                      status_code=422)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from review.api import router as api_router
    from review.pages import router as pages_router

    app.include_router(api_router)
    # ---- routers from other packages: each adds one include_router line here -------------------
    # (registry/api.py licence check, alerts/api.py partner feeds, ...)
    from alerts.admin import router as partners_pages
    from alerts.admin_api import router as partners_admin_api
    from alerts.api import router as alerts_router

    app.include_router(alerts_router)
    app.include_router(partners_pages)
    app.include_router(partners_admin_api)
    from registry.api import router as registry_router

    app.include_router(registry_router)
    from ops.api import router as ops_router

    app.include_router(ops_router(settings))  # /readyz, /metrics, /ops/status
    from listings.api import router as listings_router

    app.include_router(listings_router)

    app.include_router(pages_router)  # last: its /listing/{key:path} would shadow more specific routes

    return app
