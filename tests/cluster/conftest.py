"""Fixtures for instances sharing one database: a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from attest_testing.postgres import database


@pytest.fixture
def cluster_db(database_url: str) -> Iterator[str]:
    with database(database_url, "attest_cluster") as url:
        yield url
