"""Fixtures for the service tests: an operator and a reviewer in the test's tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from attest_testing.support import OPERATOR_SCOPES, US_PASSPORT, Actors


@pytest.fixture
def operator(actors: Actors) -> httpx.Client:
    return actors.client(*OPERATOR_SCOPES, name="operator")


@pytest.fixture
def reviewer(actors: Actors) -> httpx.Client:
    return actors.client("evidence:review", "subjects:read", name="reviewer")


@pytest.fixture
def onboard(operator: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Onboard a subject; returns its JSON."""
    counter = iter(range(1_000_000))

    def make(external_ref: str | None = None) -> dict[str, Any]:
        ref = external_ref or f"hr-{next(counter)}"
        response = operator.post("/v1/subjects", json={"external_ref": ref})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return make


@pytest.fixture
def eligible_subject(
    operator: httpx.Client, reviewer: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """A US citizen with IAL2 evidence approved by a second reviewer."""
    subject = onboard()
    evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=US_PASSPORT)
    assert evidence.status_code == 201, evidence.text
    assert evidence.json()["status"] == "pending_approval"
    approved = reviewer.post(f"/v1/evidence/{evidence.json()['id']}/approvals", json={})
    assert approved.status_code == 200, approved.text
    return subject
