"""Rendering pages: one Jinja2 environment (autoescape on), the base template, the language.

Another package adds a page like this:

    from review.web import add_template_dir, render
    add_template_dir(Path(__file__).parent / "templates")      # once, at import
    @router.get("/partners", response_class=HTMLResponse)
    def partners(request: Request, user=Depends(require_role("partner_admin"))):
        return render(request, "partners.html", {"rows": ...})

and its template starts with `{% extends "base.html" %}` and fills `{% block main %}` (and
`{% block title %}`). Every template gets `t` (the catalogue of review/i18n.py in the request's
language: add your messages there or pass your own text), `lang`, `user`, `csrf` (put
`<input type="hidden" name="csrf" value="{{ csrf }}">` in every POST form), `dt` (a date in
Asia/Bangkok) and `verdict_name`/`status_name`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader
from markupsafe import Markup

from matching.reasons import sentence
from review import i18n
from review.auth import LANG_COOKIE, csrf_token, current_user
from review.highlight import highlight

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
_loaders: list[FileSystemLoader] = [FileSystemLoader(str(HERE / "templates"))]
templates.env.loader = ChoiceLoader(_loaders)  # type: ignore[arg-type]
templates.env.autoescape = True
# templates ship with the code: no stat() of every template file on every render (the queue includes
# its row template 50 times per page)
templates.env.auto_reload = False
templates.env.filters["sentence"] = lambda code, lang="th": sentence(code, lang)
templates.env.filters["num"] = i18n.fmt_num
templates.env.globals["highlight"] = highlight


def add_template_dir(path: str | Path) -> None:
    """Let render() find templates in another package's folder (checked after review/templates)."""
    p = str(path)
    if all(lo.searchpath != [p] for lo in _loaders):
        _loaders.append(FileSystemLoader(p))


def lang_of(request: Request) -> str:
    if hasattr(request.state, "lang"):
        return request.state.lang
    u = current_user(request)
    lang = i18n.pick_lang(request.cookies.get(LANG_COOKIE), u.lang if u else None, None,
                          request.app.state.settings.review.language)
    request.state.lang = lang
    return lang


def context(request: Request) -> dict[str, Any]:
    lang = lang_of(request)
    now = datetime.now(UTC)

    def t(key: str, **kw: Any) -> str:
        return i18n.tr(key, lang, **kw)

    return {
        "lang": lang, "t": t, "user": current_user(request), "csrf": csrf_token(request), "now": now,
        "dt": lambda v, time=True: i18n.fmt_dt(v, lang, time),
        "age": lambda v: i18n.fmt_age(v, now, lang),
        "verdict_name": lambda v: i18n.tr(f"verdict.{v}", lang) if v else "—",
        "status_name": lambda v: i18n.tr(f"status.{v}", lang) if v else "—",
        "role_name": lambda v: i18n.tr(f"role.{v}", lang),
        "reason": lambda code: sentence(code, lang),
        "path": request.url.path, "query_string": request.url.query,
    }


def render(request: Request, name: str, ctx: dict[str, Any] | None = None, status_code: int = 200,
           headers: dict[str, str] | None = None):
    c = context(request)
    c.update(ctx or {})
    return templates.TemplateResponse(request, name, c, status_code=status_code, headers=headers)


def svg(markup: str) -> Markup:
    """Mark an SVG built by review/charts.py (which escapes every label) as safe to embed."""
    return Markup(markup)
