"""Token rules: claims, pairwise subjects, holder keys, token digests. Pure: no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from attest.errors import InvalidHolderKey
from attest.keys.jwk import b64url, thumbprint
from attest.policy.engine import Decision

__all__ = [
    "TOKEN_TYPE",
    "build_claims",
    "holder_thumbprint",
    "new_jti",
    "pairwise_sub",
    "token_sha256",
]

TOKEN_TYPE = "elig+jwt"  # noqa: S105 - a media type, not a secret
ATTESTATION_TYPE = "attestation+jwt"
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def pairwise_sub(key: bytes, subject_id: str, audience: str) -> str:
    """HMAC of subject id and audience: two audiences cannot link one person."""
    mac = hmac.new(key, f"{subject_id}\x00{audience}".encode(), hashlib.sha256).digest()
    return b64url(mac)


def new_jti() -> str:
    return b64url(secrets.token_bytes(16))


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _b64_decode(value: object, length: int, field: str) -> bytes:
    if not isinstance(value, str) or not value or "=" in value:
        raise ValueError(f"{field} must be unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        raise ValueError(f"{field} must be unpadded base64url") from None
    if len(raw) != length or b64url(raw) != value:
        raise ValueError(f"{field} must encode {length} bytes")
    return raw


def _check_holder_jwk(jwk: Mapping[str, Any]) -> str:
    if _PRIVATE_MEMBERS & set(jwk):
        raise ValueError("holder_jwk must be a public key: it has private members")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "EC" and crv == "P-256":
        x = _b64_decode(jwk.get("x"), 32, "x")
        y = _b64_decode(jwk.get("y"), 32, "y")
        # Loading checks that the point is on the curve.
        ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    elif kty == "OKP" and crv == "Ed25519":
        ed25519.Ed25519PublicKey.from_public_bytes(_b64_decode(jwk.get("x"), 32, "x"))
    else:
        raise ValueError("holder_jwk must be an EC P-256 or OKP Ed25519 public key")
    if jwk.get("use") not in (None, "sig"):
        raise ValueError("holder_jwk must be a signing key")
    return thumbprint(dict(jwk))


def holder_thumbprint(jwk: Mapping[str, Any]) -> str:
    """Validate a holder's public key (P-256 or Ed25519) and return its RFC 7638 thumbprint."""
    try:
        return _check_holder_jwk(jwk)
    except ValueError as exc:
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
    return claims
