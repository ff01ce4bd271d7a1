"""SQL for subjects."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from attest.db import Conn

__all__ = [
    "get_by_external_ref",
    "get_subject",
    "ids_by_external_refs",
    "insert_subject",
    "insert_subjects",
    "revoke_subject",
]

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
INSERT_SUBJECTS = """
INSERT INTO subjects (id, tenant, external_ref, created_at)
SELECT gen_random_uuid(), $1, ref, $3 FROM unnest($2::text[]) AS s(ref)
ON CONFLICT (tenant, external_ref) DO NOTHING
RETURNING id, external_ref
"""
SELECT_IDS_BY_REFS = """
SELECT id, external_ref FROM subjects WHERE tenant = $1 AND external_ref = ANY($2::text[])
"""
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


async def insert_subjects(
    conn: Conn, tenant: str, external_refs: list[str], now: datetime
) -> dict[str, uuid.UUID]:
    """Insert the subjects the tenant does not have yet; returns those created (ref -> id)."""
    rows = await conn.fetch(INSERT_SUBJECTS, tenant, external_refs, now)
    return {row["external_ref"]: row["id"] for row in rows}


async def ids_by_external_refs(
    conn: Conn, tenant: str, external_refs: list[str]
) -> dict[str, uuid.UUID]:
    rows = await conn.fetch(SELECT_IDS_BY_REFS, tenant, external_refs)
    return {row["external_ref"]: row["id"] for row in rows}
