"""The operators' endpoints, included in the review app (review/app.py):

- `GET /readyz`: ready to serve? The listing store answers, the registry has licences, Chromium starts
  (when a browser marketplace is enabled), the scheduler runs (under `tiswatch run`). 200 with each
  check, or 503 with the reason of each failing one. No login (load balancers, systemd, Docker).
- `GET /metrics`: Prometheus metrics (ops/metrics.py). With `[ops] metrics = "app"` here, without a
  login unless `[ops] metrics_token` is set (then `Authorization: Bearer <token>`); with
  `metrics = "listener"` only on the separate listener `[ops] metrics_listen` (here: 404); "off": none.
- `GET /ops/status` (HTML) and `/ops/status.json`: the status page: jobs, last crawls per marketplace
  (blocks included), backlog, alert delivery failures. For administrators.
`GET /healthz` (liveness) is the review app's own.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent


def router(settings: Any) -> APIRouter:
    from ops.metrics import registry_for, render
    from ops.status import readiness, status_snapshot, to_json
    from review.auth import require_role

    r = APIRouter()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.autoescape = True
    metrics_registry = registry_for(settings) if settings.ops.metrics == "app" else None
    admin = require_role("admin")

    def _specs(request: Request) -> list[Any]:
        ctx = getattr(request.app.state, "jobs", None)
        if ctx is not None:
            return list(ctx.specs().values())
        from ops.schedule import job_specs

        return job_specs(settings)

    @r.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        checks = readiness(settings, getattr(request.app.state, "store", None),
                           getattr(request.app.state, "scheduler", None))
        ok = all(c["ok"] for c in checks.values())
        body = {"status": "ready" if ok else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})

    @r.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if metrics_registry is None:
            raise HTTPException(404, "metrics are not served here ([ops] metrics)")
        token = settings.ops.metrics_token
        if token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return Response("metrics need `Authorization: Bearer <[ops] metrics_token>`\n", status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'}, media_type="text/plain")
        return Response(render(metrics_registry), media_type="text/plain; version=0.0.4; charset=utf-8",
                        headers={"Cache-Control": "no-store"})

    @r.get("/ops/status.json", dependencies=[Depends(admin)])
    def status_json(request: Request) -> Response:
        return Response(to_json(status_snapshot(settings, _specs(request))), media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    @r.get("/ops/status", response_class=HTMLResponse, dependencies=[Depends(admin)])
    def status_page(request: Request) -> Any:
        snap = status_snapshot(settings, _specs(request))
        checks = readiness(settings, getattr(request.app.state, "store", None),
                           getattr(request.app.state, "scheduler", None))
        return templates.TemplateResponse(request, "ops_status.html", {"s": snap, "checks": checks,
                                                                      "tz": settings.schedule.timezone},
                                          headers={"Cache-Control": "no-store"})

    templates.env.filters["local"] = _local_time(settings.schedule.timezone)
    return r


def _local_time(tz: str) -> Any:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)

    def fmt(value: Any) -> str:
        if not value:
            return "—"
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return fmt
