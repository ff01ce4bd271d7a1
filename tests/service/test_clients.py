"""API client management (issue 12 items 1 and 2): four-eyes across related clients, list and
show without keys, revocation, key rotation with grace, expiry, the subset rule, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from attest_testing.service import AuditTrail, assert_problem
from attest_testing.support import US_PASSPORT, Actors, LiveServer

ATTEST = str(Path(sys.executable).with_name("attest"))
SUBMITTER = (
    "clients:admin",
    "subjects:write",
    "subjects:read",
    "evidence:write",
    "evidence:review",
)


def _create(creator: httpx.Client, tenant: str, *scopes: str, **extra: Any) -> dict[str, Any]:
    response = creator.post(
        "/v1/clients", json={"name": "made", "scopes": list(scopes), "tenant": tenant, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _pending(submitter: httpx.Client) -> str:
    subject = submitter.post("/v1/subjects", json={"external_ref": "four-eyes"})
    assert subject.status_code in (200, 201), subject.text
    evidence = submitter.post(f"/v1/subjects/{subject.json()['id']}/evidence", json=US_PASSPORT)
    assert evidence.json()["status"] == "pending_approval", evidence.text
    evidence_id: str = evidence.json()["id"]
    return evidence_id


def _refused_as_related(approver: httpx.Client, evidence_id: str) -> None:
    body = assert_problem(
        approver.post(f"/v1/evidence/{evidence_id}/approvals", json={}), 403, "four-eyes"
    )
    assert body["reason"] == "related_client"
    assert "related" in body["detail"]


def test_a_client_created_by_the_submitter_cannot_approve(
    live: LiveServer, actors: Actors, tenant: str
) -> None:
    submitter = actors.client(*SUBMITTER, name="submitter")
    made = _create(submitter, tenant, "evidence:review", "subjects:read")
    with live.client(made["api_key"]) as second:
        _refused_as_related(second, _pending(submitter))


def test_the_creator_cannot_approve_what_its_client_submitted(
    live: LiveServer, actors: Actors, tenant: str
) -> None:
    creator = actors.client(*SUBMITTER, name="creator")
    made = _create(creator, tenant, "subjects:write", "subjects:read", "evidence:write")
    with live.client(made["api_key"]) as submitter:
        _refused_as_related(creator, _pending(submitter))


def test_relation_through_other_clients_counts(
    live: LiveServer, actors: Actors, tenant: str
) -> None:
    submitter = actors.client(*SUBMITTER, name="submitter")
    middle = _create(submitter, tenant, "clients:admin", "evidence:review", "subjects:read")
    with live.client(middle["api_key"]) as middle_client:
        last = _create(middle_client, tenant, "evidence:review", "subjects:read")
    with live.client(last["api_key"]) as approver:
        _refused_as_related(approver, _pending(submitter))


def test_rotating_a_key_relates_the_clients(
    live: LiveServer, actors: Actors, tenant: str, reviewer: httpx.Client
) -> None:
    # Both made by the admin: unrelated, until one rotates the other's key (and holds it).
    rotator = actors.client(*SUBMITTER, name="rotator")
    target = _create(actors.admin, tenant, "subjects:write", "subjects:read", "evidence:write")
    rotated = rotator.post(f"/v1/clients/{target['id']}/keys", json={"grace_seconds": 0})
    assert rotated.status_code == 201, rotated.text
    with live.client(rotated.json()["api_key"]) as submitter:
        evidence_id = _pending(submitter)
        _refused_as_related(rotator, evidence_id)
        # A reviewer the admin made is unrelated to both: four-eyes holds and it approves.
        approved = reviewer.post(f"/v1/evidence/{evidence_id}/approvals", json={})
        assert approved.status_code == 200, approved.text


def test_list_and_show_never_carry_keys(
    actors: Actors, tenant: str, admin: httpx.Client, live: LiveServer
) -> None:
    manager = actors.client("clients:admin", "subjects:read", name="manager")
    made = _create(manager, tenant, "subjects:read")
    other = _create(admin, f"{tenant}-other", "subjects:read")
    listed = manager.get("/v1/clients")
    assert listed.status_code == 200, listed.text
    ids = {c["id"] for c in listed.json()["clients"]}
    assert made["id"] in ids
    assert other["id"] not in ids  # another tenant's client
    assert {c["tenant"] for c in listed.json()["clients"]} == {tenant}
    shown = manager.get(f"/v1/clients/{made['id']}")
    assert shown.status_code == 200
    assert shown.json()["key_id"] == made["key_id"]
    assert shown.json()["status"] == "active"
    for text in (listed.text, shown.text):
        assert made["api_key"] not in text
        assert made["api_key"].rsplit("_", 1)[1] not in text
        assert "api_key" not in text
    assert_problem(manager.get(f"/v1/clients/{other['id']}"), 404)
    assert other["id"] in {c["id"] for c in admin.get("/v1/clients").json()["clients"]}


def test_a_revoked_key_is_refused_at_once(
    live: LiveServer, actors: Actors, tenant: str, audit_trail: AuditTrail
) -> None:
    manager = actors.client("clients:admin", "subjects:read", name="manager")
    made = _create(manager, tenant, "subjects:read")
    mark = audit_trail.mark()
    with live.client(made["api_key"]) as victim:
        assert victim.get("/v1/subjects/00000000-0000-4000-8000-000000000000").status_code == 404
        revoked = manager.post(f"/v1/clients/{made['id']}/revocations", json={})
        assert revoked.status_code == 201, revoked.text
        assert revoked.json()["status"] == "revoked"
        assert_problem(victim.get("/v1/subjects/00000000-0000-4000-8000-000000000000"), 401)
    assert_problem(manager.post(f"/v1/clients/{made['id']}/revocations"), 409)
    (event,) = audit_trail.since(mark, type="client.revoked")
    assert event["data"]["client_id"] == made["id"]
    assert event["data"]["key_id"] == made["key_id"]
    assert event["tenant"] == tenant
    assert made["api_key"].rsplit("_", 1)[1] not in json.dumps(event)


def test_rotation_keeps_the_old_key_for_the_grace_only(
    live: LiveServer, actors: Actors, tenant: str, audit_trail: AuditTrail
) -> None:
    manager = actors.client("clients:admin", "subjects:read", name="manager")
    made = _create(manager, tenant, "subjects:read")
    mark = audit_trail.mark()
    rotated = manager.post(f"/v1/clients/{made['id']}/keys", json={"grace_seconds": 600})
    assert rotated.status_code == 201, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new_key = rotated.json()["api_key"]
    assert new_key != made["api_key"]
    assert rotated.json()["previous_key_id"] == made["key_id"]
    probe = "/v1/subjects/00000000-0000-4000-8000-000000000000"
    with live.client(made["api_key"]) as old, live.client(new_key) as new:
        assert old.get(probe).status_code == 404  # still in its grace
        assert new.get(probe).status_code == 404
        live.clock.advance(seconds=601)
        assert_problem(old.get(probe), 401)
        assert new.get(probe).status_code == 404
        # Without grace the previous key stops at once.
        again = manager.post(f"/v1/clients/{made['id']}/keys", json={"grace_seconds": 0})
        assert again.status_code == 201
        assert_problem(new.get(probe), 401)
    (event, _) = audit_trail.since(mark, type="client.key_rotated")
    assert event["data"]["previous_key_id"] == made["key_id"]
    assert event["data"]["key_id"] == rotated.json()["key_id"]
    assert new_key.rsplit("_", 1)[1] not in json.dumps(event)


def test_a_new_rotation_cuts_older_graces_short(
    live: LiveServer, actors: Actors, tenant: str
) -> None:
    manager = actors.client("clients:admin", "subjects:read", name="manager")
    made = _create(manager, tenant, "subjects:read")
    first = manager.post(f"/v1/clients/{made['id']}/keys", json={"grace_seconds": 3600})
    assert first.status_code == 201
    # Compromise: rotate again at once; neither earlier key may keep working.
    assert manager.post(f"/v1/clients/{made['id']}/keys", json={"grace_seconds": 0}).is_success
    probe = "/v1/subjects/00000000-0000-4000-8000-000000000000"
    for key in (made["api_key"], first.json()["api_key"]):
        with live.client(key) as old:
            assert_problem(old.get(probe), 401)


@pytest.mark.parametrize("grace", [-1, 86_401, None, 1.5])
def test_grace_out_of_range_is_a_problem(actors: Actors, tenant: str, grace: object) -> None:
    manager = actors.client("clients:admin", "subjects:read", name="manager")
    made = _create(manager, tenant, "subjects:read")
    response = manager.post(f"/v1/clients/{made['id']}/keys", json={"grace_seconds": grace})
    assert response.status_code in (400, 422), response.text


def test_an_expired_key_is_refused(live: LiveServer, actors: Actors, tenant: str) -> None:
    expires = (live.clock() + timedelta(hours=1)).isoformat()
    made = _create(actors.admin, tenant, "subjects:read", expires_at=expires)
    assert made["expires_at"] is not None
    probe = "/v1/subjects/00000000-0000-4000-8000-000000000000"
    with live.client(made["api_key"]) as client:
        assert client.get(probe).status_code == 404
        live.clock.advance(hours=1, seconds=1)
        assert_problem(client.get(probe), 401)
    past = (live.clock() - timedelta(seconds=1)).isoformat()
    response = actors.admin.post(
        "/v1/clients",
        json={"name": "x", "scopes": ["subjects:read"], "tenant": tenant, "expires_at": past},
    )
    assert_problem(response, 422)
    # A time whose UTC instant is past the year 9999: refused as bad input, not a 500.
    response = actors.admin.post(
        "/v1/clients",
        json={
            "name": "x",
            "scopes": ["subjects:read"],
            "tenant": tenant,
            "expires_at": "9999-12-31T23:59:59-23:59",
        },
    )
    assert_problem(response, 422)


def test_manage_only_clients_whose_scopes_one_holds(
    actors: Actors, tenant: str, admin: httpx.Client
) -> None:
    manager = actors.client("clients:admin", "subjects:read", name="manager")
    stronger = _create(admin, tenant, "subjects:read", "tokens:issue")
    foreign = _create(admin, f"{tenant}-other", "subjects:read")
    for path in (f"/v1/clients/{stronger['id']}/revocations", f"/v1/clients/{stronger['id']}/keys"):
        body = assert_problem(manager.post(path, json={}), 403, "forbidden")
        assert "tokens:issue" in body["detail"]
    assert_problem(manager.post(f"/v1/clients/{foreign['id']}/revocations", json={}), 404)
    assert_problem(manager.post(f"/v1/clients/{foreign['id']}/keys", json={}), 404)
    assert_problem(manager.post("/v1/clients/not-a-uuid/keys", json={}), 404)
    # The admin manages any client.
    assert admin.post(f"/v1/clients/{stronger['id']}/revocations").status_code == 201


def test_listing_needs_clients_admin(actors: Actors) -> None:
    reader = actors.client("subjects:read")
    assert_problem(reader.get("/v1/clients"), 403, "insufficient-scope")


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ATTEST_DATABASE_URL": database_url}
    env = {
        k: v for k, v in env.items() if not k.startswith("ATTEST_") or k == "ATTEST_DATABASE_URL"
    }
    return subprocess.run(
        [ATTEST, "clients", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_list_rotate_revoke(
    live: LiveServer, database_url: str, actors: Actors, tenant: str, audit_trail: AuditTrail
) -> None:
    made = _create(actors.admin, tenant, "subjects:read")
    listed = _cli(database_url, "list", "--tenant", tenant)
    assert listed.returncode == 0, listed.stderr
    assert [c["id"] for c in json.loads(listed.stdout)] == [made["id"]]
    assert made["api_key"] not in listed.stdout
    mark = audit_trail.mark()
    rotated = _cli(database_url, "rotate", made["id"], "--grace-seconds", "0")
    assert rotated.returncode == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["api_key"]
    probe = "/v1/subjects/00000000-0000-4000-8000-000000000000"
    with live.client(made["api_key"]) as old, live.client(new_key) as new:
        assert_problem(old.get(probe), 401)
        assert new.get(probe).status_code == 404
        revoked = _cli(database_url, "revoke", made["id"])
        assert revoked.returncode == 0, revoked.stderr
        assert json.loads(revoked.stdout)["status"] == "revoked"
        assert_problem(new.get(probe), 401)
    again = _cli(database_url, "revoke", made["id"])
    assert again.returncode == 1
    assert "revoked already" in again.stderr
    types = [e["type"] for e in audit_trail.since(mark) if e["data"].get("client_id") == made["id"]]
    assert types == ["client.key_rotated", "client.revoked"]
    assert all(e["data"]["via"] == "cli" for e in audit_trail.since(mark, type="client.revoked"))
