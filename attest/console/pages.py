"""The console's front door: home, sign in with an API key, sign out."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from attest.console.service import SessionService, new_csrf_token
from attest.console.web import (
    BASE,
    CSRF_COOKIE,
    SESSION_COOKIE,
    ConsoleConfig,
    principal,
    render,
    session_of,
    signed_in,
)
from attest.errors import RateLimited, Unauthenticated

__all__ = ["HANDLERS"]


@get("/", guards=[signed_in], name="console-home")
async def home(request: Request[Any, Any, Any]) -> Template:
    client = principal(request)
    return render(request, "home.html", scopes=sorted(client.scopes))


def _sign_in_form(
    console: ConsoleConfig, request: Request[Any, Any, Any], *, status: int, error: str | None
) -> Template:
    """The sign-in form with a fresh login-CSRF token, also set as a cookie."""
    token = new_csrf_token()
    page = render(request, "sign_in.html", status_code=status, csrf_token=token, error=error)
    page.set_cookie(
        CSRF_COOKIE,
        token,
        path=BASE,
        httponly=True,
        samesite="strict",
        secure=console.secure_cookies,
        max_age=3600,
    )
    return page


@get("/sign-in", name="console-sign-in")
async def sign_in_form(
    request: Request[Any, Any, Any], console: NamedDependency[ConsoleConfig]
) -> Template:
    return _sign_in_form(console, request, status=200, error=None)


@post("/sign-in", status_code=303)
async def sign_in(
    request: Request[Any, Any, Any],
    console: NamedDependency[ConsoleConfig],
    console_sessions: NamedDependency[SessionService],
) -> Response[Any]:
    """Exchange an API key for a session: the key is checked by the clients service (the
    same rules, throttling and security events as the API) and never kept."""
    form = await request.form()
    api_key = form.get("api_key")
    try:
        started = await console_sessions.sign_in(
            api_key.strip() if isinstance(api_key, str) else ""
        )
    except Unauthenticated:
        return _sign_in_form(console, request, status=401, error="This API key was not accepted.")
    except RateLimited:
        return _sign_in_form(
            console, request, status=429, error="Too many attempts; wait a minute and retry."
        )
    response: Response[Any] = Redirect(BASE, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        started.cookie,
        path=BASE,
        httponly=True,
        samesite="strict",
        secure=console.secure_cookies,
        max_age=console.session_ttl,
    )
    response.delete_cookie(CSRF_COOKIE, path=BASE)
    return response


@post("/sign-out", guards=[signed_in], status_code=303)
async def sign_out(
    request: Request[Any, Any, Any], console_sessions: NamedDependency[SessionService]
) -> Response[Any]:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and session_of(request) is not None:
        await console_sessions.sign_out(cookie)
    response: Response[Any] = Redirect(BASE + "/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=BASE)
    return response


HANDLERS = [home, sign_in_form, sign_in, sign_out]
