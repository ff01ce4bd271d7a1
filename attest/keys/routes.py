"""Published keys (JWKS), discovery, and the admin key list."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import asyncpg
from litestar import Request, Response, get

from attest.http.auth import requires
from attest.http.context import app_context
from attest.keys import repository
from attest.policy import repository as policies
from attest.settings import HARD_MAX_TOKEN_LIFETIME

__all__ = ["configuration", "jwks", "list_keys"]


def _jwk(row: asyncpg.Record) -> dict[str, Any]:
    return {**row["public_jwk"], "kid": row["kid"], "alg": row["alg"], "use": "sig"}


@get("/.well-known/jwks.json", include_in_schema=True)
async def jwks(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Keys verifiers may need now: pending, active and retiring."""
    ctx = app_context(request)
    rows = await repository.published_keys(ctx.pool)
    body = json.dumps({"keys": [_jwk(r) for r in rows]}, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "Cache-Control": f"public, max-age={ctx.settings.jwks_max_age}",
        "ETag": etag,
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type="application/jwk-set+json", headers=headers)


@get("/.well-known/attest-configuration")
async def configuration(request: Request[Any, Any, Any]) -> dict[str, Any]:
    ctx = app_context(request)
    issuer = ctx.settings.issuer
    audiences = await policies.list_audiences(ctx.pool)
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/v1/tokens",
        "token_type": "elig+jwt",
        "signing_alg_values_supported": ["ES256", "EdDSA"],
        "max_token_lifetime": HARD_MAX_TOKEN_LIFETIME,
        "jwks_max_age": ctx.settings.jwks_max_age,
        "audiences": [
            {
                "audience": a["audience"],
                "policy": a["policy_name"],
                "token_lifetime": a["token_lifetime"],
                "binding_required": a["binding_required"],
            }
            for a in audiences
        ],
        "audit_endpoint": f"{issuer}/v1/audit/events",
    }


@get("/v1/keys", guards=[requires("keys:admin")])
async def list_keys(request: Request[Any, Any, Any]) -> dict[str, Any]:
    ctx = app_context(request)
    rows = await repository.list_keys(ctx.pool)

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "keys": [
            {
                "kid": r["kid"],
                "alg": r["alg"],
                "state": r["state"],
                "public_jwk": _jwk(r),
                "created_at": iso(r["created_at"]),
                "activated_at": iso(r["activated_at"]),
                "retiring_at": iso(r["retiring_at"]),
                "retired_at": iso(r["retired_at"]),
                "compromised_at": iso(r["compromised_at"]),
            }
            for r in rows
        ]
    }
