"""SQL for API clients."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from attest.audit import repository as audit
from attest.clients.service import Client, NewKey, secret_digest
from attest.db import Conn

__all__ = ["count_clients", "find_by_key_id", "register_client"]

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


async def register_client(
    conn: Conn,
    *,
    key: NewKey,
    name: str,
    tenant: str,
    scopes: list[str],
    is_admin: bool,
    created_by: uuid.UUID | None,
    now: datetime,
    via: str,
) -> uuid.UUID:
    """Store a new client (only the hash of its secret) and its audit event.

    Call inside a transaction: the client and the event commit together.
    """
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
    await audit.record(
        conn,
        "client.created",
        occurred_at=now,
        actor=created_by,
        tenant=tenant,
        data={
            "client_id": str(client_id),
            "key_id": key.key_id,
            "scopes": scopes,
            "admin": is_admin,
            "via": via,
        },
    )
    return client_id


async def count_clients(conn: Conn) -> int:
    count: int = await conn.fetchval(COUNT_CLIENTS)
    return count
