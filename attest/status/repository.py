"""SQL for status lists, token entries, their history and re-evaluation jobs.

The queries that find the tokens a revocation reaches read ``attestations`` (the tokens
domain's table) to select by subject, evidence or key; they never write it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from attest.db import Conn
from attest.db.changes import STATUS_CHANNEL
from attest.status.models import Reevaluation, StatusList

__all__ = [
    "add_reevaluation",
    "changes_version",
    "claim_reevaluation",
    "entries",
    "entries_at",
    "finish_batch",
    "get_list",
    "insert_entry",
    "insert_list",
    "list_for_slot",
    "next_slots",
    "outstanding_of_audience",
    "set_status",
]

LIST_COLUMNS = "id, first_slot, size, perm_key"
# The next $1 slots, each with the list that may hold it, in one round trip (a batch of
# issuances).
NEXT_SLOTS = f"""
WITH s AS MATERIALIZED (SELECT nextval('status_slots') AS slot FROM generate_series(1, $1))
SELECT s.slot, l.id, l.first_slot, l.size, l.perm_key FROM s
LEFT JOIN LATERAL (
    SELECT {LIST_COLUMNS} FROM status_lists WHERE first_slot <= s.slot
    ORDER BY first_slot DESC LIMIT 1
) AS l ON true
"""
SELECT_LIST = f"SELECT {LIST_COLUMNS} FROM status_lists WHERE id = $1"
SELECT_LIST_FOR_SLOT = f"""
SELECT {LIST_COLUMNS} FROM status_lists WHERE first_slot <= $1 ORDER BY first_slot DESC LIMIT 1
"""
SELECT_LAST_LIST = f"SELECT {LIST_COLUMNS} FROM status_lists ORDER BY id DESC LIMIT 1"
INSERT_LIST = f"""
INSERT INTO status_lists (id, first_slot, size, perm_key, created_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING
RETURNING {LIST_COLUMNS}
"""
INSERT_ENTRY = "INSERT INTO token_statuses (list_id, idx, jti) VALUES ($1, $2, $3)"
SELECT_ENTRIES = "SELECT idx, status FROM token_statuses WHERE list_id = $1 AND status <> 0"
SELECT_ENTRIES_AT = """
SELECT idx, status FROM (
    SELECT DISTINCT ON (idx) idx, status FROM token_status_changes
    WHERE list_id = $1 AND changed_at <= $2 ORDER BY idx, id DESC
) AS latest WHERE status <> 0
"""
NOTIFY = "SELECT pg_notify($1, $2)"
SELECT_VERSION = "SELECT coalesce(max(id), 0) FROM token_status_changes WHERE list_id = $1"

# One statement per selection: mark the entries, append their history, count them.
_MARK = """
WITH targets AS ({select}),
changed AS (
    UPDATE token_statuses s SET status = $1, changed_at = $2
    FROM targets t WHERE s.jti = t.jti AND s.status <> $1 AND s.status <> 1
    RETURNING s.list_id, s.idx
),
logged AS (
    INSERT INTO token_status_changes (list_id, idx, status, changed_at)
    SELECT list_id, idx, $1, $2 FROM changed RETURNING 1
)
SELECT count(*) FROM logged
"""
# Outstanding (unexpired at $2) tokens, by what a revocation names ($3).
TARGETS = {
    "jti": "SELECT jti FROM attestations WHERE jti = $3",
    "subject": "SELECT jti FROM attestations WHERE subject_id = $3::uuid AND expires_at > $2",
    "evidence": """SELECT a.jti FROM attestations a JOIN evidence e ON e.subject_id = a.subject_id
        WHERE e.id = $3::uuid AND a.expires_at > $2 AND e.id = ANY (a.evidence_ids)""",
    "kid": "SELECT jti FROM attestations WHERE kid = $3 AND expires_at > $2",
    "audience": "SELECT jti FROM attestations WHERE audience = $3 AND expires_at > $2",
    "jtis": "SELECT unnest($3::text[]) AS jti",
}
MARK = {by: _MARK.format(select=select) for by, select in TARGETS.items()}

INSERT_REEVALUATION = """
INSERT INTO status_reevaluations (audience, cause, requested_at, not_before)
VALUES ($1, $2, $3, $4)
"""
CLAIM_REEVALUATION = """
SELECT id, audience, cause, after_jti FROM status_reevaluations
WHERE done_at IS NULL AND (not_before IS NULL OR not_before <= $1)
ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
"""
SELECT_OUTSTANDING = """
SELECT a.jti, a.subject_id FROM attestations a JOIN token_statuses s ON s.jti = a.jti
WHERE a.audience = $1 AND a.jti > $2 AND a.expires_at > $3 AND s.status <> 1
ORDER BY a.jti LIMIT $4
"""
FINISH_BATCH = """
UPDATE status_reevaluations SET after_jti = $2, checked = checked + $3, revoked = revoked + $4,
    done_at = CASE WHEN $5 THEN $6::timestamptz END
WHERE id = $1
"""


def _list(row: asyncpg.Record | None) -> StatusList | None:
    if row is None:
        return None
    return StatusList(row["id"], row["first_slot"], row["size"], bytes(row["perm_key"]))


async def next_slots(conn: Conn, count: int) -> list[tuple[int, StatusList | None]]:
    """The next ``count`` slots of the counter, each with the last list starting at or
    before it."""
    rows = await conn.fetch(NEXT_SLOTS, count)
    return [(r["slot"], _list(r) if r["id"] is not None else None) for r in rows]


async def list_for_slot(conn: Conn, slot: int) -> StatusList | None:
    return _list(await conn.fetchrow(SELECT_LIST_FOR_SLOT, slot))


async def last_list(conn: Conn) -> StatusList | None:
    return _list(await conn.fetchrow(SELECT_LAST_LIST))


async def insert_list(
    conn: Conn, list_id: int, first_slot: int, size: int, perm_key: bytes, now: datetime
) -> StatusList | None:
    """A new list; None when another instance created that list id first."""
    return _list(await conn.fetchrow(INSERT_LIST, list_id, first_slot, size, perm_key, now))


async def get_list(conn: Conn | asyncpg.Pool, list_id: int) -> StatusList | None:
    return _list(await conn.fetchrow(SELECT_LIST, list_id))


async def insert_entry(conn: Conn, list_id: int, idx: int, jti: str) -> None:
    await conn.execute(INSERT_ENTRY, list_id, idx, jti)


async def set_status(
    conn: Conn, by: str, value: str | uuid.UUID | list[str], status: int, now: datetime
) -> int:
    """Set the entries of the tokens ``by`` names (jti, subject, evidence, kid, jtis) to
    ``status``; an INVALID entry stays INVALID. The number of entries changed."""
    count: int = await conn.fetchval(MARK[by], status, now, str(value) if by != "jtis" else value)
    if count:
        # Every instance drops its ready lists when this commits (attest.db.changes).
        await conn.execute(NOTIFY, STATUS_CHANNEL, "")
    return count


async def entries(conn: Conn, list_id: int) -> list[tuple[int, int]]:
    return [(r["idx"], r["status"]) for r in await conn.fetch(SELECT_ENTRIES, list_id)]


async def entries_at(conn: Conn, list_id: int, at: datetime) -> list[tuple[int, int]]:
    return [(r["idx"], r["status"]) for r in await conn.fetch(SELECT_ENTRIES_AT, list_id, at)]


async def changes_version(conn: Conn, list_id: int) -> int:
    version: int = await conn.fetchval(SELECT_VERSION, list_id)
    return version


async def add_reevaluation(
    conn: Conn, audience: str, cause: str, now: datetime, not_before: datetime | None
) -> None:
    await conn.execute(INSERT_REEVALUATION, audience, cause, now, not_before)


async def claim_reevaluation(conn: Conn, now: datetime) -> Reevaluation | None:
    """The oldest job due at ``now``, locked until the end of the transaction (others skip
    it)."""
    row = await conn.fetchrow(CLAIM_REEVALUATION, now)
    if row is None:
        return None
    return Reevaluation(row["id"], row["audience"], row["cause"], row["after_jti"])


async def outstanding_of_audience(
    conn: Conn, audience: str, after_jti: str, now: datetime, limit: int
) -> list[tuple[str, uuid.UUID]]:
    rows = await conn.fetch(SELECT_OUTSTANDING, audience, after_jti, now, limit)
    return [(r["jti"], r["subject_id"]) for r in rows]


async def finish_batch(
    conn: Conn, job: int, after_jti: str, checked: int, revoked: int, done: bool, now: datetime
) -> None:
    await conn.execute(FINISH_BATCH, job, after_jti, checked, revoked, done, now)
