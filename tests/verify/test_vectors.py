"""Conformance vectors as data: all pass, match their generator, and agree with joserfc."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws as jose_jws
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey

from attest.verify import REASON_CODES
from attest.verify._selftest import VECTORS_PATH, load_vectors, run_vectors

GENERATOR = Path(__file__).resolve().parents[1] / "vectors" / "generate_conformance.py"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_vectors()


def test_every_vector_passes(document: dict[str, Any]) -> None:
    results = run_vectors(document)
    assert [r for r in results if not r.passed] == []
    assert len(results) == len(document["vectors"]) >= 60


def test_vectors_cover_every_reason_code(document: dict[str, Any]) -> None:
    expected = {v["expect"] for v in document["vectors"]}
    # key_source_unavailable needs a broken key source, not a token: tested in test_keys.py
    assert expected == (REASON_CODES - {"key_source_unavailable"}) | {"valid"}


def test_committed_file_matches_its_generator(document: dict[str, Any]) -> None:
    spec = importlib.util.spec_from_file_location("generate_conformance", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.build()

    def shape(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [
            (v["name"], v["rule"], v["expect"], v.get("options"), v.get("repeat"), "dpop" in v)
            for v in doc["vectors"]
        ]

    assert shape(fresh) == shape(document)
    assert all(r.passed for r in run_vectors(fresh))


def _import_key(jwk: dict[str, Any]) -> Any:
    return (ECKey if jwk["kty"] == "EC" else OKPKey).import_key(jwk)


def test_valid_vectors_verify_in_joserfc(document: dict[str, Any]) -> None:
    keys = KeySet.import_key_set(document["jwks"])
    valid = [v for v in document["vectors"] if v["expect"] == "valid"]
    assert len(valid) >= 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags EdDSA as deprecated for Ed25519
        for vector in valid:
            token = jose_jwt.decode(vector["token"], keys, algorithms=["ES256", "EdDSA"])
            assert token.header["typ"] == "elig+jwt", vector["name"]
            assert token.claims == vector["claims"], vector["name"]
            if "dpop" not in vector:
                continue
            # The proof verifies with the key in its own header, and ath is the token's hash.
            header = json.loads(base64.urlsafe_b64decode(vector["dpop"].split(".")[0] + "=="))
            holder = _import_key(header["jwk"])
            proof = jose_jws.deserialize_compact(
                vector["dpop"], holder, algorithms=["ES256", "EdDSA"]
            )
            claims = json.loads(proof.payload)
            digest = hashlib.sha256(vector["token"].encode()).digest()
            assert claims["ath"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            assert holder.thumbprint() == vector["claims"]["cnf"]["jkt"]


def test_bad_signature_vectors_fail_in_joserfc(document: dict[str, Any]) -> None:
    keys = KeySet.import_key_set(document["jwks"])
    bad = [v for v in document["vectors"] if v["expect"] == "bad_signature"]
    assert len(bad) >= 4
    for vector in bad:
        with pytest.raises((JoseError, ValueError)):
            jose_jwt.decode(vector["token"], keys, algorithms=["ES256", "EdDSA"])


def test_vectors_ship_inside_the_package() -> None:
    assert VECTORS_PATH.parent.name == "vectors"
    assert VECTORS_PATH.parent.parent == Path(__import__("attest.verify").verify.__file__).parent
