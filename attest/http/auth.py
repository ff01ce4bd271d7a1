"""Bearer API-key authentication and per-route scope guards.

The guard knows only the :class:`Authenticator` protocol; create_app puts the clients
service, which implements it, on the application state (guards cannot use dependency
injection), so this module sits below the domains.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from attest.errors import InsufficientScope, Unauthenticated
from attest.principal import Client

__all__ = ["STATE_KEY", "Authenticator", "current_client", "guard_scope", "requires"]

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
