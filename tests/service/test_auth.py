"""Authentication, scopes and API clients over real HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import asyncpg
import httpx
import pytest
from attest_testing.service import AuditTrail, assert_problem
from attest_testing.support import Actors, LiveServer

from attest.clients.service import ALL_SCOPES, generate_key

KEY_RE = re.compile(r"attest_([a-z0-9]{16})_([a-z0-9]{52})")


def _assert_unauthenticated(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer \t x"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token " + generate_key().api_key},
        {"Authorization": "Bearer not-an-api-key"},
        {"Authorization": "Bearer attest_short_secret"},
        {"Authorization": "Bearer " + generate_key().api_key.upper()},
        {"Authorization": "Bearer " + generate_key().api_key + "x"},
        {"Authorization": "Bearer " + generate_key().api_key},  # unknown key id
    ],
    ids=[
        "no-header",
        "empty",
        "scheme-only",
        "blank-token",
        "basic",
        "token-scheme",
        "not-a-key",
        "short-key",
        "upper-case",
        "trailing-char",
        "unknown-key-id",
    ],
)
def test_bad_credentials_are_401_problems(live: LiveServer, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=live.base_url, headers=headers) as http:
        _assert_unauthenticated(http.post("/v1/subjects", json={"external_ref": "x"}))
        _assert_unauthenticated(http.get("/v1/audit/events"))


def test_right_key_id_with_wrong_secret_is_401(live: LiveServer, actors: Actors) -> None:
    key = actors.key("subjects:write")
    match = KEY_RE.fullmatch(key)
    assert match
    forged = f"attest_{match[1]}_{generate_key().secret}"
    with live.client(forged) as http:
        _assert_unauthenticated(http.post("/v1/subjects", json={"external_ref": "x"}))
    # The genuine key works, so the 401 was about the secret.
    with live.client(key) as http:
        assert http.post("/v1/subjects", json={"external_ref": "x"}).status_code == 201


def test_missing_scope_is_403_insufficient_scope(actors: Actors) -> None:
    reader = actors.client("subjects:read")
    body = assert_problem(
        reader.post("/v1/subjects", json={"external_ref": "x"}), 403, "insufficient-scope"
    )
    assert "subjects:write" in body["detail"]
    response = reader.get("/v1/audit/events")
    assert_problem(response, 403, "insufficient-scope")
    assert "insufficient_scope" in response.headers["www-authenticate"]
    assert_problem(reader.post("/v1/clients", json={"name": "x", "scopes": ["subjects:read"]}), 403)


def test_scope_check_runs_before_body_validation(actors: Actors) -> None:
    reader = actors.client("subjects:read")
    assert_problem(reader.post("/v1/subjects", content=b"{not json"), 403, "insufficient-scope")
    with httpx.Client(base_url=actors.live.base_url) as anonymous:
        _assert_unauthenticated(anonymous.post("/v1/subjects", content=b"{not json"))


def test_create_client_shape(admin: httpx.Client, tenant: str, live: LiveServer) -> None:
    response = admin.post(
        "/v1/clients",
        json={"name": "gateway", "scopes": ["tokens:issue", "subjects:read"], "tenant": tenant},
    )
    assert response.status_code == 201, response.text
    assert response.headers.get("cache-control") == "no-store"
    body = response.json()
    assert set(body) >= {"id", "name", "scopes", "tenant", "api_key"}
    assert body["name"] == "gateway"
    assert sorted(body["scopes"]) == ["subjects:read", "tokens:issue"]
    assert body["tenant"] == tenant
    assert KEY_RE.fullmatch(body["api_key"])
    # The new key authenticates with exactly its scopes.
    with live.client(body["api_key"]) as http:
        assert http.get(f"/v1/subjects/{body['id']}").status_code == 404
        assert_problem(http.post("/v1/subjects", json={"external_ref": "x"}), 403)


def test_two_clients_get_different_keys(admin: httpx.Client, tenant: str) -> None:
    made = [
        admin.post("/v1/clients", json={"name": "a", "scopes": ["audit:read"], "tenant": tenant})
        for _ in range(2)
    ]
    assert [r.status_code for r in made] == [201, 201]
    assert made[0].json()["api_key"] != made[1].json()["api_key"]
    assert made[0].json()["id"] != made[1].json()["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": ["subjects:write", "root"]},
        {"name": "x", "scopes": ["SUBJECTS:WRITE"]},
        {"name": "x", "scopes": ["subjects:read", "subjects:read"]},
    ],
)
def test_unknown_or_repeated_scopes_are_422(
    admin: httpx.Client, tenant: str, body: dict[str, Any]
) -> None:
    problem = assert_problem(admin.post("/v1/clients", json={**body, "tenant": tenant}), 422)
    assert problem["errors"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "", "scopes": ["audit:read"]},
        {"name": "x", "scopes": "audit:read"},
        {"name": "x", "scopes": ["audit:read"], "tenant": "Upper Case"},
        {"name": "x", "scopes": ["audit:read"], "is_admin": True},
        {"scopes": ["audit:read"]},
    ],
)
def test_malformed_client_bodies_are_4xx(admin: httpx.Client, body: dict[str, Any]) -> None:
    response = admin.post("/v1/clients", json=body)
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


def test_tenant_client_admin_is_confined(actors: Actors, tenant: str, live: LiveServer) -> None:
    manager = actors.client("clients:admin", "subjects:read", name="manager")
    # Another tenant: 403, whatever the scopes.
    assert_problem(
        manager.post(
            "/v1/clients", json={"name": "x", "scopes": ["subjects:read"], "tenant": "other"}
        ),
        403,
        "forbidden",
    )
    # A scope it lacks: 403.
    assert_problem(
        manager.post("/v1/clients", json={"name": "x", "scopes": ["subjects:write"]}),
        403,
        "forbidden",
    )
    assert_problem(
        manager.post("/v1/clients", json={"name": "x", "scopes": ["keys:admin"], "tenant": tenant}),
        403,
    )
    # Its own tenant, scopes it holds: allowed, and the new client lands in that tenant.
    made = manager.post("/v1/clients", json={"name": "x", "scopes": ["subjects:read"]})
    assert made.status_code == 201, made.text
    assert made.json()["tenant"] == tenant
    assert made.json()["scopes"] == ["subjects:read"]


def test_created_client_is_not_admin(actors: Actors) -> None:
    # Even with every scope, a created client sees only its own tenant.
    scoped = actors.client(*ALL_SCOPES)
    created = scoped.post(
        "/v1/clients", json={"name": "x", "scopes": ["audit:read"], "tenant": "elsewhere"}
    )
    assert_problem(created, 403)
    assert_problem(scoped.post("/v1/subjects", json={"external_ref": "x", "tenant": "elsew"}), 403)


async def _client_rows(url: str, key_id: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT * FROM api_clients WHERE key_id = $1", key_id)
    finally:
        await conn.close()
    return [dict(r) for r in rows]


def test_api_key_is_shown_once_and_only_its_hash_is_stored(
    live: LiveServer, admin: httpx.Client, audit_trail: AuditTrail, tenant: str
) -> None:
    mark = audit_trail.mark()
    response = admin.post(
        "/v1/clients", json={"name": "once", "scopes": ["audit:read"], "tenant": tenant}
    )
    assert response.status_code == 201
    api_key = response.json()["api_key"]
    match = KEY_RE.fullmatch(api_key)
    assert match
    key_id, secret = match[1], match[2]

    rows = asyncio.run(_client_rows(live.settings.database_url, key_id))
    assert len(rows) == 1
    row = rows[0]
    for column, value in row.items():
        text = value.hex() if isinstance(value, bytes) else str(value)
        assert secret not in text, column
        assert api_key not in text, column
        if isinstance(value, bytes | bytearray):
            assert secret.encode() not in bytes(value), column
    assert bytes(row["secret_sha256"]) == hashlib.sha256(secret.encode()).digest()

    # No later response carries the key: the audit trail of the creation does not.
    # Every client.created event since the mark: the creation above, in any tenant.
    trail = audit_trail.since(mark, type="client.created")
    mine = [e for e in trail if e["data"].get("key_id") == key_id]
    assert len(mine) == 1
    dumped = str(trail)
    assert secret not in dumped
    assert api_key not in dumped
    with live.client(api_key) as http:
        listing = http.get("/v1/audit/events", params={"limit": 1000})
        assert listing.status_code == 200
        assert secret not in listing.text
