"""POST /v1/tokens: issuance, denial with reasons, audiences, pairwise sub, revocation, binding."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from attest_testing.service import (
    LPR_CARD,
    approved_subject,
    assert_problem,
    b64url,
    event_types,
    events,
    rfc7638,
    token_for,
    unique,
    verifier,
)
from attest_testing.support import Actors, LiveServer
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FABLE = "model:fable-5"


def _audience(admin: httpx.Client, policy: str, **extra: Any) -> str:
    name = f"model:test-{uuid.uuid4()}"
    response = admin.put(f"/v1/audiences/{name}", json={"policy": policy, **extra})
    assert response.status_code == 201, response.text
    return name


def _p256_jwk() -> tuple[dict[str, str], ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    return jwk, key


def test_eligible_subject_gets_a_verifiable_token(
    live: LiveServer, operator: httpx.Client, admin: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    before = live.clock()  # the server's injected clock, which stamps iat
    response = token_for(operator, eligible_subject["id"], FABLE)
    assert response.status_code == 201, response.text
    assert response.headers.get("cache-control") == "no-store"
    body = response.json()
    assert set(body) >= {"token", "expires_at", "jti"}
    claims = verifier(live, FABLE).verify(body["token"])
    assert claims["jti"] == body["jti"]
    assert claims["aud"] == FABLE
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert int(expires.timestamp()) == claims["exp"]
    assert claims["iat"] >= int(before.timestamp()) - 1
    assert claims["nbf"] == claims["iat"]
    assert 0 < claims["exp"] - claims["iat"] <= 600
    assert set(claims) <= {
        "iss",
        "sub",
        "aud",
        "iat",
        "nbf",
        "exp",
        "jti",
        "eligibility",
        "cnf",
        "status",
    }
    issued = events(admin, subject_id=eligible_subject["id"], type="token.issued")
    assert [e["data"]["jti"] for e in issued] == [body["jti"]]
    # Each token has its own jti.
    assert token_for(operator, eligible_subject["id"], FABLE).json()["jti"] != body["jti"]


def test_token_by_external_ref(operator: httpx.Client, eligible_subject: dict[str, Any]) -> None:
    response = operator.post(
        "/v1/tokens", json={"external_ref": eligible_subject["external_ref"], "audience": FABLE}
    )
    assert response.status_code == 201, response.text
    assert_problem(
        operator.post("/v1/tokens", json={"external_ref": unique("nobody"), "audience": FABLE}),
        404,
    )


def test_denial_is_a_403_problem_with_reasons_and_is_recorded(
    operator: httpx.Client, admin: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    subject = onboard()
    response = token_for(operator, subject["id"], FABLE)
    body = assert_problem(response, 403, "not-eligible")
    assert isinstance(body["reasons"], list)
    assert body["reasons"]
    assert all(isinstance(r, str) for r in body["reasons"])
    assert "token" not in body
    assert "attribute_missing" in [r["code"] for r in body["reason_details"]]
    denied = events(admin, subject_id=subject["id"], type="token.denied")
    assert len(denied) == 1
    assert denied[0]["data"]["audience"] == FABLE
    assert denied[0]["data"]["policy"] == "us-nationals-only"
    assert "attribute_missing" in denied[0]["data"]["reasons"]
    assert "token.issued" not in event_types(admin, subject["id"])


def test_unregistered_audience_is_404(
    operator: httpx.Client, admin: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    body = assert_problem(
        token_for(operator, eligible_subject["id"], f"model:unknown-{uuid.uuid4()}"),
        404,
        "unknown-audience",
    )
    assert body["detail"]
    assert "token.issued" not in event_types(admin, eligible_subject["id"])


@pytest.mark.parametrize("which", ["both", "neither"])
def test_subject_named_by_exactly_one_field(
    operator: httpx.Client, admin: httpx.Client, eligible_subject: dict[str, Any], which: str
) -> None:
    request: dict[str, Any] = {"audience": FABLE}
    if which == "both":
        request |= {
            "subject_id": eligible_subject["id"],
            "external_ref": eligible_subject["external_ref"],
        }
    assert_problem(operator.post("/v1/tokens", json=request), 400, "invalid-request")
    types = event_types(admin, eligible_subject["id"])
    assert "token.issued" not in types
    assert "token.denied" not in types


def test_lpr_is_denied_for_us_nationals_only_but_eligible_for_us_persons(
    live: LiveServer,
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    subject = approved_subject(operator, reviewer, onboard, LPR_CARD)
    body = assert_problem(token_for(operator, subject["id"], FABLE), 403, "not-eligible")
    assert body["policy"] == "us-nationals-only"
    assert "attribute_missing" in [r["code"] for r in body["reason_details"]]

    audience = _audience(admin, "us-persons")
    issued = token_for(operator, subject["id"], audience)
    assert issued.status_code == 201, issued.text
    claims = verifier(live, audience).verify(issued.json()["token"])
    assert claims["eligibility"]["policy"] == "us-persons"
    assert claims["aud"] == audience
    # The binding is readable and listed in the discovery document.
    read = admin.get(f"/v1/audiences/{audience}")
    assert read.status_code == 200
    assert read.json()["policy"] == "us-persons"
    configuration = httpx.get(live.base_url + "/.well-known/attest-configuration").json()
    assert {"audience": audience, "policy": "us-persons"}.items() <= next(
        a for a in configuration["audiences"] if a["audience"] == audience
    ).items()


def test_audience_lifetime_is_honoured(
    live: LiveServer, operator: httpx.Client, admin: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    audience = _audience(admin, "us-nationals-only", token_lifetime=120)
    token = token_for(operator, eligible_subject["id"], audience).json()["token"]
    claims = verifier(live, audience).verify(token)
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize("lifetime", [0, 9, 3601, -5, 1.5, [600]])
def test_audience_lifetime_out_of_bounds(admin: httpx.Client, lifetime: Any) -> None:
    response = admin.put(
        f"/v1/audiences/model:test-{uuid.uuid4()}",
        json={"policy": "us-persons", "token_lifetime": lifetime},
    )
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


def test_audience_with_unknown_policy_is_422(admin: httpx.Client) -> None:
    body = assert_problem(
        admin.put(f"/v1/audiences/model:test-{uuid.uuid4()}", json={"policy": unique("nope")}),
        422,
    )
    assert body["errors"][0]["field"] == "$.policy"


def test_pairwise_sub(
    live: LiveServer, operator: httpx.Client, admin: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    other = _audience(admin, "us-nationals-only")
    sid = eligible_subject["id"]
    first = verifier(live, FABLE).verify(token_for(operator, sid, FABLE).json()["token"])
    second = verifier(live, FABLE).verify(token_for(operator, sid, FABLE).json()["token"])
    elsewhere = verifier(live, other).verify(token_for(operator, sid, other).json()["token"])
    assert first["sub"] == second["sub"]
    assert first["sub"] != elsewhere["sub"]
    assert sid not in (first["sub"], elsewhere["sub"])


def test_two_subjects_have_different_subs(
    live: LiveServer,
    operator: httpx.Client,
    reviewer: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
    eligible_subject: dict[str, Any],
) -> None:
    from attest_testing.support import US_PASSPORT

    another = approved_subject(operator, reviewer, onboard, US_PASSPORT)
    a = verifier(live, FABLE).verify(
        token_for(operator, eligible_subject["id"], FABLE).json()["token"]
    )
    b = verifier(live, FABLE).verify(token_for(operator, another["id"], FABLE).json()["token"])
    assert a["sub"] != b["sub"]


def test_revoked_subject_is_denied(
    actors: Actors, operator: httpx.Client, admin: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    sid = eligible_subject["id"]
    assert token_for(operator, sid, FABLE).status_code == 201
    revoker = actors.client("subjects:revoke")
    assert revoker.post(f"/v1/subjects/{sid}/revocations", json={}).status_code == 201
    body = assert_problem(token_for(operator, sid, FABLE), 403, "not-eligible")
    assert "subject_revoked" in [r["code"] for r in body["reason_details"]]
    denied = events(admin, subject_id=sid, type="token.denied")
    assert "subject_revoked" in denied[-1]["data"]["reasons"]


def test_expired_evidence_is_denied(
    live: LiveServer, operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    sid = eligible_subject["id"]
    assert token_for(operator, sid, FABLE).status_code == 201
    live.clock.advance(days=400)
    body = assert_problem(token_for(operator, sid, FABLE), 403, "not-eligible")
    assert "evidence_expired" in [r["code"] for r in body["reason_details"]]
    assert operator.get(f"/v1/subjects/{sid}").json()["attributes"] == {}


def test_holder_jwk_binds_the_token(
    live: LiveServer, operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    jwk, _ = _p256_jwk()
    response = token_for(operator, eligible_subject["id"], FABLE, holder_jwk=jwk)
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": rfc7638(jwk)}
    # An unbound token has no cnf.
    plain = token_for(operator, eligible_subject["id"], FABLE).json()["token"]
    assert "cnf" not in jwt.decode(plain, options={"verify_signature": False})
    del live


def test_ed25519_holder_jwk_is_accepted(
    operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    response = token_for(operator, eligible_subject["id"], FABLE, holder_jwk=jwk)
    assert response.status_code == 201, response.text
    import jwt

    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == rfc7638(jwk)


def _bad_jwks() -> list[dict[str, Any]]:
    jwk, key = _p256_jwk()
    d = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    return [
        {**jwk, "d": d},
        {"kty": "RSA", "n": b64url(b"\x01" * 256), "e": "AQAB"},
        {"kty": "oct", "k": b64url(b"0" * 32)},
        {"kty": "EC", "crv": "P-384", "x": jwk["x"], "y": jwk["y"]},
        {**jwk, "x": jwk["y"]},  # not on the curve
        {**jwk, "x": jwk["x"] + "="},
        {**jwk, "x": 5},
        {**jwk, "use": "enc"},
        {"kty": "EC", "crv": "P-256"},
        {},
    ]


@pytest.mark.parametrize("index", range(len(_bad_jwks())))
def test_bad_holder_jwk_is_400(
    operator: httpx.Client, admin: httpx.Client, eligible_subject: dict[str, Any], index: int
) -> None:
    jwk = _bad_jwks()[index]
    body = assert_problem(
        token_for(operator, eligible_subject["id"], FABLE, holder_jwk=jwk),
        400,
        "invalid-holder-key",
    )
    assert body["errors"][0]["field"] == "$.holder_jwk"
    assert "token.issued" not in event_types(admin, eligible_subject["id"])


def test_binding_required_audience(
    live: LiveServer, operator: httpx.Client, admin: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    audience = _audience(admin, "us-nationals-only", binding_required=True)
    body = assert_problem(token_for(operator, eligible_subject["id"], audience), 422)
    assert body["errors"][0]["field"] == "$.holder_jwk"
    jwk, _ = _p256_jwk()
    bound = token_for(operator, eligible_subject["id"], audience, holder_jwk=jwk)
    assert bound.status_code == 201, bound.text
    import jwt

    claims = jwt.decode(bound.json()["token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == rfc7638(jwk)
    types = event_types(admin, eligible_subject["id"])
    assert types.count("token.issued") == 1
    del live
