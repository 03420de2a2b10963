"""Who is asking, and may they? Sessions (cookie), personal API tokens (Bearer), roles, CSRF.

Use in any router:

    from review.auth import require_role
    @router.get("/partners")
    def partners(user = Depends(require_role("partner_admin"))): ...

`require_role(*roles)` lets in a logged-in user whose role is one of `roles` (an administrator always
passes). For a state-changing request (POST, PUT, PATCH, DELETE) made with the session cookie it also
checks the CSRF token (form field `csrf` or header `X-CSRF-Token`) and the Origin header, so every
route behind it is CSRF-safe without doing anything more. Requests with `Authorization: Bearer
<personal token>` carry no ambient credentials and need no CSRF token.

An unauthenticated request to a page is sent to /login; to /api/... it gets 401 JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from review.db import ROLES, User

SESSION_COOKIE = "tw_session"
LANG_COOKIE = "tw_lang"
LOGIN_COOKIE = "tw_login"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# what each role may do; `require_role` takes roles, these groups name the usual sets
INTERNAL = ("officer", "investigator")  # see listings, queue, search, sellers, dashboard; export
DECIDERS = ("officer",)                   # decide on listings
PARTNER_ADMINS = ("partner_admin",)       # partner and delivery administration (alerts/)


class LoginRequired(HTTPException):
    def __init__(self) -> None:
        super().__init__(401, "log in first", headers={"WWW-Authenticate": "Bearer"})


class CsrfError(HTTPException):
    def __init__(self, why: str) -> None:
        super().__init__(403, f"CSRF check failed: {why}")


@dataclass
class Auth:
    user: User
    via: str  # "session" or "token"
    csrf: str = ""


def _bearer(request: Request) -> str | None:
    h = request.headers.get("authorization", "")
    if h[:7].lower() == "bearer ":
        return h[7:].strip()
    return None


def resolve(request: Request) -> Auth | None:
    """The request's user (cached on request.state), from a Bearer token or the session cookie."""
    if hasattr(request.state, "auth"):
        return request.state.auth
    db = request.app.state.appdb
    auth: Auth | None = None
    tok = _bearer(request)
    if tok is not None:
        u = db.token_user(tok)
        auth = Auth(u, "token") if u else None
        if auth is None:
            request.state.auth = None
            raise LoginRequired()
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            s = db.session(cookie)
            if s:
                auth = Auth(s[0], "session", s[1])
    request.state.auth = auth
    return auth


def current_user(request: Request) -> User | None:
    """The logged-in user or None (never raises for a missing login)."""
    try:
        a = resolve(request)
    except LoginRequired:
        return None
    return a.user if a else None


def _origin_ok(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None  # a "null" origin (sandboxed frame, file:) is refused
    o = urlsplit(origin)
    host = request.headers.get("host", "")
    return o.netloc == host


async def check_csrf(request: Request, expected: str) -> None:
    if not _origin_ok(request):
        raise CsrfError("the request comes from another site")
    got = request.headers.get("x-csrf-token")
    if not got:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette caches it: the route's Form() parameters still work
            v = form.get("csrf")
            got = v if isinstance(v, str) else None
    if not got or not expected or not hmac.compare_digest(got, expected):
        raise CsrfError("missing or wrong token")


def require_role(*roles: str) -> Callable[..., Any]:
    """A FastAPI dependency: the current User if their role is one of `roles` (admin always passes);
    401 without a login, 403 with the wrong role or a failed CSRF check."""
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown role(s) {bad} (roles: {', '.join(ROLES)})")
    allowed = frozenset(roles) | {"admin"}

    async def dependency(request: Request) -> User:
        auth = resolve(request)
        if auth is None:
            raise LoginRequired()
        if auth.user.role not in allowed:
            raise HTTPException(403, f"this needs the role {' or '.join(sorted(allowed))}")
        if request.method in UNSAFE and auth.via == "session":
            await check_csrf(request, auth.csrf)
        return auth.user

    dependency.__name__ = f"require_role_{'_'.join(sorted(allowed))}"
    return dependency


def csrf_token(request: Request) -> str:
    a = getattr(request.state, "auth", None)
    return a.csrf if a else ""


# ---- the login form's CSRF token (before there is a session): double submit, signed -------------
def login_token(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"login:" + nonce.encode(), hashlib.sha256).hexdigest()


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def safe_next(url: str | None) -> str:
    """Only a path on this site (no scheme, no //host) may follow a login: no open redirect."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return "/"
    return url
