"""POST /v1/tokens (issue, or deny with reasons) and the attestation behind a token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from attest.http.auth import current_client, get, post, requires
from attest.http.bodies import Body, Ref, TenantName
from attest.tokens.models import IssueRequest
from attest.tokens.service import TokenService
from attest.tokens.views import attestation_record

__all__ = ["issue_token", "read_attestation", "revoke_token"]


class TokenRequest(Body):
    audience: Ref
    subject_id: str | None = None
    external_ref: Ref | None = None
    tenant: TenantName | None = None
    holder_jwk: dict[str, Any] | None = None


@post("/v1/tokens", guards=[requires("tokens:issue")], status_code=201)
async def issue_token(
    request: Request[Any, Any, Any],
    data: JSONBody[TokenRequest],
) -> Response[Any]:
    # The busiest write: the service and the request's one reading of the clock come off
    # the application state instead of being injected (two injected dependencies cost a
    # task group per request in Litestar).
    state = request.app.state
    token_service: TokenService = state["token_service"]
    now: datetime = state["clock"]()
    issued = await token_service.issue(
        current_client(request),
        IssueRequest(
            audience=data.audience,
            subject_id=data.subject_id,
            external_ref=data.external_ref,
            tenant=data.tenant,
            holder_jwk=data.holder_jwk,
        ),
        now,
    )
    body = {
        "token": issued.token,
        "expires_at": issued.expires_at.isoformat().replace("+00:00", "Z"),
        "jti": issued.jti,
    }
    return Response(body, status_code=201, headers={"Cache-Control": "no-store"})


class TokenRevocation(Body):
    #: Why; kept out of the audit trail (free text), which records only whether one was given.
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None


@post("/v1/tokens/{jti:str}/revocations", guards=[requires("tokens:revoke")], status_code=201)
async def revoke_token(
    request: Request[Any, Any, Any],
    jti: FromPath[str],
    token_service: NamedDependency[TokenService],
    now: NamedDependency[datetime],
    data: JSONBody[TokenRevocation | None] = None,
) -> dict[str, Any]:
    """Revoke one issued token: its status-list entry becomes INVALID."""
    revoked = await token_service.revoke(
        current_client(request), jti, reason_given=bool(data and data.reason), now=now
    )
    return {
        "jti": revoked.jti,
        "status": "revoked",
        "revoked_at": revoked.revoked_at.isoformat(),
        "changed": revoked.changed,
    }


@get("/v1/audit/attestations/{jti:str}", guards=[requires("audit:read")])
async def read_attestation(
    request: Request[Any, Any, Any],
    jti: FromPath[str],
    token_service: NamedDependency[TokenService],
) -> dict[str, Any]:
    found = await token_service.attestation(current_client(request), jti)
    return attestation_record(found)
