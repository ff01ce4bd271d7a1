"""Published keys (JWKS), discovery, and the admin key list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response.base import ASGIResponse

from attest.errors import InvalidInput
from attest.http.auth import current_client, get, post, requires
from attest.http.bodies import Body
from attest.http.ready import ReadyAnswers, if_none_match, not_modified
from attest.keys.models import SigningKey
from attest.keys.service import AudienceDirectory, KeyService, LogDirectory

#: RFC 7517 8.5.
JWKS_MEDIA_TYPE = "application/jwk-set+json"

__all__ = [
    "JWKS_MEDIA_TYPE",
    "configuration",
    "jwks",
    "key_history",
    "list_keys",
    "revoke_key",
    "rotate_keys",
]


#: The ready 200 answer of the JWKS, remade when the document changes.
_JWKS_ANSWERS = ReadyAnswers(JWKS_MEDIA_TYPE, limit=4)


@get("/.well-known/jwks.json", include_in_schema=True)
async def jwks(request: Request[Any, Any, Any]) -> ASGIResponse:
    """Keys verifiers may need now: pending, active and retiring."""
    # The busiest public read: ready bytes in a ready ASGI answer, the service read off the
    # application state instead of being injected, no Response conversion per request.
    key_service: KeyService = request.app.state["key_service"]
    document = key_service.ready_jwks() or await key_service.jwks()
    if document.etag in if_none_match(request.scope):
        return not_modified(document.headers)
    return _JWKS_ANSWERS.answer(None, document, document.body, document.headers)


@get("/.well-known/attest-configuration")
async def configuration(
    key_service: NamedDependency[KeyService],
    audience_directory: NamedDependency[AudienceDirectory],
    log_directory: NamedDependency[LogDirectory],
) -> dict[str, Any]:
    keys = key_service.discovery()
    audit_endpoint = keys.pop("audit_endpoint")
    # The published member order: the key part, the audiences, then the audit endpoint.
    return {
        **keys,
        "audiences": await audience_directory.list_audiences(),
        "audit_endpoint": audit_endpoint,
        "log": log_directory.published(),
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
async def list_keys(key_service: NamedDependency[KeyService]) -> dict[str, Any]:
    """Every key with its state and the times of its due transitions (admin)."""
    rows = await key_service.keys()
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
async def key_history(
    key_service: NamedDependency[KeyService], log_directory: NamedDependency[LogDirectory]
) -> dict[str, Any]:
    """Public: every key ever used, so old attestations stay verifiable after retirement,
    and the transparency log's keys (C2SP vkeys), so old checkpoints do too."""
    return {
        "keys": [_history_view(k) for k in await key_service.history()],
        "log_keys": await log_directory.key_history(),
    }


@post("/v1/keys/rotate", guards=[requires("keys:admin")], status_code=202)
async def rotate_keys(
    request: Request[Any, Any, Any],
    key_service: NamedDependency[KeyService],
    now: NamedDependency[datetime],
) -> dict[str, Any]:
    """Publish the next key as pending; it signs once the pre-publication period is over."""
    done = await key_service.rotate(current_client(request).id, now)
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
    request: Request[Any, Any, Any],
    kid: FromPath[str],
    data: JSONBody[RevokeRequest],
    key_service: NamedDependency[KeyService],
    now: NamedDependency[datetime],
) -> dict[str, Any]:
    """Mark a key compromised: out of JWKS at once; a signing key is replaced immediately."""
    if not data.compromised:
        raise InvalidInput(
            'Only compromise revocation exists: send {"compromised": true}. Rotation '
            "replaces a healthy key safely (POST /v1/keys/rotate).",
            errors=[{"field": "$.compromised", "message": "must be true"}],
        )
    done = await key_service.revoke_compromised(kid, current_client(request).id, now)
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
