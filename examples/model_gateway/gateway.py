"""A model gateway: one restricted model route behind attest.verify, one open route.

Run it (after ``make install``, with attest running, ``make run``)::

    .venv/bin/python examples/model_gateway/gateway.py

Settings come from the environment, read once in ``main``:

- ``ATTEST_URL``: the attest issuer (default ``http://127.0.0.1:8080``); its
  ``/.well-known/jwks.json`` is fetched and cached per ``Cache-Control``.
- ``GATEWAY_AUDIENCE``: the audience this gateway serves (default ``model:fable-5``).
- ``GATEWAY_PUBLIC_URL``: the gateway's external origin, which DPoP proofs name in ``htu``
  (default ``http://127.0.0.1:<port>``).
- ``GATEWAY_PORT``: listen port (default 8090).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import uvicorn
from litestar import Litestar, Request, get, post
from litestar.middleware import DefineMiddleware

from attest.verify import CLAIMS_KEY, AttestMiddleware, RemoteJWKS, Verifier

MODEL = "fable-5"


@dataclass(frozen=True)
class GatewaySettings:
    """Built once from the environment in ``main``; tests build their own."""

    attest_url: str = "http://127.0.0.1:8080"
    audience: str = "model:fable-5"
    port: int = 8090
    public_url: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> GatewaySettings:
        port = int(environ.get("GATEWAY_PORT", "8090"))
        return cls(
            attest_url=environ.get("ATTEST_URL", cls.attest_url).rstrip("/"),
            audience=environ.get("GATEWAY_AUDIENCE", cls.audience),
            port=port,
            public_url=environ.get("GATEWAY_PUBLIC_URL", f"http://127.0.0.1:{port}"),
        )


@get("/v1/models")
async def list_models() -> dict[str, Any]:
    """Open: anyone may see which models exist."""
    return {"models": [{"id": MODEL, "restricted": True}]}


@post(f"/v1/models/{MODEL}/generate", status_code=200)
async def generate(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Restricted: reached only with a valid eligibility token (and DPoP proof if bound)."""
    claims = request.scope["state"][CLAIMS_KEY]
    body = await request.json()
    prompt = str(body.get("prompt", "")) if isinstance(body, dict) else ""
    return {
        "model": MODEL,
        "output": f"[{MODEL}] {prompt[::-1]}",  # a stand-in for the real model
        "subject": claims["sub"],
        "policy": claims["eligibility"]["policy"],
        "bound": "cnf" in claims,
    }


def create_app(settings: GatewaySettings, verifier: Verifier | None = None) -> Litestar:
    """The gateway app; ``verifier`` defaults to one fed by the issuer's JWKS URL."""
    if verifier is None:
        verifier = Verifier(
            issuer=settings.attest_url,
            audience=settings.audience,
            keys=RemoteJWKS(f"{settings.attest_url}/.well-known/jwks.json"),
        )
    guard = DefineMiddleware(
        AttestMiddleware,
        verifier=verifier,
        protect=[f"/v1/models/{MODEL}"],
        public_url=settings.public_url,
    )
    return Litestar(route_handlers=[list_models, generate], middleware=[guard])


def main() -> None:
    """Serve the gateway with uvicorn."""
    settings = GatewaySettings.from_env(dict(os.environ))
    print(f"model gateway on http://127.0.0.1:{settings.port} (issuer {settings.attest_url})")
    uvicorn.run(create_app(settings), host="127.0.0.1", port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
