"""Wycheproof ECDSA P-256 (P1363) and Ed25519 vectors through attest.verify's signature path.

Each group's public key goes through JWK admission (``parse_jwks``), and each signature
through the check ``Verifier`` applies: a 64-byte JOSE signature, then the admitted key's
``verify``. ``valid`` must pass; ``invalid`` must fail, whatever the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from attest_testing.verify import b64url
from cryptography.exceptions import InvalidSignature

from attest.verify._jwk import VerificationKey, parse_jwks

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "wycheproof"
FILES = {
    "ES256": "ecdsa_secp256r1_sha256_p1363_test.json",
    "EdDSA": "ed25519_test.json",
}


def _cases(alg: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    document = json.loads((VECTORS / FILES[alg]).read_text())
    cases = []
    for group in document["testGroups"]:
        for test in group["tests"]:
            cases.append((f"{alg}-{test['tcId']}", _jwk(group), test))
    return cases


def _jwk(group: dict[str, Any]) -> dict[str, Any]:
    if "publicKeyJwk" in group:
        jwk: dict[str, Any] = group["publicKeyJwk"]
        return jwk
    # a few ECDSA groups give only the point: build the JWK (RFC 7518 6.2.1) from it
    point = group["publicKey"]
    coordinate = {c: bytes.fromhex(point[f"w{c}"]).rjust(32, b"\0")[-32:] for c in "xy"}
    return {"kty": "EC", "crv": "P-256", **{c: b64url(v) for c, v in coordinate.items()}}


def signature_path_accepts(key: VerificationKey, signature: bytes, message: bytes) -> bool:
    """What Verifier._verify does with a decoded signature segment."""
    if len(signature) != 64:  # RFC 7518 3.4 / RFC 8037 3.1
        return False
    try:
        key.verify(signature, message)
    except (InvalidSignature, ValueError, TypeError, OverflowError):
        return False
    return True


@pytest.mark.parametrize("alg", sorted(FILES))
def test_wycheproof(alg: str) -> None:
    cases = _cases(alg)
    assert len(cases) > 100
    keys: dict[str, VerificationKey] = {}
    failures = []
    counts = {"valid": 0, "invalid": 0}
    for name, jwk, test in cases:
        kid = json.dumps(jwk, sort_keys=True)
        if kid not in keys:
            key_set = parse_jwks({"keys": [{**jwk, "kid": "wycheproof"}]})
            assert not key_set.rejected, (name, key_set.rejected)
            keys[kid] = key_set.keys["wycheproof"]
            assert keys[kid].alg == alg
        accepted = signature_path_accepts(
            keys[kid], bytes.fromhex(test["sig"]), bytes.fromhex(test["msg"])
        )
        counts[test["result"]] += 1
        if accepted != (test["result"] == "valid"):
            failures.append((name, test["result"], test["comment"]))
    assert not failures, failures
    assert counts["valid"] > 50
    assert counts["invalid"] > 50
