"""What every console page shares: the session guard, the CSRF check, rendering, the
security headers, and the error pages.

A page module (see pages.py, reviews.py) is a set of Litestar handlers that

- take ``guards=[signed_in]`` or ``guards=[page_scope("evidence:review")]``;
- receive services by name, as the API routes do (``evidence_service:
  NamedDependency[EvidenceService]``), and act as :func:`principal` (the signed-in client);
- answer ``render(request, "name.html", ...)``, a template extending ``base.html``;
- put ``{% include "_csrf.html" %}`` in every form: a POST without the session's token is
  refused with a 403 page before the handler runs (:func:`check_csrf`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect, Template
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from attest.console.service import Session, SessionService
from attest.errors import AttestError
from attest.principal import Client

__all__ = [
    "BASE",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "STATE_KEY",
    "ConsoleConfig",
    "CsrfRefused",
    "MissingScope",
    "SignInRequired",
    "check_csrf",
    "environment",
    "error_handlers",
    "page_scope",
    "principal",
    "render",
    "security_headers",
    "session_of",
    "signed_in",
]

log = logging.getLogger(__name__)

#: Where every console URL starts, and the cookies' Path.
BASE = "/console"
#: The session cookie: a random id naming a server-side session.
SESSION_COOKIE = "attest_console"
#: Before sign-in: a random token the sign-in form must repeat (login CSRF).
CSRF_COOKIE = "attest_console_csrf"
#: The form field every console form carries.
CSRF_FIELD = "csrf_token"
#: Where create_app puts the session service (guards cannot use dependency injection).
STATE_KEY = "console_sessions"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
_REPLACED = frozenset(name for name, _ in _HEADERS)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """What the console's handlers need from the settings (a router dependency)."""

    #: Cookies carry Secure when the issuer is https.
    secure_cookies: bool
    #: Session lifetime (seconds): the cookie's Max-Age.
    session_ttl: int


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page."""


class CsrfRefused(AttestError):
    code = "csrf-refused"
    status = 403
    title = "Form refused"


class MissingScope(AttestError):
    code = "insufficient-scope"
    status = 403
    title = "Not allowed with this key"


def environment() -> Environment:
    """The console's Jinja environment: every template autoescaped, whatever its name;
    an undefined name is an error, not an empty string."""
    return Environment(
        loader=PackageLoader("attest.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# -- sessions and guards -------------------------------------------------------------------


async def _resume(connection: ASGIConnection[Any, Any, Any, Any]) -> Session | None:
    cookie = connection.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    sessions: SessionService = connection.app.state[STATE_KEY]
    return await sessions.resume(cookie)


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: a live session (else to the sign-in page); sets the session and its client
    (``state.client``, the same Principal the API's guards set)."""
    session = await _resume(connection)
    if session is None:
        raise SignInRequired
    connection.state.console_session = session
    connection.state.client = session.client


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def page_scope(scope: str) -> Guard:
    """Guard: a live session whose client holds ``scope`` (else a 403 page naming it)."""

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        await signed_in(connection, handler)
        if scope not in principal(connection).scopes:
            raise MissingScope(f"This page needs the scope '{scope}', which this key lacks.")

    return guard


def session_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Session | None:
    found: Session | None = getattr(connection.state, "console_session", None)
    return found


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Client:
    """The signed-in client: every service call of a page acts as it."""
    client: Client = connection.state.client
    return client


async def check_csrf(request: Request[Any, Any, Any]) -> None:
    """Before every console handler: a POST must carry the session's CSRF token (before
    sign-in, the token of the CSRF cookie), compared in constant time; else a 403 page."""
    if request.method in _SAFE_METHODS:
        return
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    session = session_of(request)
    expected = session.csrf_token if session else request.cookies.get(CSRF_COOKIE)
    if not isinstance(sent, str) or not expected:
        raise CsrfRefused("The form carried no valid security token; reload the page and retry.")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("The form carried no valid security token; reload the page and retry.")


# -- rendering -------------------------------------------------------------------------------


def _context(
    connection: ASGIConnection[Any, Any, Any, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    session = session_of(connection)
    return {
        "session": session,
        "principal": session.client if session else None,
        "csrf_token": session.csrf_token if session else extra.pop("csrf_token", ""),
        "base": BASE,
        **extra,
    }


def render(
    request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any
) -> Template:
    """A console page: ``template`` (extending base.html) with the session's context."""
    return Template(
        template_name=template,
        context=_context(request, context),
        status_code=status_code,
        media_type="text/html",
    )


def _page(
    request: Request[Any, Any, Any], template: str, status_code: int, **context: Any
) -> Response[Any]:
    """A page rendered directly (the error handlers' answers)."""
    engine = request.app.template_engine
    assert engine is not None  # noqa: S101 - create_app configures the console's engine
    html = engine.get_template(template).render(**_context(request, context))
    return Response(html, status_code=status_code, media_type="text/html")


def _to_sign_in(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    response: Response[Any] = Redirect(f"{BASE}/sign-in", status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        response.delete_cookie(SESSION_COOKIE, path=BASE)
    return response


def _attest_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, AttestError)  # noqa: S101 - registered for AttestError only
    headers = {}
    retry = getattr(exc, "retry_after", None)
    if isinstance(retry, int):
        headers["Retry-After"] = str(retry)
    response = _page(
        request, "error.html", exc.status, title=exc.title, detail=str(exc), status=exc.status
    )
    response.headers.update(headers)
    return response


def _http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    status = exc.status_code if 400 <= exc.status_code < 500 else 500
    title = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}.get(
        status, "Request refused" if status < 500 else "Server error"
    )
    return _page(request, "error.html", status, title=title, detail=title + ".", status=status)


def error_handlers() -> dict[type[Exception] | int, Any]:
    """Console errors are pages, not problem documents."""
    return {
        SignInRequired: _to_sign_in,
        AttestError: _attest_error,
        HTTPException: _http_error,
    }


# -- headers -----------------------------------------------------------------------------------


def security_headers(app: ASGIApp) -> ASGIApp:
    """Middleware for every console response (pages, errors, the stylesheet): a strict
    Content-Security-Policy (no inline script or style), no sniffing, no framing, no
    referrer, no caching."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in _REPLACED
                ]
                message["headers"] = [*kept, *_HEADERS]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
