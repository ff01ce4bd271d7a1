"""Public endpoints: JWKS, discovery, health, readiness, OpenAPI, metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from attest_testing.support import LiveServer

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture
def public(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url) as client:
        yield client


def test_jwks_caching_headers_and_304(public: httpx.Client) -> None:
    response = public.get("/.well-known/jwks.json")
    assert response.status_code == 200
    cache = response.headers["cache-control"]
    match = re.search(r"max-age=(\d+)", cache)
    assert match
    assert int(match[1]) > 0
    etag = response.headers["etag"]
    assert etag
    again = public.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    stale = public.get("/.well-known/jwks.json", headers={"If-None-Match": '"nope"'})
    assert stale.status_code == 200
    assert stale.json() == response.json()


def test_jwks_has_only_public_members(public: httpx.Client) -> None:
    keys = public.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["kty"] in ("EC", "OKP")
        assert key["alg"] in ("ES256", "EdDSA")
        assert key["kid"]
        assert key.get("use", "sig") == "sig"


def test_configuration(public: httpx.Client, live: LiveServer) -> None:
    response = public.get("/.well-known/attest-configuration")
    assert response.status_code == 200
    body = response.json()
    assert body["issuer"] == live.settings.issuer
    assert body["jwks_uri"] == live.settings.issuer + "/.well-known/jwks.json"
    assert "ES256" in body["signing_alg_values_supported"]
    audiences = {a["audience"]: a for a in body["audiences"]}
    for demo in ("model:fable-5", "model:mythos-5"):
        assert audiences[demo]["policy"] == "us-nationals-only"
        assert 0 < audiences[demo]["token_lifetime"] <= 3600


def test_health_and_readiness(public: httpx.Client) -> None:
    assert public.get("/healthz").status_code == 200
    ready = public.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]
    assert all(body["checks"].values())


def test_openapi_schema(public: httpx.Client) -> None:
    # /schema serves Litestar's UI; the OpenAPI document itself is JSON under it.
    response = public.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "json" in response.headers["content-type"]
    schema = response.json()
    assert "/v1/tokens" in schema["paths"]
    assert "/v1/subjects" in schema["paths"]


def test_schema_root_is_served(public: httpx.Client) -> None:
    assert public.get("/schema").status_code == 200


def test_metrics(public: httpx.Client) -> None:
    response = public.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE " in response.text


def test_public_endpoints_need_no_key_but_api_does(public: httpx.Client) -> None:
    for path in ("/.well-known/jwks.json", "/.well-known/attest-configuration", "/healthz"):
        assert public.get(path).status_code == 200
    assert public.get("/v1/policies/us-nationals-only").status_code == 401
