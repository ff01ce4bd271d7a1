"""The whole loop over real HTTP: clients, onboarding, evidence, four-eyes, token, verify."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
from attest_testing.support import US_PASSPORT, LiveServer
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from attest.verify import StaticJWKS, Verifier


def _verifier(live: LiveServer, audience: str = "model:fable-5") -> Verifier:
    jwks = httpx.get(live.base_url + "/.well-known/jwks.json").json()
    return Verifier(issuer=live.settings.issuer, audience=audience, keys=StaticJWKS(jwks))


def test_whole_loop_issues_a_token_that_verifies_offline(
    live: LiveServer,
    operator: httpx.Client,
    reviewer: httpx.Client,
    actors: Any,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    subject = onboard("hr-1234")
    evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=US_PASSPORT)
    assert evidence.status_code == 201
    assert evidence.json()["status"] == "pending_approval"

    # Before the second reviewer approves, the evidence does not count.
    denied = operator.post(
        "/v1/tokens", json={"subject_id": subject["id"], "audience": "model:fable-5"}
    )
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert denied.json()["reasons"]

    approved = reviewer.post(f"/v1/evidence/{evidence.json()['id']}/approvals", json={})
    assert approved.status_code == 200
    assert approved.json()["status"] == "verified"

    issued = operator.post(
        "/v1/tokens", json={"subject_id": subject["id"], "audience": "model:fable-5"}
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert set(body) >= {"token", "expires_at", "jti"}

    claims = _verifier(live).verify(body["token"])
    assert claims["aud"] == "model:fable-5"
    assert claims["iss"] == live.settings.issuer
    assert claims["jti"] == body["jti"]
    assert claims["exp"] - claims["iat"] == 600
    assert claims["eligibility"]["policy"] == "us-nationals-only"
    assert claims["eligibility"]["policy_version"] == 1
    assert claims["eligibility"]["assurance"] == "IAL2"
    # Pairwise: the token's sub is neither the subject id nor the external reference.
    assert claims["sub"] not in (subject["id"], "hr-1234")
    # The token carries no citizenship, name or document data.
    assert "citizenship" not in body["token"]

    # An independent JOSE library accepts the same token with the published keys.
    jwks = httpx.get(live.base_url + "/.well-known/jwks.json").json()
    decoded = jose_jwt.decode(body["token"], KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert decoded.header["typ"] == "elig+jwt"
    assert decoded.header["alg"] == "ES256"
    assert decoded.claims["jti"] == body["jti"]

    auditor = actors.client("audit:read", name="auditor")
    record = auditor.get(f"/v1/audit/attestations/{body['jti']}")
    assert record.status_code == 200
    attestation = record.json()
    assert attestation["token_sha256"] == hashlib.sha256(body["token"].encode()).hexdigest()
    assert attestation["kid"] == decoded.header["kid"]
    assert attestation["policy"]["digest"] == claims["eligibility"]["policy_digest"]


def test_metrics_count_issued_and_denied_tokens(
    live: LiveServer, operator: httpx.Client, eligible_subject: dict[str, Any], onboard: Any
) -> None:
    def counter(name: str) -> float:
        text = httpx.get(live.base_url + "/metrics").text
        for line in text.splitlines():
            if line.startswith(f'{name}_total{{audience="model:mythos-5"}}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    issued, denied = counter("attest_tokens_issued"), counter("attest_tokens_denied")
    ok = operator.post(
        "/v1/tokens", json={"subject_id": eligible_subject["id"], "audience": "model:mythos-5"}
    )
    assert ok.status_code == 201
    no = operator.post(
        "/v1/tokens", json={"subject_id": onboard()["id"], "audience": "model:mythos-5"}
    )
    assert no.status_code == 403
    assert counter("attest_tokens_issued") == issued + 1
    assert counter("attest_tokens_denied") == denied + 1
