"""Published keys (JWKS), discovery, and the admin key list."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, JSONBody

from attest.clients.guards import current_client, requires
from attest.errors import InvalidInput, ServiceUnavailable
from attest.http.bodies import Body
from attest.http.context import AppContext, app_context
from attest.keys import lifecycle, repository
from attest.keys.keyring import Keyring
from attest.keys.models import SigningKey
from attest.policy import repository as policies
from attest.settings import HARD_MAX_TOKEN_LIFETIME

__all__ = ["configuration", "jwks", "key_history", "list_keys", "revoke_key", "rotate_keys"]


@get("/.well-known/jwks.json", include_in_schema=True)
async def jwks(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Keys verifiers may need now: pending, active and retiring."""
    ctx = app_context(request)
    rows = await repository.published_keys(ctx.pool)
    body = json.dumps({"keys": [k.jwk() for k in rows]}, separators=(",", ":")).encode()
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
        "key_history_uri": f"{issuer}/v1/keys/history",
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


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _history_view(k: SigningKey) -> dict[str, Any]:
    """A key's public half and validity window: it signed from activated_at to retiring_at
    (or compromised_at), and was published from created_at to retired_at/compromised_at."""
    return {
        "kid": k.kid,
        "alg": k.alg,
        "state": k.state,
        "public_jwk": k.jwk(),
        "created_at": _iso(k.created_at),
        "activated_at": _iso(k.activated_at),
        "retiring_at": _iso(k.retiring_at),
        "retired_at": _iso(k.retired_at),
        "compromised_at": _iso(k.compromised_at),
        # Tokens it signed are trustworthy if issued inside this window (open: still signing).
        "signing_window": {
            "from": _iso(k.activated_at),
            "until": _iso(k.retiring_at or k.compromised_at),
        }
        if k.activated_at is not None
        else None,
    }


@get("/v1/keys", guards=[requires("keys:admin")])
async def list_keys(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Every key with its state and the times of its due transitions (admin)."""
    ctx = app_context(request)
    rows = await repository.list_keys(ctx.pool)
    return {
        "keys": [
            {
                **_history_view(k),
                "activate_after": _iso(k.activate_after),
                "retire_after": _iso(k.retire_after),
                "keystore_ref": k.keystore_ref,
            }
            for k in rows
        ]
    }


@get("/v1/keys/history")
async def key_history(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Public: every key ever used, so old attestations stay verifiable after retirement."""
    ctx = app_context(request)
    rows = await repository.list_keys(ctx.pool)
    return {"keys": [_history_view(r) for r in rows]}


def _keyring(ctx: AppContext) -> Keyring:
    if ctx.keyring is None:
        raise ServiceUnavailable("The keystore is not open yet.")
    return ctx.keyring


@post("/v1/keys/rotate", guards=[requires("keys:admin")], status_code=202)
async def rotate_keys(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Publish the next key as pending; it signs once the pre-publication period is over."""
    ctx = app_context(request)
    keyring = _keyring(ctx)
    policy = lifecycle.KeyPolicy.from_settings(ctx.settings)
    async with ctx.pool.acquire() as conn:
        done = await lifecycle.rotate(
            conn, keyring.keystore, policy, ctx.now(), current_client(request).id, "api"
        )
    return {
        "kid": done.kid,
        "alg": done.alg,
        "state": "pending",
        "activate_after": _iso(done.activate_after),
        "created": done.created,
    }


class RevokeRequest(Body):
    compromised: bool = False


@post("/v1/keys/{kid:str}/revoke", guards=[requires("keys:admin")], status_code=200)
async def revoke_key(
    request: Request[Any, Any, Any], kid: FromPath[str], data: JSONBody[RevokeRequest]
) -> dict[str, Any]:
    """Mark a key compromised: out of JWKS at once; a signing key is replaced immediately."""
    if not data.compromised:
        raise InvalidInput(
            'Only compromise revocation exists: send {"compromised": true}. Rotation '
            "replaces a healthy key safely (POST /v1/keys/rotate).",
            errors=[{"field": "$.compromised", "message": "must be true"}],
        )
    ctx = app_context(request)
    keyring = _keyring(ctx)
    policy = lifecycle.KeyPolicy.from_settings(ctx.settings)
    async with ctx.pool.acquire() as conn:
        done = await lifecycle.revoke_compromised(
            conn, keyring.keystore, policy, ctx.now(), kid, current_client(request).id, "api"
        )
        await ctx.current_signer(conn)
    return {
        "kid": done.kid,
        "state": "compromised",
        "previous_state": done.previous_state,
        "compromised_at": _iso(done.compromised_at),
        "replacement": (
            {"kid": done.replacement, "alg": done.replacement_alg, "state": "active"}
            if done.replacement
            else None
        ),
        "prepublication_skipped": done.prepublication_skipped,
        "note": (
            "The replacement signs now: pre-publication was skipped. Verifiers fetch it on "
            "its unknown kid, and drop the compromised key at their next JWKS refresh."
            if done.prepublication_skipped
            else "The key is out of the JWKS; it was not signing, so no key was promoted."
        ),
    }
