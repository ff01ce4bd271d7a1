"""SQL for policy versions and audiences."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from attest.db import Conn

__all__ = [
    "get_audience",
    "get_policy",
    "insert_policy",
    "latest_policy",
    "list_audiences",
    "list_versions",
    "upsert_audience",
]

SELECT_LATEST = """
SELECT name, version, document, digest, created_at FROM policies
WHERE name = $1 ORDER BY version DESC LIMIT 1
"""
SELECT_VERSION = """
SELECT name, version, document, digest, created_at FROM policies WHERE name = $1 AND version = $2
"""
SELECT_VERSIONS = (
    "SELECT version, digest, created_at FROM policies WHERE name = $1 ORDER BY version"
)
INSERT_POLICY = """
INSERT INTO policies (name, version, document, digest, created_at, created_by)
VALUES ($1, $2, $3, $4, now(), $5)
ON CONFLICT (name, version) DO NOTHING
RETURNING name, version, document, digest, created_at
"""
SELECT_AUDIENCE = """
SELECT audience, policy_name, token_lifetime, binding_required, updated_at
FROM audiences WHERE audience = $1
"""
SELECT_AUDIENCES = """
SELECT audience, policy_name, token_lifetime, binding_required, updated_at
FROM audiences ORDER BY audience
"""
UPSERT_AUDIENCE = """
INSERT INTO audiences (audience, policy_name, token_lifetime, binding_required, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (audience) DO UPDATE SET policy_name = excluded.policy_name,
    token_lifetime = excluded.token_lifetime, binding_required = excluded.binding_required,
    updated_at = now()
RETURNING audience, policy_name, token_lifetime, binding_required, updated_at
"""
INSERT_AUDIENCE_IF_ABSENT = """
INSERT INTO audiences (audience, policy_name, token_lifetime, binding_required)
VALUES ($1, $2, $3, $4) ON CONFLICT (audience) DO NOTHING
"""


async def latest_policy(conn: Conn, name: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_LATEST, name)
    return row


async def get_policy(conn: Conn, name: str, version: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_VERSION, name, version)
    return row


async def list_versions(conn: Conn, name: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_VERSIONS, name))


async def insert_policy(
    conn: Conn,
    document: dict[str, Any],
    digest: str,
    created_by: uuid.UUID | None,
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        INSERT_POLICY, document["name"], document["version"], document, digest, created_by
    )
    return row


async def get_audience(conn: Conn, audience: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_AUDIENCE, audience)
    return row


async def list_audiences(conn: Conn | asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_AUDIENCES))


async def upsert_audience(
    conn: Conn,
    audience: str,
    policy_name: str,
    token_lifetime: int,
    binding_required: bool,
) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(
        UPSERT_AUDIENCE, audience, policy_name, token_lifetime, binding_required
    )
    assert row is not None  # noqa: S101 - INSERT .. RETURNING always returns the row
    return row


async def insert_audience_if_absent(
    conn: Conn, audience: str, policy_name: str, token_lifetime: int
) -> None:
    await conn.execute(INSERT_AUDIENCE_IF_ABSENT, audience, policy_name, token_lifetime, False)
