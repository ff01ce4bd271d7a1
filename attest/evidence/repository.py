"""SQL for evidence."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from attest.db import Conn

__all__ = [
    "approve",
    "close",
    "document_in_use",
    "documents_in_use",
    "get_evidence",
    "insert_evidence",
    "insert_many",
    "list_for_subject",
    "lock_document",
    "lock_documents",
    "use_assertion",
    "verified_for_subject",
]

COLUMNS = """id, subject_id, tenant, type, document_type, attributes, assurance, status, reasons,
submitted_by, approved_by, created_at, verified_at, reverify_at, closed_by, closed_at"""
INSERT_EVIDENCE = f"""
INSERT INTO evidence (id, subject_id, tenant, type, document_type, attributes, assurance, status,
                      reasons, submitted_by, created_at, verified_at, reverify_at, document_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
RETURNING {COLUMNS}
"""
SELECT_FOR_UPDATE = f"SELECT {COLUMNS} FROM evidence WHERE id = $1 FOR UPDATE"
APPROVE = f"""
UPDATE evidence SET status = 'verified', approved_by = $2, verified_at = $3, reverify_at = $4
WHERE id = $1 AND status = 'pending_approval'
RETURNING {COLUMNS}
"""
CLOSE = f"""
UPDATE evidence SET status = $2, closed_by = $3, closed_at = $4, reasons = reasons || $5::jsonb
WHERE id = $1 AND status = ANY($6::text[])
RETURNING {COLUMNS}
"""
# Serialises submissions of one document within a tenant, so two subjects cannot both
# claim the same document in concurrent transactions.
LOCK_DOCUMENT = "SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || $2, 5))"
DOCUMENT_IN_USE = """
SELECT 1 FROM evidence
WHERE tenant = $1 AND document_hash = $2 AND subject_id <> $3
  AND status IN ('verified', 'pending_approval')
LIMIT 1
"""
INSERT_MANY = """
INSERT INTO evidence (id, subject_id, tenant, type, document_type, attributes, assurance, status,
                      reasons, submitted_by, created_at, verified_at, reverify_at, document_hash)
SELECT id, subject_id, $2, type, document_type, attributes, assurance, status, reasons, $3, $4,
       verified_at, reverify_at, document_hash
FROM jsonb_to_recordset($1::jsonb) AS e(
    seq integer, id uuid, subject_id uuid, type text, document_type text, attributes jsonb,
    assurance text, status text, reasons jsonb, verified_at timestamptz,
    reverify_at timestamptz, document_hash text)
ORDER BY seq
"""
LOCK_DOCUMENTS = """
SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || h, 5))
FROM (SELECT DISTINCT h FROM unnest($2::text[]) AS h ORDER BY h) AS sorted
"""
DOCUMENTS_IN_USE = """
SELECT DISTINCT document_hash FROM evidence
WHERE tenant = $1 AND document_hash = ANY($2::text[])
  AND status IN ('verified', 'pending_approval')
"""
# Rows whose assertion expired more than 10 minutes ago (the largest leeway a provider may
# have is 300 s) can no longer be replayed: the assertion's exp rejects it.
PRUNE_ASSERTIONS = "DELETE FROM idp_assertion_jtis WHERE expires_at < $1"
USE_ASSERTION = """
INSERT INTO idp_assertion_jtis (issuer, jti, tenant, used_at, expires_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (issuer, jti) DO NOTHING
RETURNING jti
"""
SELECT_FOR_SUBJECT = f"SELECT {COLUMNS} FROM evidence WHERE subject_id = $1 ORDER BY created_at, id"
SELECT_VERIFIED = f"""
SELECT {COLUMNS} FROM evidence WHERE subject_id = $1 AND status = 'verified' ORDER BY verified_at
"""


async def insert_evidence(
    conn: Conn,
    *,
    subject_id: uuid.UUID,
    tenant: str,
    type_: str,
    document_type: str | None,
    attributes: dict[str, Any],
    assurance: str,
    status: str,
    reasons: list[str],
    submitted_by: uuid.UUID,
    now: datetime,
    verified_at: datetime | None,
    reverify_at: datetime | None,
    document_hash: str | None = None,
) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(
        INSERT_EVIDENCE,
        uuid.uuid4(),
        subject_id,
        tenant,
        type_,
        document_type,
        attributes,
        assurance,
        status,
        reasons,
        submitted_by,
        now,
        verified_at,
        reverify_at,
        document_hash,
    )
    assert row is not None  # noqa: S101 - INSERT .. RETURNING always returns the row
    return row


async def get_evidence(conn: Conn, evidence_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_FOR_UPDATE, evidence_id)
    return row


async def approve(
    conn: Conn,
    evidence_id: uuid.UUID,
    approver: uuid.UUID,
    verified_at: datetime,
    reverify_at: datetime,
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        APPROVE, evidence_id, approver, verified_at, reverify_at
    )
    return row


async def list_for_subject(conn: Conn, subject_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_FOR_SUBJECT, subject_id))


async def verified_for_subject(conn: Conn, subject_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_VERIFIED, subject_id))


async def close(
    conn: Conn,
    evidence_id: uuid.UUID,
    *,
    status: str,
    closed_by: uuid.UUID,
    now: datetime,
    reasons: list[str],
    from_statuses: tuple[str, ...],
) -> asyncpg.Record | None:
    """Move evidence to ``rejected`` or ``withdrawn``; None if its status was not expected."""
    row: asyncpg.Record | None = await conn.fetchrow(
        CLOSE, evidence_id, status, closed_by, now, reasons, list(from_statuses)
    )
    return row


async def lock_document(conn: Conn, tenant: str, document_hash: str) -> None:
    await conn.execute(LOCK_DOCUMENT, tenant, document_hash)


async def document_in_use(
    conn: Conn, tenant: str, document_hash: str, subject_id: uuid.UUID
) -> bool:
    """Whether another subject of the tenant has live evidence from this document."""
    return await conn.fetchval(DOCUMENT_IN_USE, tenant, document_hash, subject_id) is not None


async def insert_many(
    conn: Conn,
    records: list[dict[str, Any]],
    *,
    tenant: str,
    submitted_by: uuid.UUID,
    now: datetime,
) -> None:
    """Insert evidence records (dicts of the INSERT_MANY columns) in one statement."""
    if not records:
        return
    rows = [
        {
            **record,
            "seq": seq,
            "id": str(record["id"]),
            "subject_id": str(record["subject_id"]),
            "verified_at": _iso(record["verified_at"]),
            "reverify_at": _iso(record["reverify_at"]),
        }
        for seq, record in enumerate(records)
    ]
    await conn.execute(INSERT_MANY, rows, tenant, submitted_by, now)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def lock_documents(conn: Conn, tenant: str, document_hashes: list[str]) -> None:
    """Advisory locks on many documents, in sorted order so batches cannot deadlock."""
    if document_hashes:
        await conn.execute(LOCK_DOCUMENTS, tenant, document_hashes)


async def documents_in_use(conn: Conn, tenant: str, document_hashes: list[str]) -> set[str]:
    """Which of these documents already back live evidence in the tenant."""
    if not document_hashes:
        return set()
    rows = await conn.fetch(DOCUMENTS_IN_USE, tenant, document_hashes)
    return {row["document_hash"] for row in rows}


async def use_assertion(
    conn: Conn, issuer: str, jti: str, tenant: str, now: datetime, expires_at: datetime
) -> bool:
    """Record an assertion as used; False if this issuer's ``jti`` was used before (replay).

    Also forgets assertions that expired long enough ago to be refused by ``exp`` alone.
    """
    await conn.execute(PRUNE_ASSERTIONS, now - timedelta(minutes=10))
    return await conn.fetchval(USE_ASSERTION, issuer, jti, tenant, now, expires_at) is not None
