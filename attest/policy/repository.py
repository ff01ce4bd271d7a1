"""SQL for policy versions and audiences. Rows become models here."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from attest.db import Conn
from attest.policy.impact import Group
from attest.policy.models import Audience, PolicyVersion, VersionSummary

__all__ = [
    "audiences_of_policy",
    "decision_contexts_of",
    "decision_contexts_part",
    "fact_signatures",
    "get_audience",
    "get_policy",
    "governing_policy",
    "insert_audience_if_absent",
    "insert_policy",
    "latest_policy",
    "list_audiences",
    "list_policies",
    "list_versions",
    "lock_audience",
    "policy_document",
    "policy_versions",
    "set_suspended",
    "upsert_audience",
]

POLICY_COLUMNS = "name, version, document, digest, created_at"
AUDIENCE_COLUMNS = (
    "audience, policy_name, token_lifetime, binding_required, updated_at, suspended_at, "
    "max_holder_keys"
)
_AUDIENCE_NAMES = tuple(c.strip() for c in AUDIENCE_COLUMNS.split(","))
SELECT_LATEST = f"""
SELECT {POLICY_COLUMNS} FROM policies WHERE name = $1 ORDER BY version DESC LIMIT 1
"""
SELECT_VERSION = f"SELECT {POLICY_COLUMNS} FROM policies WHERE name = $1 AND version = $2"
# The version that governs at $2: the highest one already in effect.
SELECT_GOVERNING = f"""
SELECT {POLICY_COLUMNS} FROM policies
WHERE name = $1 AND (effective_at IS NULL OR effective_at <= $2)
ORDER BY version DESC LIMIT 1
"""
SELECT_VERSIONS = (
    "SELECT version, digest, created_at FROM policies WHERE name = $1 ORDER BY version"
)
INSERT_POLICY = f"""
INSERT INTO policies (name, version, document, digest, created_at, created_by, effective_at)
VALUES ($1, $2, $3, $4, now(), $5, $6)
ON CONFLICT (name, version) DO NOTHING
RETURNING {POLICY_COLUMNS}
"""
SELECT_AUDIENCE = f"SELECT {AUDIENCE_COLUMNS} FROM audiences WHERE audience = $1"
# The configuration of a batch's decisions, as a part of the batch's read statement
# (attest/tokens/repository.py: sent after the audience locks, so that its snapshot sees
# every change that committed before the locks were granted): for each (audience AUD[n],
# time AT[n]), the audience and the version of its policy that governs then (its number and
# digest; the document itself is immutable, read by digest only when not cached), as an
# array of records (n, the audience's columns, version, digest, created_at). Audiences
# that do not exist yield no record.
DECISION_CONTEXTS_PART = f"""(
SELECT array_agg(ROW(j.n, {", ".join("a." + c for c in _AUDIENCE_NAMES)},
                     p.version, p.digest, p.created_at))
FROM unnest({{aud}}::text[], {{at}}::timestamptz[]) WITH ORDINALITY AS j(audience, at, n)
JOIN audiences a ON a.audience = j.audience
LEFT JOIN LATERAL (
    SELECT version, digest, created_at FROM policies
    WHERE name = a.policy_name AND (effective_at IS NULL OR effective_at <= j.at)
    ORDER BY version DESC LIMIT 1
) AS p ON true
)"""
SELECT_DOCUMENT = "SELECT document FROM policies WHERE name = $1 AND version = $2 AND digest = $3"
SELECT_AUDIENCES = f"SELECT {AUDIENCE_COLUMNS} FROM audiences ORDER BY audience"
SELECT_AUDIENCES_OF_POLICY = (
    "SELECT audience FROM audiences WHERE policy_name = $1 ORDER BY audience"
)
UPSERT_AUDIENCE = f"""
INSERT INTO audiences (audience, policy_name, token_lifetime, binding_required, updated_at,
    max_holder_keys)
VALUES ($1, $2, $3, $4, now(), $5)
ON CONFLICT (audience) DO UPDATE SET policy_name = excluded.policy_name,
    token_lifetime = excluded.token_lifetime, binding_required = excluded.binding_required,
    max_holder_keys = excluded.max_holder_keys, updated_at = now()
RETURNING {AUDIENCE_COLUMNS}
"""
SET_SUSPENDED = f"""
UPDATE audiences SET suspended_at = $2, updated_at = now() WHERE audience = $1
RETURNING {AUDIENCE_COLUMNS}
"""
INSERT_AUDIENCE_IF_ABSENT = """
INSERT INTO audiences (audience, policy_name, token_lifetime, binding_required)
VALUES ($1, $2, $3, $4) ON CONFLICT (audience) DO NOTHING
"""
#: The audience lock's key and seed (LOCK_AUDIENCE), also for a statement of another domain
#: that takes them shared with its own work (issuance's subject locks).
AUDIENCE_LOCK_SEED = 7


def audience_lock_key(audience: str) -> str:
    return "audience|" + audience


# One advisory lock per audience name, held to the end of the transaction: token decisions
# take it shared, a change of what governs the audience (its binding, a new version of its
# policy) takes it exclusive. Seed 7 keeps these keys apart from the document locks.
LOCK_AUDIENCE = {
    "share": "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, $2))",
    "exclusive": "SELECT pg_advisory_xact_lock(hashtextextended($1, $2))",
}


# Every subject in scope ($3: a tenant, or NULL for all) reduced to the signature of its
# verified evidence's facts at $1: "attribute=value|assurance|current|age limits satisfied"
# (of the ascending $2 limits, in days), sorted and joined; subjects counted per signature.
# policy/impact.py explains why this decides exactly as evaluating each subject would.
FACT_SIGNATURES = """
WITH facts AS (
    SELECT s.id, s.revoked_at IS NOT NULL AS revoked,
           a.key || '=' || v.value || '|' || e.assurance || '|' ||
           (e.reverify_at > $1)::int || '|' ||
           (SELECT count(*) FROM unnest($2::int[]) AS t(days)
            WHERE e.verified_at >= $1 - make_interval(days => t.days)) AS fact
    FROM subjects s
    LEFT JOIN evidence e ON e.subject_id = s.id AND e.status = 'verified'
        AND e.verified_at IS NOT NULL AND e.reverify_at IS NOT NULL
    LEFT JOIN LATERAL jsonb_each(e.attributes) AS a(key, val) ON true
    LEFT JOIN LATERAL jsonb_array_elements_text(
        CASE jsonb_typeof(a.val) WHEN 'array' THEN a.val ELSE jsonb_build_array(a.val) END
    ) AS v(value) ON true
    WHERE $3::text IS NULL OR s.tenant = $3
),
signed AS (
    SELECT id, revoked, coalesce(string_agg(fact, ';' ORDER BY fact), '') AS signature
    FROM facts GROUP BY id, revoked
)
SELECT revoked, signature, count(*) AS subjects FROM signed GROUP BY revoked, signature
"""


def _policy(row: asyncpg.Record | None) -> PolicyVersion | None:
    if row is None:
        return None
    return PolicyVersion(
        name=row["name"],
        version=row["version"],
        document=row["document"],
        digest=row["digest"],
        created_at=row["created_at"],
    )


def _audience(row: asyncpg.Record | Mapping[str, Any]) -> Audience:
    return Audience(
        audience=row["audience"],
        policy_name=row["policy_name"],
        token_lifetime=row["token_lifetime"],
        binding_required=row["binding_required"],
        updated_at=row["updated_at"],
        suspended_at=row["suspended_at"],
        max_holder_keys=row["max_holder_keys"],
    )


async def latest_policy(conn: Conn, name: str) -> PolicyVersion | None:
    return _policy(await conn.fetchrow(SELECT_LATEST, name))


async def governing_policy(conn: Conn, name: str, now: datetime) -> PolicyVersion | None:
    return _policy(await conn.fetchrow(SELECT_GOVERNING, name, now))


async def get_policy(conn: Conn, name: str, version: int) -> PolicyVersion | None:
    return _policy(await conn.fetchrow(SELECT_VERSION, name, version))


async def list_versions(conn: Conn, name: str) -> list[VersionSummary]:
    return [
        VersionSummary(r["version"], r["digest"], r["created_at"])
        for r in await conn.fetch(SELECT_VERSIONS, name)
    ]


async def insert_policy(
    conn: Conn,
    document: dict[str, Any],
    digest: str,
    created_by: uuid.UUID | None,
    effective_at: datetime | None = None,
) -> PolicyVersion | None:
    """Insert a version; None when that version exists already (a concurrent publish)."""
    row = await conn.fetchrow(
        INSERT_POLICY,
        document["name"],
        document["version"],
        document,
        digest,
        created_by,
        effective_at,
    )
    return _policy(row)


async def fact_signatures(
    conn: Conn, tenant: str | None, now: datetime, limits: list[int]
) -> list[Group]:
    """The subjects in scope grouped by the signature of their facts (policy/impact.py)."""
    rows = await conn.fetch(FACT_SIGNATURES, now, limits, tenant)
    return [Group(r["revoked"], r["signature"], r["subjects"]) for r in rows]


async def lock_audience(conn: Conn, audience: str, mode: str) -> None:
    """``mode`` is "share" (a decision) or "exclusive" (a change of what governs it)."""
    await conn.execute(LOCK_AUDIENCE[mode], audience_lock_key(audience), AUDIENCE_LOCK_SEED)


def decision_contexts_part(aud: str, at: str) -> str:
    """:data:`DECISION_CONTEXTS_PART` over the statement's parameters ``aud`` and ``at``
    (such as ``"$1"``), for a statement that reads it with others in one round trip."""
    return DECISION_CONTEXTS_PART.format(aud=aud, at=at)


def decision_contexts_of(
    records: list[tuple[Any, ...]] | None, count: int
) -> list[tuple[Audience, VersionSummary | None] | None]:
    """The value of :func:`decision_contexts_part` for ``count`` (audience, time) pairs:
    for each, the audience and the (number, digest) of the policy version governing it
    then; None for an audience that does not exist."""
    found: list[tuple[Audience, VersionSummary | None] | None] = [None] * count
    for n, *bound, version, digest, created_at in records or ():
        found[n - 1] = (
            _audience(dict(zip(_AUDIENCE_NAMES, bound, strict=True))),
            VersionSummary(version, digest, created_at) if version is not None else None,
        )
    return found


async def policy_document(conn: Conn, name: str, version: int, digest: str) -> dict[str, Any]:
    document: dict[str, Any] = await conn.fetchval(SELECT_DOCUMENT, name, version, digest)
    return document


async def get_audience(conn: Conn, audience: str) -> Audience | None:
    row = await conn.fetchrow(SELECT_AUDIENCE, audience)
    return _audience(row) if row is not None else None


async def list_audiences(conn: Conn | asyncpg.Pool) -> list[Audience]:
    return [_audience(r) for r in await conn.fetch(SELECT_AUDIENCES)]


async def audiences_of_policy(conn: Conn, policy_name: str) -> list[str]:
    return [r["audience"] for r in await conn.fetch(SELECT_AUDIENCES_OF_POLICY, policy_name)]


async def upsert_audience(
    conn: Conn,
    audience: str,
    policy_name: str,
    token_lifetime: int,
    binding_required: bool,
    max_holder_keys: int | None = None,
) -> Audience:
    row = await conn.fetchrow(
        UPSERT_AUDIENCE, audience, policy_name, token_lifetime, binding_required, max_holder_keys
    )
    assert row is not None  # noqa: S101 - INSERT .. RETURNING always returns the row
    return _audience(row)


async def set_suspended(conn: Conn, audience: str, at: datetime | None) -> Audience | None:
    row = await conn.fetchrow(SET_SUSPENDED, audience, at)
    return _audience(row) if row is not None else None


async def insert_audience_if_absent(
    conn: Conn, audience: str, policy_name: str, token_lifetime: int
) -> None:
    await conn.execute(INSERT_AUDIENCE_IF_ABSENT, audience, policy_name, token_lifetime, False)


# Every policy's latest version (the console's list of policies).
SELECT_POLICIES = f"""
SELECT DISTINCT ON (name) {POLICY_COLUMNS} FROM policies ORDER BY name, version DESC
"""
SELECT_POLICY_VERSIONS = f"SELECT {POLICY_COLUMNS} FROM policies WHERE name = $1 ORDER BY version"


async def list_policies(conn: Conn | asyncpg.Pool) -> list[PolicyVersion]:
    rows = await conn.fetch(SELECT_POLICIES)
    return [p for p in (_policy(r) for r in rows) if p is not None]


async def policy_versions(conn: Conn | asyncpg.Pool, name: str) -> list[PolicyVersion]:
    """Every version of ``name`` with its document, oldest first."""
    rows = await conn.fetch(SELECT_POLICY_VERSIONS, name)
    return [p for p in (_policy(r) for r in rows) if p is not None]
