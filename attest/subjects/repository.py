"""SQL for subjects."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from attest.db import Conn

__all__ = ["get_by_external_ref", "get_subject", "insert_subject", "revoke_subject"]

INSERT_SUBJECT = """
INSERT INTO subjects (id, tenant, external_ref, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant, external_ref) DO NOTHING
RETURNING id, tenant, external_ref, created_at, revoked_at
"""
SELECT_BY_REF = """
SELECT id, tenant, external_ref, created_at, revoked_at FROM subjects
WHERE tenant = $1 AND external_ref = $2
"""
SELECT_BY_ID = "SELECT id, tenant, external_ref, created_at, revoked_at FROM subjects WHERE id = $1"
SELECT_BY_ID_FOR_UPDATE = SELECT_BY_ID + " FOR UPDATE"
REVOKE = "UPDATE subjects SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id"


async def insert_subject(
    conn: Conn, tenant: str, external_ref: str, now: datetime
) -> asyncpg.Record | None:
    """Insert a subject; None when the tenant already has this external_ref."""
    row: asyncpg.Record | None = await conn.fetchrow(
        INSERT_SUBJECT, uuid.uuid4(), tenant, external_ref, now
    )
    return row


async def get_by_external_ref(conn: Conn, tenant: str, external_ref: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_BY_REF, tenant, external_ref)
    return row


async def get_subject(
    conn: Conn, subject_id: uuid.UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    sql = SELECT_BY_ID_FOR_UPDATE if for_update else SELECT_BY_ID
    row: asyncpg.Record | None = await conn.fetchrow(sql, subject_id)
    return row


async def revoke_subject(conn: Conn, subject_id: uuid.UUID, now: datetime) -> bool:
    return await conn.fetchval(REVOKE, subject_id, now) is not None
