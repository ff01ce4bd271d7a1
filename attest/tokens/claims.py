"""Token rules: claims, pairwise subjects, holder keys, token digests. Pure: no I/O."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attest.errors import InvalidHolderKey
from attest.keys.jwk import b64url
from attest.policy.engine import Decision
from attest.verify.contract import TOKEN_TYPE, HolderKeyError, holder_jwk_thumbprint

__all__ = [
    "TOKEN_TYPE",
    "build_claims",
    "holder_thumbprint",
    "new_jti",
    "pairwise_sub",
    "token_sha256",
]

ATTESTATION_TYPE = "attestation+jwt"


def pairwise_sub(key: bytes, subject_id: str, audience: str) -> str:
    """HMAC of subject id and audience: two audiences cannot link one person."""
    mac = hmac.new(key, f"{subject_id}\x00{audience}".encode(), hashlib.sha256).digest()
    return b64url(mac)


def new_jti() -> str:
    return b64url(secrets.token_bytes(16))


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def holder_thumbprint(jwk: Mapping[str, Any]) -> str:
    """Admit a holder's public key (P-256 or Ed25519) and return its RFC 7638 thumbprint,
    with the very check the verifier applies to a DPoP proof's key (attest.verify.contract).
    """
    try:
        return holder_jwk_thumbprint(dict(jwk))
    except HolderKeyError as exc:
        raise InvalidHolderKey(
            "The holder key is not acceptable.",
            errors=[{"field": "$.holder_jwk", "message": str(exc)}],
        ) from None


def build_claims(
    *,
    issuer: str,
    sub: str,
    audience: str,
    now: datetime,
    lifetime: int,
    jti: str,
    decision: Decision,
    cnf_jkt: str | None,
    status_idx: int | None = None,
    status_uri: str | None = None,
) -> dict[str, Any]:
    iat = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "aud": audience,
        "iat": iat,
        "nbf": iat,
        "exp": iat + lifetime,
        "jti": jti,
        "eligibility": {
            "policy": decision.policy,
            "policy_version": decision.policy_version,
            "policy_digest": decision.policy_digest,
            "assurance": decision.assurance,
        },
    }
    if cnf_jkt is not None:
        claims["cnf"] = {"jkt": cnf_jkt}
    if status_uri is not None:
        # draft-ietf-oauth-status-list 6.1: the token's entry in a status list.
        claims["status"] = {"status_list": {"idx": status_idx, "uri": status_uri}}
    return claims
