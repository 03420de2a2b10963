"""The review web application (FastAPI + Jinja2). Listing text is written by sellers and may be
hostile: templates autoescape everything and a strict Content-Security-Policy forbids inline script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from listings.store import SearchQuery, open_store
from matching.reasons import sentence
from settings import Settings, load_settings

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(title="tiswatch", version="0.1.0", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.settings = settings
    app.state.store = open_store(settings)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.autoescape = True
    templates.env.filters["sentence"] = lambda code, lang="th": sentence(code, lang)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    # ---- routers from other packages: each adds one include_router line here -------------------
    # (registry/api.py licence check, alerts/api.py partner feeds, ...)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def queue(request: Request, marketplace: str | None = None, verdict: str | None = None, tis: str | None = None,
              q: str = "", page: int = Query(1, ge=1, le=100_000)) -> Any:
        size = 50
        res = app.state.store.search(SearchQuery(text=q, marketplace=marketplace or None, verdict=verdict or None,
                                                 tis=tis or None, flagged_only=True, order="risk",
                                                 limit=size, offset=(page - 1) * size))
        from crawlers.context import read_status

        return templates.TemplateResponse(request, "queue.html", {
            "res": res, "page": page, "pages": max(1, -(-res.total // size)), "q": q, "marketplace": marketplace or "",
            "verdict": verdict or "", "tis": tis or "", "counts": app.state.store.counts(),
            "crawl_status": read_status(settings.home)})

    @app.get("/listing/{key:path}", response_class=HTMLResponse)
    def listing(request: Request, key: str) -> Any:
        d = app.state.store.get(key)
        if d is None:
            raise HTTPException(404, "no such listing")
        return templates.TemplateResponse(request, "listing.html", {
            "l": d, "history": app.state.store.history(key), "evidence": app.state.store.evidence(key),
            "seller": app.state.store.seller(d["marketplace"], d["seller_id"]) if d.get("seller_id") else None})

    @app.get("/api/v1/listings")
    def api_listings(q: str = "", marketplace: str | None = None, verdict: str | None = None, flagged: bool = False,
                     limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)) -> JSONResponse:
        res = app.state.store.search(SearchQuery(text=q, marketplace=marketplace, verdict=verdict, flagged_only=flagged,
                                                 order="risk", limit=limit, offset=offset))
        return JSONResponse({"total": res.total, "items": res.hits, "facets": res.facets})

    return app
