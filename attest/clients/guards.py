"""Bearer API-key authentication and per-route scope guards (HTTP side of clients)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from attest.clients.models import Client
from attest.clients.service import ClientService
from attest.errors import InsufficientScope, Unauthenticated

__all__ = ["STATE_KEY", "current_client", "requires"]

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]

#: Where create_app puts the ClientService on the application state (guards cannot use
#: dependency injection, so they read it from there).
STATE_KEY = "client_service"


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Client:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send 'Authorization: Bearer <api key>'.")
    service: ClientService = connection.app.state[STATE_KEY]
    return await service.authenticate(token.strip())


def requires(scope: str) -> Guard:
    """A guard admitting clients whose key holds ``scope``; sets ``state.client``."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        client = await _authenticate(connection)
        if scope not in client.scopes:
            raise InsufficientScope(f"This call needs the scope '{scope}'.", required=scope)
        connection.state.client = client

    return guard


def current_client(connection: ASGIConnection[Any, Any, Any, Any]) -> Client:
    client: Client = connection.state.client
    return client
