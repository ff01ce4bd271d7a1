"""Shared fixtures: a real PostgreSQL, and a real attest server on a loopback port.

Database: ``ATTEST_TEST_DATABASE_URL`` when set (a fresh database is created on that server
for the run and dropped after), otherwise an embedded PostgreSQL started for the run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

SERVER_EXTRA = True
try:
    import httpx
    from attest_testing.service import AuditTrail
    from attest_testing.support import (
        Actors,
        Clock,
        LiveServer,
        execute,
        make_settings,
        start_server,
        with_database,
    )
except ImportError:  # the verifier-only environment has none of these
    SERVER_EXTRA = False


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a fresh, empty database for this test run."""
    if not SERVER_EXTRA:
        pytest.skip("server extra not installed")
    base = os.environ.get("ATTEST_TEST_DATABASE_URL")
    embedded = None
    if not base:
        from attest.db.embedded import EmbeddedPostgres

        # Short path: PostgreSQL's socket path must stay under ~100 bytes.
        data_dir = Path(tempfile.mkdtemp(prefix="attest-pg-"))
        embedded = EmbeddedPostgres(data_dir)
        base = embedded.start()
    name = f"attest_test_{secrets.token_hex(6)}"
    asyncio.run(execute(base, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(base, name)
    finally:
        asyncio.run(execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if embedded is not None:
            embedded.stop()


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
