"""SQL for evidence. Rows become :class:`Evidence` here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from attest.db import Conn
from attest.evidence.models import Evidence, NewEvidence

__all__ = [
    "approve",
    "close",
    "document_holders",
    "get_evidence",
    "insert_evidence",
    "insert_many",
    "list_for_subject",
    "lock_documents",
    "pending_for_review",
    "use_assertion",
    "verified_for_subject",
    "verified_of",
    "verified_part",
]

COLUMNS = """id, subject_id, tenant, type, document_type, attributes, assurance, status, reasons,
submitted_by, approved_by, approval_comment, created_at, verified_at, reverify_at, closed_by,
closed_at"""
INSERT_EVIDENCE = f"""
INSERT INTO evidence (id, subject_id, tenant, type, document_type, attributes, assurance, status,
                      reasons, submitted_by, created_at, verified_at, reverify_at, document_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
RETURNING {COLUMNS}
"""
SELECT_ONE = f"SELECT {COLUMNS} FROM evidence WHERE id = $1"
# Awaiting approval in a tenant ($1 NULL: every tenant, for an admin), oldest first, never
# what $2 submitted itself (the reviewer queue; the four-eyes relation is the service's).
SELECT_PENDING_FOR_REVIEW = f"""
SELECT {COLUMNS} FROM evidence
WHERE status = 'pending_approval' AND ($1::text IS NULL OR tenant = $1) AND submitted_by <> $2
ORDER BY created_at, id
LIMIT $3
"""
SELECT_FOR_UPDATE = SELECT_ONE + " FOR UPDATE"
APPROVE = f"""
UPDATE evidence SET status = 'verified', approved_by = $2, verified_at = $3, reverify_at = $4,
    approval_comment = $5
WHERE id = $1 AND status = 'pending_approval'
RETURNING {COLUMNS}
"""
CLOSE = f"""
UPDATE evidence SET status = $2, closed_by = $3, closed_at = $4, reasons = reasons || $5::jsonb
WHERE id = $1 AND status = ANY($6::text[])
RETURNING {COLUMNS}
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
# Serialises submissions of one document within a tenant, so two subjects cannot both
# claim the same document in concurrent transactions (sorted: batches cannot deadlock).
LOCK_DOCUMENTS = """
SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || h, 5))
FROM (SELECT DISTINCT h FROM unnest($2::text[]) AS h ORDER BY h) AS sorted
"""
DOCUMENT_HOLDERS = """
SELECT DISTINCT document_hash, subject_id FROM evidence
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
_NAMES = tuple(c.strip() for c in COLUMNS.split(","))
#: The jsonb columns: sent as text inside a record (asyncpg's JSON codec sees only the
#: columns of a row, not the fields of a record), parsed by :func:`verified_of`.
_JSON = frozenset({"attributes", "reasons"})
# The verified evidence of the subjects IDS, as a part of a batch's read statement
# (attest/tokens/repository.py): an array of records of COLUMNS, by subject, oldest first.
VERIFIED_PART = f"""(
SELECT array_agg(ROW({", ".join(c + "::text" if c in _JSON else c for c in _NAMES)})
                 ORDER BY subject_id, verified_at)
FROM evidence WHERE subject_id = ANY({{ids}}::uuid[]) AND status = 'verified'
)"""


def _evidence(row: asyncpg.Record | Mapping[str, Any]) -> Evidence:
    return Evidence(
        id=row["id"],
        subject_id=row["subject_id"],
        tenant=row["tenant"],
        type=row["type"],
        document_type=row["document_type"],
        attributes=row["attributes"],
        assurance=row["assurance"],
        status=row["status"],
        reasons=row["reasons"],
        submitted_by=row["submitted_by"],
        approved_by=row["approved_by"],
        approval_comment=row["approval_comment"],
        created_at=row["created_at"],
        verified_at=row["verified_at"],
        reverify_at=row["reverify_at"],
        closed_by=row["closed_by"],
        closed_at=row["closed_at"],
    )


def _maybe(row: asyncpg.Record | None) -> Evidence | None:
    return _evidence(row) if row is not None else None


async def insert_evidence(
    conn: Conn, new: NewEvidence, *, tenant: str, submitted_by: uuid.UUID, now: datetime
) -> Evidence:
    row = await conn.fetchrow(
        INSERT_EVIDENCE,
        new.id,
        new.subject_id,
        tenant,
        new.type,
        new.document_type,
        new.attributes,
        new.assurance,
        new.status,
        new.reasons,
        submitted_by,
        now,
        new.verified_at,
        new.reverify_at,
        new.document_hash,
    )
    assert row is not None  # noqa: S101 - INSERT .. RETURNING always returns the row
    return _evidence(row)


async def get_evidence(
    conn: Conn, evidence_id: uuid.UUID, *, for_update: bool = False
) -> Evidence | None:
    return _maybe(await conn.fetchrow(SELECT_FOR_UPDATE if for_update else SELECT_ONE, evidence_id))


async def approve(
    conn: Conn,
    evidence_id: uuid.UUID,
    approver: uuid.UUID,
    verified_at: datetime,
    reverify_at: datetime,
    comment: str | None,
) -> Evidence | None:
    return _maybe(
        await conn.fetchrow(APPROVE, evidence_id, approver, verified_at, reverify_at, comment)
    )


async def list_for_subject(conn: Conn, subject_id: uuid.UUID) -> list[Evidence]:
    return [_evidence(r) for r in await conn.fetch(SELECT_FOR_SUBJECT, subject_id)]


async def pending_for_review(
    conn: Conn, tenant: str | None, reviewer: uuid.UUID, limit: int
) -> list[Evidence]:
    rows = await conn.fetch(SELECT_PENDING_FOR_REVIEW, tenant, reviewer, limit)
    return [_evidence(r) for r in rows]


async def verified_for_subject(conn: Conn, subject_id: uuid.UUID) -> list[Evidence]:
    return [_evidence(r) for r in await conn.fetch(SELECT_VERIFIED, subject_id)]


def verified_part(ids: str) -> str:
    """:data:`VERIFIED_PART` over the statement's parameter ``ids`` (such as ``"$3"``)."""
    return VERIFIED_PART.format(ids=ids)


def verified_of(
    records: list[tuple[Any, ...]] | None, subject_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Evidence]]:
    """The value of :func:`verified_part`: each subject's verified evidence, oldest first."""
    found: dict[uuid.UUID, list[Evidence]] = {i: [] for i in subject_ids}
    for record in records or ():
        row = dict(zip(_NAMES, record, strict=True))
        for name in _JSON:
            row[name] = json.loads(row[name])
        evidence = _evidence(row)
        found[evidence.subject_id].append(evidence)
    return found


async def close(
    conn: Conn,
    evidence_id: uuid.UUID,
    *,
    status: str,
    closed_by: uuid.UUID,
    now: datetime,
    reasons: list[str],
    from_statuses: tuple[str, ...],
) -> Evidence | None:
    """Move evidence to ``rejected`` or ``withdrawn``; None if its status was not expected."""
    return _maybe(
        await conn.fetchrow(
            CLOSE, evidence_id, status, closed_by, now, reasons, list(from_statuses)
        )
    )


async def insert_many(
    conn: Conn,
    records: list[NewEvidence],
    *,
    tenant: str,
    submitted_by: uuid.UUID,
    now: datetime,
) -> None:
    """Insert evidence records in one statement, in list order."""
    if not records:
        return
    rows = [
        {
            "seq": seq,
            "id": str(new.id),
            "subject_id": str(new.subject_id),
            "type": new.type,
            "document_type": new.document_type,
            "attributes": new.attributes,
            "assurance": new.assurance,
            "status": new.status,
            "reasons": new.reasons,
            "verified_at": _iso(new.verified_at),
            "reverify_at": _iso(new.reverify_at),
            "document_hash": new.document_hash,
        }
        for seq, new in enumerate(records)
    ]
    await conn.execute(INSERT_MANY, rows, tenant, submitted_by, now)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def lock_documents(conn: Conn, tenant: str, document_hashes: list[str]) -> None:
    """Advisory locks on documents until the end of the transaction, in sorted order."""
    if document_hashes:
        await conn.execute(LOCK_DOCUMENTS, tenant, document_hashes)


async def document_holders(
    conn: Conn, tenant: str, document_hashes: list[str]
) -> dict[str, set[uuid.UUID]]:
    """The subjects of the tenant whose live evidence uses each of these documents."""
    if not document_hashes:
        return {}
    holders: dict[str, set[uuid.UUID]] = {}
    for row in await conn.fetch(DOCUMENT_HOLDERS, tenant, document_hashes):
        holders.setdefault(row["document_hash"], set()).add(row["subject_id"])
    return holders


async def use_assertion(
    conn: Conn, issuer: str, jti: str, tenant: str, now: datetime, expires_at: datetime
) -> bool:
    """Record an assertion as used; False if this issuer's ``jti`` was used before (replay).

    Also forgets assertions that expired long enough ago to be refused by ``exp`` alone.
    """
    await conn.execute(PRUNE_ASSERTIONS, now - timedelta(minutes=10))
    return await conn.fetchval(USE_ASSERTION, issuer, jti, tenant, now, expires_at) is not None
