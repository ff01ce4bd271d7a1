"""Hypothesis on DPoP proofs and the middleware's headers: only InvalidToken codes come out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from attest_testing.verify import (
    AUDIENCE,
    ISSUER,
    NOW,
    Clock,
    Minter,
    good_claims,
    make_proof,
    new_es256,
    public_jwk,
    thumbprint,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.verify import REASON_CODES, AttestMiddleware, InvalidToken, Verifier

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
URL = "https://gateway.example/v1/models/fable-5"
HOLDER = new_es256()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
proof_claims = st.fixed_dictionaries(
    {},
    optional={
        "jti": json_values,
        "htm": st.sampled_from(["POST", "GET"]) | json_values,
        "htu": st.sampled_from([URL, URL + "?q", "https://x/", "::", "http://[::1"]) | json_values,
        "iat": st.integers(min_value=-(2**64), max_value=2**64) | json_values,
        "ath": json_values,
    },
)
proof_headers = st.fixed_dictionaries(
    {},
    optional={
        "typ": st.just("dpop+jwt") | json_values,
        "alg": st.sampled_from(["ES256", "EdDSA", "none"]) | json_values,
        "jwk": st.just(public_jwk(HOLDER)) | json_values,
        "crit": json_values,
    },
)


def _verifier(jwks: dict[str, Any]) -> Verifier:
    return Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=Clock(NOW), cache_size=0)


def _outcome(v: Verifier, token: str, proof: str) -> str:
    try:
        v.verify(token, dpop=proof, method="POST", url=URL)
    except InvalidToken as exc:
        return exc.code
    return "ok"


@FUZZ
@given(header=proof_headers, claims=proof_claims)
def test_signed_proofs_of_any_shape(
    mint: Minter, jwks: dict[str, Any], header: dict[str, Any], claims: dict[str, Any]
) -> None:
    token = mint(good_claims(cnf={"jkt": thumbprint(public_jwk(HOLDER))}))
    # a real signature by the holder over arbitrary header and claims
    proof = make_proof(HOLDER, token, header=header, claims=json.dumps(claims).encode())
    assert _outcome(_verifier(jwks), token, proof) in REASON_CODES


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_arbitrary_proof_text(mint: Minter, jwks: dict[str, Any], text: str) -> None:
    token = mint(good_claims(cnf={"jkt": thumbprint(public_jwk(HOLDER))}))
    assert _outcome(_verifier(jwks), token, text) in REASON_CODES


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@FUZZ
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from([b"authorization", b"Authorization", b"dpop", b"host", b"x"]),
            st.binary(max_size=80),
        ),
        max_size=5,
    ),
    path=st.text(max_size=30),
)
def test_middleware_answers_401_or_passes(
    jwks: dict[str, Any], headers: list[tuple[bytes, bytes]], path: str
) -> None:
    mw = AttestMiddleware(_inner, verifier=_verifier(jwks))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/" + path, "headers": headers}
    asyncio.run(mw(scope, receive, send))
    assert sent[0]["status"] == 401
    body = json.loads(sent[1]["body"])
    assert body["code"] in REASON_CODES | {"missing_token"}
