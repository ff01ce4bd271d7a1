"""A test identity provider: an ES256 key, its JWKS and OIDC4IDA assertions."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "https://idp.example"


def _b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()


class TestIdp:
    """Signs assertions; ``jwks`` publishes its public key under ``kid``."""

    __test__ = False  # not a test class

    def __init__(self, kid: str = "idp-1", issuer: str = ISSUER) -> None:
        self.kid = kid
        self.issuer = issuer
        self.key = ec.generate_private_key(ec.SECP256R1())

    @property
    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x), "y": _b64(numbers.y)}
        return {"keys": [{**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}]}

    def claims(
        self,
        *,
        audience: str,
        now: datetime,
        framework: str = "de_aml",
        verified: datetime | None = None,
        nationalities: list[str] | None = None,
        lifetime: int = 300,
        **extra: Any,
    ) -> dict[str, Any]:
        stamp = int(now.timestamp())
        return {
            "iss": self.issuer,
            "sub": "user-4711",
            "aud": audience,
            "iat": stamp,
            "exp": stamp + lifetime,
            "jti": uuid.uuid4().hex,
            "verified_claims": {
                "verification": {
                    "trust_framework": framework,
                    "time": (verified or now - timedelta(days=10)).isoformat(),
                    "evidence": [{"type": "document"}],
                },
                "claims": {
                    "given_name": "Erika",
                    "nationalities": nationalities or ["DEU"],
                    "address": {"country": "DE"},
                },
            },
            **extra,
        }

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        header = {"kid": self.kid, "typ": "JWT", **headers}
        return jwt.encode(claims, self.key, algorithm="ES256", headers=header)
