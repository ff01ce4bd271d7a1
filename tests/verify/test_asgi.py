"""The ASGI middleware, shown working in Litestar, Starlette and FastAPI apps (and bare ASGI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
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
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from litestar import Litestar, get, post
from litestar import Request as LitestarRequest
from litestar.middleware import DefineMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from attest.verify import CLAIMS_KEY, AttestMiddleware, StaticJWKS, Verifier

PUBLIC = "https://gateway.example"
MODEL = "/v1/models/fable-5"


def _claims_of(state: Any) -> dict[str, Any]:
    claims: dict[str, Any] = state[CLAIMS_KEY]
    return claims


def litestar_app(verifier: Verifier) -> Any:
    @get(MODEL)
    async def model(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
        return {"sub": _claims_of(request.scope["state"])["sub"]}

    @post(MODEL, status_code=200)
    async def generate(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
        return {"sub": request.state.attest_claims["sub"]}

    @get("/open")
    async def open_route() -> dict[str, Any]:
        return {"open": True}

    mw = DefineMiddleware(AttestMiddleware, verifier=verifier, protect=["/v1/models"],
                          public_url=PUBLIC)  # fmt: skip
    return Litestar(route_handlers=[model, generate, open_route], middleware=[mw])


def starlette_app(verifier: Verifier) -> Any:
    async def model(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.attest_claims["sub"]})

    async def open_route(request: Request) -> JSONResponse:
        return JSONResponse({"open": True})

    return Starlette(
        routes=[Route(MODEL, model, methods=["GET", "POST"]), Route("/open", open_route)],
        middleware=[
            Middleware(
                AttestMiddleware, verifier=verifier, protect=["/v1/models"], public_url=PUBLIC
            )
        ],
    )


def fastapi_app(verifier: Verifier) -> Any:
    app = FastAPI()

    @app.get(MODEL)
    @app.post(MODEL)
    async def model(request: FastAPIRequest) -> dict[str, Any]:
        return {"sub": request.state.attest_claims["sub"]}

    @app.get("/open")
    async def open_route() -> dict[str, Any]:
        return {"open": True}

    app.add_middleware(
        AttestMiddleware, verifier=verifier, protect=["/v1/models"], public_url=PUBLIC
    )
    return app


FRAMEWORKS: dict[str, Callable[[Verifier], Any]] = {
    "litestar": litestar_app,
    "starlette": starlette_app,
    "fastapi": fastapi_app,
}


@pytest.fixture(params=sorted(FRAMEWORKS))
def client(request: pytest.FixtureRequest, jwks: dict[str, Any], clock: Clock) -> httpx.AsyncClient:
    verifier = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=StaticJWKS(jwks), now=clock)
    app = FRAMEWORKS[request.param](verifier)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def _challenge(response: httpx.Response) -> str:
    return response.headers.get_list("www-authenticate")[0]


async def test_open_route_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/open")
    assert response.status_code == 200
    assert response.json() == {"open": True}


async def test_restricted_route_without_token(client: httpx.AsyncClient) -> None:
    response = await client.get(MODEL)
    assert response.status_code == 401
    assert _challenge(response) == 'Bearer realm="attest", error_description="missing_token"'
    assert response.json() == {"error": "invalid_token", "code": "missing_token"}
    assert response.headers["cache-control"] == "no-store"
    basic = await client.get(MODEL, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
    assert basic.json()["code"] == "missing_token"


async def test_valid_token_reaches_the_route_with_claims(
    client: httpx.AsyncClient, mint: Minter
) -> None:
    response = await client.get(MODEL, headers={"Authorization": f"Bearer {mint()}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": good_claims()["sub"]}


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        (good_claims(now=NOW - 10_000), "expired"),
        (good_claims(aud="model:other"), "wrong_audience"),
        (good_claims(iss="https://attest.example.evil"), "wrong_issuer"),
    ],
)
async def test_refusal_names_the_reason_code(
    client: httpx.AsyncClient, mint: Minter, claims: dict[str, Any], code: str
) -> None:
    response = await client.get(MODEL, headers={"Authorization": f"Bearer {mint(claims)}"})
    assert response.status_code == 401
    expected = f'Bearer realm="attest", error="invalid_token", error_description="{code}"'
    assert _challenge(response) == expected
    assert response.json()["code"] == code
    garbage = await client.get(MODEL, headers={"Authorization": "Bearer not-a-token"})
    assert garbage.json()["code"] == "malformed"


async def test_bound_token_with_dpop(client: httpx.AsyncClient, mint: Minter) -> None:
    holder = new_es256()
    token = mint(good_claims(cnf={"jkt": thumbprint(public_jwk(holder))}))
    url = PUBLIC + MODEL
    proof = make_proof(holder, token, method="POST", url=url)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    ok = await client.post(MODEL + "?stream=1", headers=headers)
    assert ok.status_code == 200, ok.text
    again = await client.post(MODEL, headers=headers)
    assert (again.status_code, again.json()["code"]) == (401, "dpop_replay")
    assert any(c.startswith("DPoP ") for c in again.headers.get_list("www-authenticate"))
    bare = await client.post(MODEL, headers={"Authorization": f"Bearer {token}"})
    assert bare.json()["code"] == "binding_required"
    wrong_method = make_proof(holder, token, method="GET", url=url)
    response = await client.post(
        MODEL, headers={"Authorization": f"Bearer {token}", "DPoP": wrong_method}
    )
    assert response.json()["code"] == "invalid_dpop_proof"


# -- bare ASGI: what frameworks hide ------------------------------------------------------


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": repr(scope["state"][CLAIMS_KEY]).encode()})


async def _call(mw: AttestMiddleware, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"} if scope["type"] == "websocket" else {
            "type": "http.request", "body": b""}  # fmt: skip

    async def send(message: Any) -> None:
        sent.append(message)

    await mw(scope, receive, send)
    return sent


def _scope(path: str, headers: list[tuple[bytes, bytes]], kind: str = "http") -> dict[str, Any]:
    return {"type": kind, "method": "GET", "path": path, "headers": headers, "scheme": "http"}


async def test_bare_asgi_rules(verifier: Verifier, mint: Minter) -> None:
    mw = AttestMiddleware(_inner, verifier=verifier, protect=["/v1/models"])
    auth = [(b"authorization", f"Bearer {mint()}".encode())]
    sent = await _call(mw, _scope(MODEL, auth))
    assert sent[0]["status"] == 200
    # two Authorization headers, or two DPoP headers, are refused
    sent = await _call(mw, _scope(MODEL, auth * 2))
    assert (sent[0]["status"], b"malformed" in sent[1]["body"]) == (401, True)
    holder = new_es256()
    bound = mint(good_claims(cnf={"jkt": thumbprint(public_jwk(holder))}))
    proof = make_proof(holder, bound, method="GET", url="http://testserver" + MODEL)
    dpop = (b"dpop", proof.encode())
    two = [(b"authorization", f"DPoP {bound}".encode()), dpop, dpop]
    sent = await _call(mw, _scope(MODEL, two))
    assert b"invalid_dpop_proof" in sent[1]["body"]
    # without public_url the Host header and scheme rebuild the URL
    one = [*two[:2], (b"host", b"testserver")]
    sent = await _call(mw, _scope(MODEL, one))
    assert sent[0]["status"] == 200, sent
    # a garbage Host header cannot make a URL: refused, not a 500
    bad_host = [*two[:1], (b"dpop", make_proof(holder, bound).encode()), (b"host", b"a b")]
    sent = await _call(mw, _scope(MODEL, bad_host))
    assert b"invalid_dpop_proof" in sent[1]["body"]
    # websocket handshakes are closed with 1008
    sent = await _call(mw, _scope(MODEL, [], kind="websocket"))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "missing_token"}]
    # lifespan and unprotected paths pass straight through
    passed: list[str] = []

    async def record(scope: Any, receive: Any, send: Any) -> None:
        passed.append(scope["type"])

    through = AttestMiddleware(record, verifier=verifier, protect=["/v1/models"])
    await _call(through, {"type": "lifespan"})  # type: ignore[arg-type]
    await _call(through, _scope("/v1/modelsx", []))
    assert passed == ["lifespan", "http"]


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("/v1/models", True),
        ("/v1/models/", True),
        ("/v1/models/fable-5", True),
        ("//v1//models/fable-5", True),
        ("/open/../v1/models/fable-5", True),
        ("/v1/./models", True),
        ("/v1/modelsx", False),
        ("/open", False),
        ("/", False),
    ],
)
def test_prefix_matching(verifier: Verifier, path: str, protected: bool) -> None:
    mw = AttestMiddleware(_inner, verifier=verifier, protect=["/v1/models/"])
    assert mw.protects(path) is protected
    assert AttestMiddleware(_inner, verifier=verifier).protects(path)  # default: everything


def test_configuration_errors(verifier: Verifier) -> None:
    with pytest.raises(ValueError, match="protect"):
        AttestMiddleware(_inner, verifier=verifier, protect=["v1"])
    with pytest.raises(ValueError, match="protect"):
        AttestMiddleware(_inner, verifier=verifier, protect=[])
    with pytest.raises(ValueError, match="public_url"):
        AttestMiddleware(_inner, verifier=verifier, public_url="gateway.example")
    with pytest.raises(ValueError, match="realm"):
        AttestMiddleware(_inner, verifier=verifier, realm='a"b')
