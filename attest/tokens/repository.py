"""SQL for issued-token attestation records."""

from __future__ import annotations

from attest.db import Conn
from attest.tokens.models import Attestation, NewAttestation

__all__ = ["get_attestation", "insert_attestation"]

INSERT_ATTESTATION = """
INSERT INTO attestations (jti, subject_id, tenant, audience, sub, policy_name, policy_version,
    policy_digest, assurance, evidence_ids, kid, token_sha256, cnf_jkt, issued_at, expires_at,
    requested_by, signature)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
"""
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
