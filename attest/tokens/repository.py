"""SQL for issued-token attestation records."""

from __future__ import annotations

import uuid
from datetime import datetime

from attest.db import Conn
from attest.tokens.models import Attestation, HolderKey, IssuedEntry, NewAttestation

__all__ = [
    "get_attestation",
    "holder_keys",
    "holder_keys_seen",
    "insert_attestation",
    "issued_for_subject",
    "lock_holder_keys",
    "other_requesters",
    "record_issued",
    "recorded",
]

INSERT_ATTESTATION = """
INSERT INTO attestations (jti, subject_id, tenant, audience, sub, policy_name, policy_version,
    policy_digest, assurance, evidence_ids, kid, token_sha256, cnf_jkt, issued_at, expires_at,
    requested_by, signature)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
"""
# An issued token's three records in one statement (one round trip on the hot path): its
# attestation, its status-list entry (the status domain's table, VALID) and its token.issued
# audit event (the audit domain's table; the log sequencer makes it a leaf after the
# commit). All three commit together or not at all, as the three statements they replace.
RECORD_ISSUED = """
WITH attestation AS (
    INSERT INTO attestations (jti, subject_id, tenant, audience, sub, policy_name,
        policy_version, policy_digest, assurance, evidence_ids, kid, token_sha256, cnf_jkt,
        issued_at, expires_at, requested_by, signature)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
    RETURNING jti
),
entry AS (
    INSERT INTO token_statuses (list_id, idx, jti) SELECT $18, $19, jti FROM attestation
)
INSERT INTO audit_events (event_id, type, occurred_at, actor, tenant, subject_id, data)
SELECT $20, 'token.issued', $21, $16, $3, $2, $22 FROM attestation
"""
# Which of these tokens are recorded (after a COMMIT whose answer was lost).
SELECT_RECORDED = "SELECT jti FROM attestations WHERE jti = ANY($1::text[])"
SELECT_ATTESTATION = """
SELECT a.jti, a.subject_id, a.tenant, a.audience, a.sub, a.policy_name, a.policy_version,
    a.policy_digest, a.assurance, a.evidence_ids, a.kid, a.token_sha256, a.cnf_jkt,
    a.issued_at, a.expires_at, a.requested_by, a.signature,
    p.document AS policy_document, k.public_jwk, k.alg
FROM attestations a
JOIN policies p ON p.name = a.policy_name AND p.version = a.policy_version
JOIN signing_keys k ON k.kid = a.kid
WHERE a.jti = $1
"""


SELECT_HOLDER_KEYS = """
SELECT DISTINCT cnf_jkt FROM attestations
WHERE subject_id = $1 AND audience = $2 AND issued_at > $3 AND cnf_jkt IS NOT NULL
"""
# Serialises bound issuances of one subject for one audience while a holder-key limit is
# counted (seed 11: apart from the other advisory locks).
LOCK_HOLDER_KEYS = "SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || $2, 11))"
# A client joining after its tenant's other clients (the flag fires once per new client).
SELECT_OTHER_REQUESTERS = """
SELECT CASE WHEN bool_or(requested_by = $2) THEN 0
            ELSE count(DISTINCT requested_by) END
FROM attestations WHERE subject_id = $1 AND issued_at > $3
"""
SELECT_HOLDER_KEYS_SEEN = """
SELECT cnf_jkt, audience, count(*) AS tokens, max(issued_at) AS last_seen FROM attestations
WHERE subject_id = $1 AND issued_at > $2 AND cnf_jkt IS NOT NULL
GROUP BY cnf_jkt, audience ORDER BY max(issued_at) DESC
"""


async def lock_holder_keys(conn: Conn, subject_id: uuid.UUID, audience: str) -> None:
    await conn.execute(LOCK_HOLDER_KEYS, str(subject_id), audience)


async def holder_keys(
    conn: Conn, subject_id: uuid.UUID, audience: str, since: datetime
) -> set[str]:
    """The distinct holder keys of the subject's tokens for the audience since ``since``."""
    rows = await conn.fetch(SELECT_HOLDER_KEYS, subject_id, audience, since)
    return {r["cnf_jkt"] for r in rows}


async def other_requesters(
    conn: Conn, subject_id: uuid.UUID, client_id: uuid.UUID, since: datetime
) -> int:
    """How many other clients asked for the subject's tokens since ``since``, if this
    client has not (0 when it has, or when none did)."""
    count: int | None = await conn.fetchval(SELECT_OTHER_REQUESTERS, subject_id, client_id, since)
    return count or 0


async def holder_keys_seen(conn: Conn, subject_id: uuid.UUID, since: datetime) -> list[HolderKey]:
    rows = await conn.fetch(SELECT_HOLDER_KEYS_SEEN, subject_id, since)
    return [HolderKey(r["cnf_jkt"], r["audience"], r["tokens"], r["last_seen"]) for r in rows]


async def insert_attestation(conn: Conn, new: NewAttestation) -> None:
    await conn.execute(
        INSERT_ATTESTATION,
        new.jti,
        new.subject_id,
        new.tenant,
        new.audience,
        new.sub,
        new.policy_name,
        new.policy_version,
        new.policy_digest,
        new.assurance,
        new.evidence_ids,
        new.kid,
        new.token_sha256,
        new.cnf_jkt,
        new.issued_at,
        new.expires_at,
        new.requested_by,
        new.signature,
    )


async def record_issued(
    conn: Conn,
    new: NewAttestation,
    *,
    list_id: int,
    idx: int,
    event_id: uuid.UUID,
    occurred_at: datetime,
    event: dict[str, object],
) -> None:
    await conn.execute(
        RECORD_ISSUED,
        new.jti,
        new.subject_id,
        new.tenant,
        new.audience,
        new.sub,
        new.policy_name,
        new.policy_version,
        new.policy_digest,
        new.assurance,
        new.evidence_ids,
        new.kid,
        new.token_sha256,
        new.cnf_jkt,
        new.issued_at,
        new.expires_at,
        new.requested_by,
        new.signature,
        list_id,
        idx,
        event_id,
        occurred_at,
        event,
    )


async def recorded(conn: Conn, jtis: list[str], within: float) -> set[str]:
    return {r["jti"] for r in await conn.fetch(SELECT_RECORDED, jtis, timeout=within)}


async def get_attestation(conn: Conn, jti: str) -> Attestation | None:
    row = await conn.fetchrow(SELECT_ATTESTATION, jti)
    if row is None:
        return None
    record = NewAttestation(
        jti=row["jti"],
        subject_id=row["subject_id"],
        tenant=row["tenant"],
        audience=row["audience"],
        sub=row["sub"],
        policy_name=row["policy_name"],
        policy_version=row["policy_version"],
        policy_digest=row["policy_digest"],
        assurance=row["assurance"],
        evidence_ids=list(row["evidence_ids"]),
        kid=row["kid"],
        token_sha256=row["token_sha256"],
        cnf_jkt=row["cnf_jkt"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        requested_by=row["requested_by"],
        signature=row["signature"],
    )
    return Attestation(record, row["policy_document"], row["public_jwk"], row["alg"])


# A subject's tokens, newest first, each with its status-list value (0 when it has none).
SELECT_ISSUED_FOR_SUBJECT = """
SELECT a.jti, a.tenant, a.audience, a.policy_name, a.policy_version, a.issued_at,
    a.expires_at, coalesce(s.status, 0) AS status
FROM attestations a LEFT JOIN token_statuses s ON s.jti = a.jti
WHERE a.subject_id = $1
ORDER BY a.issued_at DESC, a.jti
LIMIT $2
"""


async def issued_for_subject(conn: Conn, subject_id: uuid.UUID, limit: int) -> list[IssuedEntry]:
    rows = await conn.fetch(SELECT_ISSUED_FOR_SUBJECT, subject_id, limit)
    return [
        IssuedEntry(
            jti=r["jti"],
            tenant=r["tenant"],
            audience=r["audience"],
            policy_name=r["policy_name"],
            policy_version=r["policy_version"],
            issued_at=r["issued_at"],
            expires_at=r["expires_at"],
            status=r["status"],
        )
        for r in rows
    ]
