"""SQL for signing-key records (public keys and lifecycle state; never private keys)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from attest.db import Conn

__all__ = ["active_key", "insert_active_key", "list_keys", "published_keys"]

KEY_COLUMNS = """kid, alg, state, public_jwk, keystore_ref, created_at, activated_at, retiring_at,
retired_at, compromised_at"""
SELECT_ACTIVE = f"SELECT {KEY_COLUMNS} FROM signing_keys WHERE state = 'active' AND alg = $1"
SELECT_PUBLISHED = f"""
SELECT {KEY_COLUMNS} FROM signing_keys WHERE state IN ('pending', 'active', 'retiring')
ORDER BY created_at, kid
"""
SELECT_ALL = f"SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"
INSERT_ACTIVE = """
INSERT INTO signing_keys (kid, alg, state, public_jwk, keystore_ref, created_at, activated_at)
VALUES ($1, $2, 'active', $3, $4, $5, $5)
"""


async def active_key(conn: Conn, alg: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_ACTIVE, alg)
    return row


async def published_keys(conn: Conn | asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_PUBLISHED))


async def list_keys(conn: Conn | asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_ALL))


async def insert_active_key(
    conn: Conn,
    kid: str,
    alg: str,
    public_jwk: dict[str, str],
    keystore_ref: str,
    now: datetime,
) -> None:
    await conn.execute(INSERT_ACTIVE, kid, alg, public_jwk, keystore_ref, now)
