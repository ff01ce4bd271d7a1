"""Faults under load: a real ``attest serve`` process on a PostgreSQL the test may crash.

These tests take tens of seconds each (a 10 s database outage is 10 s), so ``make test``
skips them and CI runs them once, on their own (``make test-faults``, called by .ci/run):
set ``ATTEST_FAULT_TESTS=1`` to run them. They never touch the shared PostgreSQL: each
starts a cluster of its own (attest_testing.faultpg) and its own server process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from attest_testing.faultpg import FaultCluster


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ATTEST_FAULT_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="fault tests run once per CI: make test-faults")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture
def cluster() -> Iterator[FaultCluster]:
    with FaultCluster() as pg:
        yield pg


@pytest.fixture
def short_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("f")
