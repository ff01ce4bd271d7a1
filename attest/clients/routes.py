"""POST /v1/clients: create an API client; its key is shown once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from attest.clients.models import ALL_SCOPES
from attest.clients.service import ClientService
from attest.http.auth import current_client, requires
from attest.http.bodies import Body, Name, TenantName

__all__ = ["create_client"]


class CreateClient(Body):
    name: Name
    scopes: Annotated[list[str], msgspec.Meta(min_length=1, max_length=len(ALL_SCOPES))]
    tenant: TenantName | None = None


@post("/v1/clients", guards=[requires("clients:admin")], status_code=201)
async def create_client(
    request: Request[Any, Any, Any],
    data: JSONBody[CreateClient],
    client_service: NamedDependency[ClientService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    created = await client_service.create(
        current_client(request), name=data.name, scopes=data.scopes, tenant=data.tenant, now=now
    )
    body = {
        "id": str(created.id),
        "name": created.name,
        "scopes": created.scopes,
        "tenant": created.tenant,
        "key_id": created.key.key_id,
        "api_key": created.key.api_key,
    }
    return Response(body, status_code=201, headers={"Cache-Control": "no-store"})
