"""Shared fixtures: a real PostgreSQL, and a real attest server on a loopback port.

Database: ``ATTEST_TEST_DATABASE_URL`` when set (a fresh database is created on that server
for the run and dropped after), otherwise an embedded PostgreSQL started for the run. Under
pytest-xdist each worker has its own database and server (see attest_testing.postgres).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

SERVER_EXTRA = True
try:
    import httpx
    from attest_testing.service import AuditTrail
    from attest_testing.support import (
        Actors,
        Clock,
        LiveServer,
        make_settings,
        start_server,
    )
except ImportError:  # the verifier-only environment has none of these
    SERVER_EXTRA = False


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a fresh, empty database for this test run (one per xdist worker)."""
    if not SERVER_EXTRA:
        pytest.skip("server extra not installed")
    from attest_testing.postgres import database, embedded_cluster

    with contextlib.ExitStack() as stack:
        base = os.environ.get("ATTEST_TEST_DATABASE_URL") or stack.enter_context(embedded_cluster())
        yield stack.enter_context(database(base, "attest_test"))


@pytest.fixture(scope="session")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One attest server for the session, on a fresh database, with an adjustable clock."""
    settings = make_settings(database_url, tmp_path_factory.mktemp("attest"))
    server = start_server(settings, Clock())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def audit_trail(live: LiveServer) -> Iterator[AuditTrail]:
    """The session server's whole audit trail, read forward from watermarks (``mark()``)."""
    with live.client(live.admin_key) as admin:
        yield AuditTrail(admin)


@pytest.fixture(autouse=True)
def _reset_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "live" in request.fixturenames:
        request.getfixturevalue("live").clock.offset = timedelta()


@pytest.fixture
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(live.admin_key) as client:
        yield client


@pytest.fixture
def tenant() -> str:
    """A tenant of its own for each test, so tests never see each other's subjects."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def actors(live: LiveServer, admin: httpx.Client, tenant: str) -> Iterator[Actors]:
    made = Actors(live, admin, tenant)
    yield made
    made.close()
