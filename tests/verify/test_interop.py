"""Cross-checks with independent JOSE libraries: joserfc and PyJWT agree with attest.verify."""

from __future__ import annotations

import warnings
from typing import Any

import jwt as pyjwt
import pytest
from attest_testing.verify import AUDIENCE, ISSUER, NOW, Minter, SigningKey, good_claims, thumbprint
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet, OKPKey

from attest.verify import InvalidToken, Verifier


def _pem(key: SigningKey) -> bytes:
    return key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize("keyname", ["es", "ed"])
def test_our_tokens_verify_in_joserfc(mint: Minter, jwks: dict[str, Any], keyname: str) -> None:
    key: SigningKey = getattr(mint, keyname)
    token = mint(key=key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags EdDSA as deprecated for Ed25519
        decoded = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[key.alg])
    assert decoded.header["typ"] == "elig+jwt"
    assert decoded.claims == good_claims()


@pytest.mark.parametrize("keyname", ["es", "ed"])
def test_joserfc_tokens_verify_in_attest(mint: Minter, verifier: Verifier, keyname: str) -> None:
    key: SigningKey = getattr(mint, keyname)
    jose_key = (ECKey if key.alg == "ES256" else OKPKey).import_key(_pem(key))
    assert thumbprint(key.jwk) == jose_key.thumbprint()  # our kid is the RFC 7638 thumbprint
    header = {"alg": key.alg, "typ": "elig+jwt", "kid": key.kid}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = jose_jwt.encode(header, good_claims(), jose_key, algorithms=[key.alg])
    assert verifier.verify(token) == good_claims()
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token[:-2] + ("AA" if token[-2:] != "AA" else "BA"))
    assert info.value.code in {"bad_signature", "malformed"}


@pytest.mark.parametrize("keyname", ["es", "ed"])
def test_pyjwt_agrees(mint: Minter, verifier: Verifier, keyname: str) -> None:
    key: SigningKey = getattr(mint, keyname)
    token = pyjwt.encode(
        good_claims(), _pem(key), algorithm=key.alg, headers={"typ": "elig+jwt", "kid": key.kid}
    )
    assert verifier.verify(token) == good_claims()
    decoded = pyjwt.decode(
        mint(key=key),
        pyjwt.PyJWK(key.jwk).key,
        algorithms=[key.alg],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert decoded["iat"] == NOW
