"""SQL for issued-token attestation records."""

from __future__ import annotations

from typing import Any

import asyncpg

from attest.db import Conn

__all__ = ["get_attestation", "insert_attestation"]

INSERT_ATTESTATION = """
INSERT INTO attestations (jti, subject_id, tenant, audience, sub, policy_name, policy_version,
    policy_digest, assurance, evidence_ids, kid, token_sha256, cnf_jkt, issued_at, expires_at,
    requested_by, signature)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
"""
SELECT_ATTESTATION = """
SELECT a.*, p.document AS policy_document, k.public_jwk, k.alg
FROM attestations a
JOIN policies p ON p.name = a.policy_name AND p.version = a.policy_version
JOIN signing_keys k ON k.kid = a.kid
WHERE a.jti = $1
"""


async def insert_attestation(conn: Conn, **values: Any) -> None:
    await conn.execute(
        INSERT_ATTESTATION,
        values["jti"],
        values["subject_id"],
        values["tenant"],
        values["audience"],
        values["sub"],
        values["policy_name"],
        values["policy_version"],
        values["policy_digest"],
        values["assurance"],
        values["evidence_ids"],
        values["kid"],
        values["token_sha256"],
        values["cnf_jkt"],
        values["issued_at"],
        values["expires_at"],
        values["requested_by"],
        values["signature"],
    )


async def get_attestation(conn: Conn, jti: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SELECT_ATTESTATION, jti)
    return row
