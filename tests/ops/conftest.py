"""Fixtures for operational tests: fresh databases on the test server, CLI subprocesses."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
from attest_testing.support import execute, with_database


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """An empty database of its own on the same server as the session database."""
    name = f"attest_ops_{secrets.token_hex(5)}"
    asyncio.run(execute(database_url, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(database_url, name)
    finally:
        asyncio.run(execute(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
