"""Bearer API-key authentication and per-route scope guards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from attest.clients import repository
from attest.clients.service import Client, parse_key, secret_matches
from attest.errors import InsufficientScope, Unauthenticated
from attest.http.context import app_context

__all__ = ["current_client", "requires"]

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Client:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send 'Authorization: Bearer <api key>'.")
    parsed = parse_key(token.strip())
    if parsed is None:
        raise Unauthenticated("The API key is malformed.")
    ctx = app_context(connection)
    found = await repository.find_by_key_id(ctx.pool, parsed.key_id)
    stored = found[1] if found else None
    if not secret_matches(parsed.secret, stored) or found is None:
        raise Unauthenticated("The API key is not valid.")
    return found[0]


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
