"""SQL for subjects. Rows become :class:`Subject` here."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from attest.db import Conn
from attest.subjects.models import Lock, Subject

__all__ = [
    "get_by_external_ref",
    "get_subject",
    "ids_by_external_refs",
    "insert_subject",
    "insert_subjects",
    "revoke_subject",
    "share_many",
]

COLUMNS = "id, tenant, external_ref, created_at, revoked_at"
INSERT_SUBJECT = f"""
INSERT INTO subjects (id, tenant, external_ref, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant, external_ref) DO NOTHING
RETURNING {COLUMNS}
"""
SELECT_BY_REF = f"SELECT {COLUMNS} FROM subjects WHERE tenant = $1 AND external_ref = $2"
SELECT_BY_ID = f"SELECT {COLUMNS} FROM subjects WHERE id = $1"
SELECT_BY_ID_LOCKED = {
    None: SELECT_BY_ID,
    "share": SELECT_BY_ID + " FOR SHARE",
    "update": SELECT_BY_ID + " FOR UPDATE",
}
# Subjects named by id ($1) or by (tenant, external_ref) ($2, $3), each locked FOR SHARE,
# in id order, in one round trip (a batch of token decisions), together with the advisory
# locks $4 (keys, hashed with seed $5) taken shared: the row of the locks is returned last,
# so they are always taken, whether or not a subject is found.
SHARE_MANY = f"""
WITH locks AS MATERIALIZED (
    SELECT count(pg_advisory_xact_lock_shared(hashtextextended(k, $5))) AS n
    FROM unnest($4::text[]) AS l(k)
),
by_id AS (
    SELECT {COLUMNS} FROM subjects WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE
),
by_ref AS (
    SELECT s.id, s.tenant, s.external_ref, s.created_at, s.revoked_at
    FROM unnest($2::text[], $3::text[]) AS r(tenant, external_ref)
    JOIN subjects s ON s.tenant = r.tenant AND s.external_ref = r.external_ref
    ORDER BY s.id FOR SHARE OF s
)
SELECT *, NULL::bigint AS locked FROM by_id
UNION ALL SELECT *, NULL FROM by_ref
UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, n FROM locks
"""
INSERT_SUBJECTS = """
INSERT INTO subjects (id, tenant, external_ref, created_at)
SELECT gen_random_uuid(), $1, ref, $3 FROM unnest($2::text[]) AS s(ref)
ON CONFLICT (tenant, external_ref) DO NOTHING
RETURNING id, external_ref
"""
SELECT_IDS_BY_REFS = """
SELECT id, external_ref FROM subjects WHERE tenant = $1 AND external_ref = ANY($2::text[])
"""
REVOKE = f"""
UPDATE subjects SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING {COLUMNS}
"""


def _subject(row: asyncpg.Record | None) -> Subject | None:
    return None if row is None else _row(row)


def _row(row: asyncpg.Record) -> Subject:
    return Subject(
        id=row["id"],
        tenant=row["tenant"],
        external_ref=row["external_ref"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def insert_subject(
    conn: Conn, tenant: str, external_ref: str, now: datetime
) -> Subject | None:
    """Insert a subject; None when the tenant already has this external_ref."""
    return _subject(await conn.fetchrow(INSERT_SUBJECT, uuid.uuid4(), tenant, external_ref, now))


async def get_by_external_ref(conn: Conn, tenant: str, external_ref: str) -> Subject | None:
    return _subject(await conn.fetchrow(SELECT_BY_REF, tenant, external_ref))


async def get_subject(conn: Conn, subject_id: uuid.UUID, *, lock: Lock = None) -> Subject | None:
    return _subject(await conn.fetchrow(SELECT_BY_ID_LOCKED[lock], subject_id))


async def share_many(
    conn: Conn,
    ids: list[uuid.UUID],
    refs: list[tuple[str, str]],
    locks: tuple[list[str], int],
) -> list[Subject]:
    keys, seed = locks
    rows = await conn.fetch(SHARE_MANY, ids, [t for t, _ in refs], [r for _, r in refs], keys, seed)
    return [_row(r) for r in rows if r["locked"] is None]


async def revoke_subject(conn: Conn, subject_id: uuid.UUID, now: datetime) -> Subject | None:
    """Mark the subject revoked; None when it already was."""
    return _subject(await conn.fetchrow(REVOKE, subject_id, now))


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
