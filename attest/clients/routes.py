"""POST /v1/clients: create an API client; its key is shown once."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.params import JSONBody

from attest.clients import repository
from attest.clients.service import ALL_SCOPES, generate_key
from attest.errors import Forbidden, UnprocessableInput
from attest.http.auth import current_client, requires
from attest.http.bodies import Body, Name, TenantName
from attest.http.context import app_context

__all__ = ["create_client"]


class CreateClient(Body):
    name: Name
    scopes: Annotated[list[str], msgspec.Meta(min_length=1, max_length=len(ALL_SCOPES))]
    tenant: TenantName | None = None


@post("/v1/clients", guards=[requires("clients:admin")], status_code=201)
async def create_client(
    request: Request[Any, Any, Any], data: JSONBody[CreateClient]
) -> Response[Any]:
    caller = current_client(request)
    unknown = sorted(set(data.scopes) - set(ALL_SCOPES))
    if unknown:
        raise UnprocessableInput(
            "Unknown scopes.",
            errors=[{"field": "$.scopes", "message": f"unknown scope {s!r}"} for s in unknown],
            known_scopes=list(ALL_SCOPES),
        )
    if len(set(data.scopes)) != len(data.scopes):
        raise UnprocessableInput(
            "Scopes must not repeat.", errors=[{"field": "$.scopes", "message": "duplicate"}]
        )
    tenant = data.tenant or caller.tenant
    if not caller.is_admin:
        if tenant != caller.tenant:
            raise Forbidden("A client creates clients only in its own tenant.")
        excess = sorted(set(data.scopes) - caller.scopes)
        if excess:
            raise Forbidden(f"A client cannot grant scopes it lacks: {', '.join(excess)}.")
    ctx = app_context(request)
    key = generate_key()
    async with ctx.pool.acquire() as conn, conn.transaction():
        client_id = await repository.register_client(
            conn,
            key=key,
            name=data.name,
            tenant=tenant,
            scopes=list(data.scopes),
            is_admin=False,
            created_by=caller.id,
            now=ctx.now(),
            via="api",
        )
    body = {
        "id": str(client_id),
        "name": data.name,
        "scopes": data.scopes,
        "tenant": tenant,
        "key_id": key.key_id,
        "api_key": key.api_key,
    }
    return Response(body, status_code=201, headers={"Cache-Control": "no-store"})
