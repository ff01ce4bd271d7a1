"""SQL for API clients. Rows become :class:`Client` here and go no further."""

from __future__ import annotations

import uuid

import asyncpg

from attest.clients.apikeys import secret_digest
from attest.clients.models import Client, NewKey
from attest.db import Conn

__all__ = ["count_clients", "find_by_key_id", "insert_client"]

SELECT_BY_KEY_ID = """
SELECT id, name, tenant, scopes, is_admin, secret_sha256
FROM api_clients WHERE key_id = $1 AND disabled_at IS NULL
"""
INSERT_CLIENT = """
INSERT INTO api_clients (id, key_id, secret_sha256, name, tenant, scopes, is_admin, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
COUNT_CLIENTS = "SELECT count(*) FROM api_clients"


async def find_by_key_id(conn: Conn | asyncpg.Pool, key_id: str) -> tuple[Client, bytes] | None:
    """The enabled client with this key id and its secret's digest."""
    row = await conn.fetchrow(SELECT_BY_KEY_ID, key_id)
    if row is None:
        return None
    client = Client(
        id=row["id"],
        name=row["name"],
        tenant=row["tenant"],
        scopes=frozenset(row["scopes"]),
        is_admin=row["is_admin"],
    )
    return client, bytes(row["secret_sha256"])


async def insert_client(
    conn: Conn,
    *,
    key: NewKey,
    name: str,
    tenant: str,
    scopes: list[str],
    is_admin: bool,
    created_by: uuid.UUID | None,
) -> uuid.UUID:
    """Store a new client; only the hash of its secret."""
    client_id = uuid.uuid4()
    await conn.execute(
        INSERT_CLIENT,
        client_id,
        key.key_id,
        secret_digest(key.secret),
        name,
        tenant,
        scopes,
        is_admin,
        created_by,
    )
    return client_id


async def count_clients(conn: Conn) -> int:
    count: int = await conn.fetchval(COUNT_CLIENTS)
    return count
