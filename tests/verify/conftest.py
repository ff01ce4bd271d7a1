"""Fixtures for verifier tests (helpers live in attest_testing.verify)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from attest_testing.verify import (
    AUDIENCE,
    DROP,
    ISSUER,
    Clock,
    JWKSServer,
    Minter,
    SigningKey,
    new_ed25519,
    new_es256,
)

from attest.verify import StaticJWKS, Verifier


@pytest.fixture(scope="session")
def es_key() -> SigningKey:
    return new_es256()


@pytest.fixture(scope="session")
def ed_key() -> SigningKey:
    return new_ed25519()


@pytest.fixture(scope="session")
def mint(es_key: SigningKey, ed_key: SigningKey) -> Minter:
    return Minter(es_key, ed_key)


@pytest.fixture(scope="session")
def drop() -> object:
    """Sentinel: pass as a header override to remove that header."""
    return DROP


@pytest.fixture(scope="session")
def jwks(es_key: SigningKey, ed_key: SigningKey) -> dict[str, Any]:
    return {"keys": [es_key.jwk, ed_key.jwk]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(jwks: dict[str, Any], clock: Clock) -> Verifier:
    return Verifier(issuer=ISSUER, audience=AUDIENCE, keys=StaticJWKS(jwks), now=clock)


@pytest.fixture
def server() -> Iterator[JWKSServer]:
    srv = JWKSServer()
    yield srv
    srv.close()
