"""Public JWKs of our signing keys and their RFC 7638 thumbprints."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attest.verify.contract import jwk_thumbprint

__all__ = ["b64url", "public_jwk", "thumbprint"]

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The public JWK (RFC 7517/7518/8037) of a P-256 or Ed25519 key, without kid/alg."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("only P-256 EC keys are supported")  # noqa: TRY004
        numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members only.

    The token contract's function (:func:`attest.verify.contract.jwk_thumbprint`), so a kid
    made here is the thumbprint the verifier computes.
    """
    return jwk_thumbprint(jwk)
