"""Fixtures for operational tests: fresh databases on the test server, CLI subprocesses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from attest_testing.postgres import database


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """An empty database of its own on the same server as the session database."""
    with database(database_url, "attest_ops") as url:
        yield url
