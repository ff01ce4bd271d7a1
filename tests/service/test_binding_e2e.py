"""Holder binding end to end: the live issuer binds a token, attest.verify checks DPoP proofs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from attest_testing.service import token_for
from attest_testing.support import OPERATOR_SCOPES, Actors, LiveServer
from attest_testing.verify import (
    SigningKey,
    make_proof,
    new_ed25519,
    new_es256,
    public_jwk,
    thumbprint,
)

from attest.verify import InvalidToken, RemoteJWKS, Verifier

FABLE = "model:fable-5"
URL = "https://gateway.example/v1/models/fable-5:generate"
GATEWAY = Path(__file__).resolve().parents[2] / "examples" / "model_gateway"


def _verifier(live: LiveServer, audience: str = FABLE) -> Verifier:
    return Verifier(
        issuer=live.settings.issuer,
        audience=audience,
        keys=RemoteJWKS(live.base_url + "/.well-known/jwks.json"),
    )


def _code(verifier: Verifier, token: str, proof: str | None) -> str:
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token, dpop=proof, method="POST", url=URL)
    return info.value.code


def _proof(holder: SigningKey, token: str, **kwargs: Any) -> str:
    return make_proof(holder, token, url=URL, iat=int(time.time()), **kwargs)


@pytest.mark.parametrize("make_holder", [new_es256, new_ed25519], ids=["P-256", "Ed25519"])
def test_issued_bound_token_verifies_only_with_the_holders_fresh_proof(
    live: LiveServer,
    operator: httpx.Client,
    admin: httpx.Client,
    eligible_subject: dict[str, Any],
    make_holder: Any,
) -> None:
    holder: SigningKey = make_holder()
    response = token_for(operator, eligible_subject["id"], FABLE, holder_jwk=public_jwk(holder))
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    verifier = _verifier(live)

    # Without a proof: binding_required.
    assert _code(verifier, token, None) == "binding_required"
    # With the holder's proof: accepted, and the claims name the holder key.
    proof = _proof(holder, token)
    claims = verifier.verify(token, dpop=proof, method="POST", url=URL)
    assert claims["cnf"] == {"jkt": thumbprint(public_jwk(holder))}
    # The same proof again: a replay.
    assert _code(verifier, token, proof) == "dpop_replay"
    # Someone else's key (the token was shared): refused.
    assert _code(verifier, token, _proof(new_es256(), token)) == "dpop_key_mismatch"
    # The holder's key, but a proof made for another request: refused.
    wrong_request = _proof(holder, token, htu="https://gateway.example/v1/other")
    assert _code(verifier, token, wrong_request) == "invalid_dpop_proof"
    # A fresh proof works again.
    verifier.verify(token, dpop=_proof(holder, token), method="POST", url=URL)
    # The attestation record keeps the thumbprint.
    record = admin.get(f"/v1/audit/attestations/{claims['jti']}")
    assert record.status_code == 200, record.text
    assert record.json()["cnf_jkt"] == claims["cnf"]["jkt"]


def test_binding_required_audience_round_trip(
    live: LiveServer, operator: httpx.Client, admin: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    audience = f"model:bound-{int(time.time() * 1000)}"
    put = admin.put(
        f"/v1/audiences/{audience}", json={"policy": "us-nationals-only", "binding_required": True}
    )
    assert put.status_code == 201, put.text
    refused = token_for(operator, eligible_subject["id"], audience)
    assert refused.status_code in (400, 422), refused.text
    assert refused.json()["errors"][0]["field"] == "$.holder_jwk"
    holder = new_es256()
    issued = token_for(operator, eligible_subject["id"], audience, holder_jwk=public_jwk(holder))
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    verifier = _verifier(live, audience)
    assert _code(verifier, token, None) == "binding_required"
    claims = verifier.verify(token, dpop=_proof(holder, token), method="POST", url=URL)
    assert claims["aud"] == audience


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_model_gateway_example_runs_as_documented(
    live: LiveServer, actors: Actors, eligible_subject: dict[str, Any]
) -> None:
    # The README's two commands: start the gateway, run the holder client against it.
    port = _free_port()
    env = {**os.environ, "ATTEST_URL": live.base_url, "GATEWAY_PORT": str(port)}
    gateway = subprocess.Popen(
        [sys.executable, str(GATEWAY / "gateway.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert gateway.poll() is None, gateway.stdout.read() if gateway.stdout else ""
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.1)
        assert httpx.post(base + "/v1/models/fable-5/generate", json={}).status_code == 401
        result = subprocess.run(
            [
                sys.executable,
                str(GATEWAY / "client.py"),
                "--attest",
                live.base_url,
                "--api-key",
                actors.key(*OPERATOR_SCOPES),
                "--subject",
                eligible_subject["id"],
                "--gateway",
                base,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("with proof:    200 ")
        assert '"bound": true' in lines[0] or "'bound': True" in lines[0]
        assert lines[1].startswith("replayed:      401 ")
        assert 'error_description="dpop_replay"' in lines[1]
        assert 'error_description="binding_required"' in lines[2]
    finally:
        gateway.terminate()
        gateway.wait(timeout=10)
