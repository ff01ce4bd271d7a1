"""API clients: create (its key shown once), list, show, revoke, rotate the key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from attest.clients.models import ALL_SCOPES, ClientRecord
from attest.clients.service import MAX_GRACE_SECONDS, ClientService
from attest.http.auth import current_client, get, post, requires
from attest.http.bodies import Body, Name, TenantName

__all__ = ["create_client", "list_clients", "read_client", "revoke_client", "rotate_client_key"]

NO_STORE = {"Cache-Control": "no-store"}


class CreateClient(Body):
    name: Name
    scopes: Annotated[list[str], msgspec.Meta(min_length=1, max_length=len(ALL_SCOPES))]
    tenant: TenantName | None = None
    expires_at: datetime | None = None


class RevokeClient(Body):
    pass


class RotateKey(Body):
    grace_seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_GRACE_SECONDS)] = 0


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def client_view(record: ClientRecord) -> dict[str, Any]:
    """A client as shown: its key id, never a key or a digest."""
    return {
        "id": str(record.id),
        "name": record.name,
        "tenant": record.tenant,
        "scopes": record.scopes,
        "admin": record.is_admin,
        "key_id": record.key_id,
        "created_at": _time(record.created_at),
        "created_by": str(record.created_by) if record.created_by else None,
        "expires_at": _time(record.expires_at),
        "revoked_at": _time(record.disabled_at),
        "revoked_by": str(record.disabled_by) if record.disabled_by else None,
        "status": "revoked" if record.disabled_at else "active",
    }


@post("/v1/clients", guards=[requires("clients:admin")], status_code=201)
async def create_client(
    request: Request[Any, Any, Any],
    data: JSONBody[CreateClient],
    client_service: NamedDependency[ClientService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    created = await client_service.create(
        current_client(request),
        name=data.name,
        scopes=data.scopes,
        tenant=data.tenant,
        now=now,
        expires_at=data.expires_at,
    )
    body = {
        "id": str(created.id),
        "name": created.name,
        "scopes": created.scopes,
        "tenant": created.tenant,
        "key_id": created.key.key_id,
        "expires_at": _time(created.expires_at),
        "api_key": created.key.api_key,
    }
    return Response(body, status_code=201, headers=NO_STORE)


@get("/v1/clients", guards=[requires("clients:admin")])
async def list_clients(
    request: Request[Any, Any, Any], client_service: NamedDependency[ClientService]
) -> dict[str, Any]:
    """The clients of the caller's tenant (admin: every tenant), never their keys."""
    records = await client_service.listing(current_client(request))
    return {"clients": [client_view(r) for r in records]}


@get("/v1/clients/{client_id:str}", guards=[requires("clients:admin")])
async def read_client(
    request: Request[Any, Any, Any],
    client_id: FromPath[str],
    client_service: NamedDependency[ClientService],
) -> dict[str, Any]:
    return client_view(await client_service.get(current_client(request), client_id))


@post(
    "/v1/clients/{client_id:str}/revocations", guards=[requires("clients:admin")], status_code=201
)
async def revoke_client(
    request: Request[Any, Any, Any],
    client_id: FromPath[str],
    client_service: NamedDependency[ClientService],
    now: NamedDependency[datetime],
    data: JSONBody[RevokeClient | None] = None,
) -> Response[Any]:
    """Disable a client: its keys are refused from the next request on, on every instance."""
    revoked = await client_service.revoke(current_client(request), client_id, now=now)
    return Response(client_view(revoked), status_code=201)


@post("/v1/clients/{client_id:str}/keys", guards=[requires("clients:admin")], status_code=201)
async def rotate_client_key(
    request: Request[Any, Any, Any],
    client_id: FromPath[str],
    data: JSONBody[RotateKey],
    client_service: NamedDependency[ClientService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    """A new key for the client, shown once; the previous key works until the grace ends."""
    rotated = await client_service.rotate(
        current_client(request), client_id, grace_seconds=data.grace_seconds, now=now
    )
    body = {
        **client_view(rotated.client),
        "previous_key_id": rotated.previous_key_id,
        "previous_key_not_after": _time(rotated.previous_not_after),
        "api_key": rotated.key.api_key,
    }
    return Response(body, status_code=201, headers=NO_STORE)
