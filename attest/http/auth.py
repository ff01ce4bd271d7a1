"""Bearer API-key authentication and per-route scope guards.

The API's route decorators (:func:`get`, :func:`post`, :func:`put`, :func:`delete`) are
Litestar's, except that they hand the guards the route handler itself: Litestar copies the
handler for every guard call (so a guard cannot change it), a copy of some forty attributes
that cost more than the guard's work, and these guards never look at the handler.

The guard knows only the :class:`Authenticator` protocol; create_app puts the clients
service, which implements it, on the application state (guards cannot use dependency
injection), so this module sits below the domains.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from litestar.connection import ASGIConnection
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler

from attest.errors import InsufficientScope, Unauthenticated
from attest.principal import Client

__all__ = [
    "STATE_KEY",
    "Authenticator",
    "current_client",
    "delete",
    "get",
    "guard_scope",
    "post",
    "put",
    "requires",
]

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]

#: Where create_app puts the authenticator (the clients service) on the application state.
STATE_KEY = "client_service"


class Authenticator(Protocol):
    async def authenticate(self, api_key: str) -> Client:
        """The client a presented key belongs to, or Unauthenticated."""

    async def refused_scope(self, client: Client, scope: str) -> None:
        """Count (and record) a request refused for a missing scope."""


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Client:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send 'Authorization: Bearer <api key>'.")
    service: Authenticator = connection.app.state[STATE_KEY]
    return await service.authenticate(token.strip())


def requires(scope: str) -> Guard:
    """A guard admitting clients whose key holds ``scope``; sets ``state.client``."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        client = await _authenticate(connection)
        if scope not in client.scopes:
            service: Authenticator = connection.app.state[STATE_KEY]
            await service.refused_scope(client, scope)
            raise InsufficientScope(f"This call needs the scope '{scope}'.", required=scope)
        connection.state.client = client

    # Read by attest.http.openapi: the document names each operation's scope from its guard.
    guard.scope = scope  # type: ignore[attr-defined]
    return guard


def guard_scope(guard: object) -> str | None:
    """The scope a :func:`requires` guard admits, or None for any other guard."""
    scope = getattr(guard, "scope", None)
    return scope if isinstance(scope, str) else None


def current_client(connection: ASGIConnection[Any, Any, Any, Any]) -> Client:
    client: Client = connection.state.client
    return client


class _Handler(HTTPRouteHandler):
    async def authorize_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        for guard in self.resolve_guards():
            await guard(connection, self)  # type: ignore[misc]


def get(path: str, **kwargs: Any) -> HTTPRouteHandler:
    return _Handler(path, http_method=HttpMethod.GET, **kwargs)


def post(path: str, **kwargs: Any) -> HTTPRouteHandler:
    return _Handler(path, http_method=HttpMethod.POST, **kwargs)


def put(path: str, **kwargs: Any) -> HTTPRouteHandler:
    return _Handler(path, http_method=HttpMethod.PUT, **kwargs)


def delete(path: str, **kwargs: Any) -> HTTPRouteHandler:
    return _Handler(path, http_method=HttpMethod.DELETE, **kwargs)
