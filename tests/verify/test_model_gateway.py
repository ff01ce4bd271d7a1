"""examples/model_gateway: the open route, the restricted route, and a DPoP-bound client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from attest_testing.gateway import load
from attest_testing.verify import AUDIENCE, ISSUER, NOW, Clock, Minter, good_claims, thumbprint

from attest.verify import StaticJWKS, Verifier

PUBLIC = "http://gateway.test"
GENERATE = "/v1/models/fable-5/generate"


@pytest.fixture
def gateway(jwks: dict[str, Any], clock: Clock) -> httpx.AsyncClient:
    module = load("gateway")
    verifier = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=StaticJWKS(jwks), now=clock)
    settings = module.GatewaySettings(attest_url=ISSUER, audience=AUDIENCE, public_url=PUBLIC)
    app = module.create_app(settings, verifier)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)


async def test_open_and_restricted_routes(gateway: httpx.AsyncClient, mint: Minter) -> None:
    assert (await gateway.get("/v1/models")).json()["models"][0]["id"] == "fable-5"
    refused = await gateway.post(GENERATE, json={"prompt": "hi"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "missing_token"
    ok = await gateway.post(
        GENERATE, json={"prompt": "abc"}, headers={"Authorization": f"Bearer {mint()}"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "model": "fable-5",
        "output": "[fable-5] cba",
        "subject": good_claims()["sub"],
        "policy": "us-nationals-only",
        "bound": False,
    }


async def test_bound_client_with_the_example_holder(
    gateway: httpx.AsyncClient, mint: Minter
) -> None:
    holder = load("client").Holder()
    token = mint(good_claims(cnf={"jkt": thumbprint(holder.jwk)}))
    proof = holder.proof(token, "POST", PUBLIC + GENERATE, now=NOW)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    ok = await gateway.post(GENERATE, json={"prompt": "x"}, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["bound"] is True
    replay = await gateway.post(GENERATE, json={"prompt": "x"}, headers=headers)
    assert replay.status_code == 401
    assert 'error_description="dpop_replay"' in replay.headers["www-authenticate"]


def test_settings_from_environment() -> None:
    module = load("gateway")
    settings = module.GatewaySettings.from_env(
        {"ATTEST_URL": "https://attest.example/", "GATEWAY_PORT": "9000"}
    )
    assert settings.attest_url == "https://attest.example"
    assert settings.public_url == "http://127.0.0.1:9000"
    assert settings.audience == "model:fable-5"
