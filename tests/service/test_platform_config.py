"""Policies and audiences are platform configuration (issue 12 item 3): only an admin client
writes them, whatever scopes a tenant client holds, and every tenant's auditors can read
their audit events."""

from __future__ import annotations

import uuid

import httpx
from attest_testing.service import AuditTrail, assert_problem
from attest_testing.support import Actors

CITIZENS = {
    "description": "US citizens only (test)",
    "min_assurance": "IAL2",
    "rule": {"attribute": "us_person_status", "any_of": ["us_citizen"]},
}
PLATFORM_CHANGES = {"type": "audience.updated", "platform": "true", "limit": 1000}


def test_a_tenant_client_cannot_rebind_an_audience(
    actors: Actors, admin: httpx.Client, audit_trail: AuditTrail
) -> None:
    writer = actors.client("audiences:write", "audiences:read", "policies:write")
    before = admin.get("/v1/audiences/model:fable-5").json()
    mark = audit_trail.mark()
    body = assert_problem(
        writer.put(
            "/v1/audiences/model:fable-5", json={"policy": "us-persons", "token_lifetime": 3600}
        ),
        403,
        "forbidden",
    )
    assert body["reason"] == "admin_required"
    assert admin.get("/v1/audiences/model:fable-5").json() == before
    assert audit_trail.since(mark, type="audience.updated") == []


def test_a_tenant_client_cannot_publish_a_policy(actors: Actors, admin: httpx.Client) -> None:
    writer = actors.client("policies:write", "policies:read")
    name = f"tenant-{uuid.uuid4().hex[:8]}"
    body = assert_problem(writer.put(f"/v1/policies/{name}", json=CITIZENS), 403, "forbidden")
    assert body["reason"] == "admin_required"
    assert_problem(admin.get(f"/v1/policies/{name}"), 404)


def test_every_tenant_auditor_sees_platform_changes(
    actors: Actors, admin: httpx.Client, tenant: str
) -> None:
    auditor = actors.client("audit:read")
    other = actors.client("audit:read", tenant=f"{tenant}-b")
    audience = f"model:platform-{uuid.uuid4().hex[:8]}"
    assert admin.put(f"/v1/audiences/{audience}", json={"policy": "us-persons"}).status_code == 201
    for reader in (auditor, other):
        seen = reader.get(
            "/v1/audit/events",
            params={"type": "audience.updated", "platform": "true", "limit": 1000},
        )
        assert seen.status_code == 200, seen.text
        mine = [e for e in seen.json()["events"] if e["data"]["audience"] == audience]
        assert len(mine) == 1
        assert mine[0]["tenant"] is None
    # Without asking, a tenant's listing holds its own tenant's events only.
    plain = auditor.get("/v1/audit/events", params={"limit": 1000}).json()["events"]
    assert all(e["tenant"] == tenant for e in plain)
