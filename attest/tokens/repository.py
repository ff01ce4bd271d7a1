"""SQL for issued-token attestation records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from attest.db import Conn
from attest.evidence import repository as evidence
from attest.evidence.models import Evidence
from attest.keys import repository as keys
from attest.policy import repository as policies
from attest.policy.models import Audience, VersionSummary
from attest.tokens.models import Attestation, HolderKey, IssuedEntry, NewAttestation

__all__ = [
    "DecisionReads",
    "decision_reads",
    "get_attestation",
    "holder_keys",
    "holder_keys_seen",
    "issued_for_subject",
    "lock_holder_keys",
    "lock_requesters",
    "record_batch",
    "recorded",
    "requesters",
]


class DecisionReads(NamedTuple):
    """What :func:`decision_reads` read, in one snapshot."""

    contexts: list[tuple[Audience, VersionSummary | None] | None]
    verified: dict[uuid.UUID, list[Evidence]]
    requesters: list[set[uuid.UUID] | None]
    kid: str | None


# A batch's issued tokens and its audit events in one statement (one round trip for the
# batch): $1 the issued tokens, each with its status-list entry; $2 the batch's events in
# the order of its decisions (token.issued, token.denied, subject.sharing_suspected). Each
# token's attestation, its status-list entry (the status domain's table, VALID) and its
# event (the audit domain's table; the log sequencer makes it a leaf after the commit) all
# commit together or not at all.
RECORD_BATCH = """
WITH issued AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
        jti text, subject_id uuid, tenant text, audience text, sub text, policy_name text,
        policy_version integer, policy_digest text, assurance text, evidence_ids uuid[],
        kid text, token_sha256 text, cnf_jkt text, issued_at timestamptz,
        expires_at timestamptz, requested_by uuid, signature text, list_id integer,
        idx integer)
),
attestation AS (
    INSERT INTO attestations (jti, subject_id, tenant, audience, sub, policy_name,
        policy_version, policy_digest, assurance, evidence_ids, kid, token_sha256, cnf_jkt,
        issued_at, expires_at, requested_by, signature)
    SELECT jti, subject_id, tenant, audience, sub, policy_name, policy_version,
        policy_digest, assurance, evidence_ids, kid, token_sha256, cnf_jkt, issued_at,
        expires_at, requested_by, signature
    FROM issued
    RETURNING jti
),
entry AS (
    INSERT INTO token_statuses (list_id, idx, jti)
    SELECT i.list_id, i.idx, a.jti FROM attestation a JOIN issued i ON i.jti = a.jti
)
INSERT INTO audit_events (event_id, type, occurred_at, actor, tenant, subject_id, data)
SELECT event_id, type, occurred_at, actor, tenant, subject_id, data
FROM jsonb_to_recordset($2::jsonb) AS e(
    n integer, event_id uuid, type text, occurred_at timestamptz, actor uuid, tenant text,
    subject_id uuid, data jsonb)
ORDER BY n
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


# For each (subject $1[n], audience $2[n]): the distinct holder keys of its tokens since
# $3[n]. Read after LOCK_HOLDER_KEYS, in a statement of its own.
SELECT_HOLDER_KEYS = """
SELECT j.n, array_agg(DISTINCT a.cnf_jkt) AS keys
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS j(subject_id,
    audience, since, n)
JOIN attestations a ON a.subject_id = j.subject_id AND a.audience = j.audience
    AND a.issued_at > j.since AND a.cnf_jkt IS NOT NULL
GROUP BY j.n
"""
# Serialises bound issuances of one subject for one audience while a holder-key limit is
# counted (seed 11: apart from the other advisory locks); $1 sorted, distinct.
LOCK_HOLDER_KEYS = """
SELECT count(pg_advisory_xact_lock(hashtextextended(k, 11))) FROM unnest($1::text[]) AS l(k)
"""
# Serialises the sharing signal of a subject while a client new to it is counted (seed 12);
# $1 sorted, distinct. Only a client the subject has not seen yet takes it.
LOCK_REQUESTERS = """
SELECT count(pg_advisory_xact_lock(hashtextextended(k, 12))) FROM unnest($1::text[]) AS l(k)
"""
# The sharing signal, for each (subject S[n], client C[n], since T[n]): whether the client
# asked for the subject's tokens since then (an index probe), and when it did not, the
# distinct other clients that did (the flag fires once per client that joins), as an array
# of records (n, seen, others).
REQUESTERS_PART = """(
SELECT array_agg(ROW(j.n, r.seen,
    CASE WHEN NOT r.seen THEN (
        SELECT array_agg(DISTINCT a.requested_by) FROM attestations a
        WHERE a.subject_id = j.subject_id AND a.issued_at > j.since
    ) END))
FROM unnest({s}::uuid[], {c}::uuid[], {t}::timestamptz[]) WITH ORDINALITY AS j(subject_id,
    client_id, since, n)
CROSS JOIN LATERAL (
    SELECT EXISTS (
        SELECT 1 FROM attestations a
        WHERE a.subject_id = j.subject_id AND a.requested_by = j.client_id
            AND a.issued_at > j.since
    ) AS seen
    OFFSET 0  -- not pulled up: the probe runs once per row, not once per use of seen
) AS r
)"""
SELECT_REQUESTERS = f"SELECT {REQUESTERS_PART.format(s='$1', c='$2', t='$3')}"
# What a batch's decisions read after its locks were granted (attest/tokens/issuance.py),
# in one statement, so one snapshot taken after the locks: the audiences and the policy
# versions governing them ($1, $2), the subjects' verified evidence ($3), the sharing
# signal's requesters ($4, $5, $6) and the active signing key's id.
SELECT_DECISION_READS = f"""
SELECT {policies.decision_contexts_part("$1", "$2")} AS contexts,
    {evidence.verified_part("$3")} AS verified,
    {REQUESTERS_PART.format(s="$4", c="$5", t="$6")} AS requesters,
    {keys.ACTIVE_KID_PART} AS kid
"""
SELECT_HOLDER_KEYS_SEEN = """
SELECT cnf_jkt, audience, count(*) AS tokens, max(issued_at) AS last_seen FROM attestations
WHERE subject_id = $1 AND issued_at > $2 AND cnf_jkt IS NOT NULL
GROUP BY cnf_jkt, audience ORDER BY max(issued_at) DESC
"""


async def lock_holder_keys(conn: Conn, pairs: list[tuple[uuid.UUID, str]]) -> None:
    """Lock the holder-key counts of these (subject, audience) pairs until the end of the
    caller's transaction, in one order for every taker."""
    keys = sorted({f"{subject_id}|{audience}" for subject_id, audience in pairs})
    await conn.fetchval(LOCK_HOLDER_KEYS, keys)


async def lock_requesters(conn: Conn, subject_ids: list[uuid.UUID]) -> None:
    """Lock the sharing signal of these subjects until the end of the caller's transaction,
    in one order for every taker."""
    await conn.fetchval(LOCK_REQUESTERS, sorted({str(s) for s in subject_ids}))


async def holder_keys(conn: Conn, asks: list[tuple[uuid.UUID, str, datetime]]) -> list[set[str]]:
    """For each (subject, audience, since): the distinct holder keys of the subject's
    tokens for the audience since then."""
    rows = await conn.fetch(
        SELECT_HOLDER_KEYS, [a[0] for a in asks], [a[1] for a in asks], [a[2] for a in asks]
    )
    found: list[set[str]] = [set() for _ in asks]
    for row in rows:
        found[row["n"] - 1] = set(row["keys"])
    return found


def _requesters_of(
    records: list[tuple[int, bool, list[uuid.UUID] | None]] | None, count: int
) -> list[set[uuid.UUID] | None]:
    found: list[set[uuid.UUID] | None] = [None] * count
    for n, seen, others in records or ():
        if not seen:
            found[n - 1] = set(others or ())
    return found


async def requesters(
    conn: Conn, asks: list[tuple[uuid.UUID, uuid.UUID, datetime]]
) -> list[set[uuid.UUID] | None]:
    """For each (subject, client, since): None when the client asked for the subject's
    tokens since then, else the distinct clients that did (maybe none)."""
    records = await conn.fetchval(
        SELECT_REQUESTERS, [a[0] for a in asks], [a[1] for a in asks], [a[2] for a in asks]
    )
    return _requesters_of(records, len(asks))


async def decision_reads(
    conn: Conn,
    contexts: list[tuple[str, datetime]],
    subject_ids: list[uuid.UUID],
    requesters: list[tuple[uuid.UUID, uuid.UUID, datetime]],
) -> DecisionReads:
    """:data:`SELECT_DECISION_READS`: for each (audience, time) of ``contexts`` its
    audience and governing version (or None), each subject's verified evidence, for each
    (subject, client, since) of ``requesters`` what :func:`requesters` answers, and the
    active signing key's id (None if no key is active)."""
    row = await conn.fetchrow(
        SELECT_DECISION_READS,
        [a for a, _ in contexts],
        [t for _, t in contexts],
        subject_ids,
        [r[0] for r in requesters],
        [r[1] for r in requesters],
        [r[2] for r in requesters],
    )
    assert row is not None  # noqa: S101 - one row of scalar subqueries
    return DecisionReads(
        policies.decision_contexts_of(row["contexts"], len(contexts)),
        evidence.verified_of(row["verified"], subject_ids),
        _requesters_of(row["requesters"], len(requesters)),
        row["kid"],
    )


async def holder_keys_seen(conn: Conn, subject_id: uuid.UUID, since: datetime) -> list[HolderKey]:
    rows = await conn.fetch(SELECT_HOLDER_KEYS_SEEN, subject_id, since)
    return [HolderKey(r["cnf_jkt"], r["audience"], r["tokens"], r["last_seen"]) for r in rows]


async def record_batch(
    conn: Conn, issued: list[dict[str, object]], events: list[dict[str, object]]
) -> None:
    """Record a batch: ``issued`` attestation rows (with ``list_id`` and ``idx``), and
    ``events`` (``n``, ``event_id``, ``type``, ``occurred_at``, ``actor``, ``tenant``,
    ``subject_id``, ``data``), all JSON values."""
    await conn.execute(RECORD_BATCH, issued, events)


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
