"""SQL for API clients. Rows become :class:`Client` or :class:`ClientRecord` here and go no
further."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from attest.clients.apikeys import secret_digest
from attest.clients.models import Client, ClientRecord, KeyRecord, NewKey
from attest.db import Conn

__all__ = [
    "count_clients",
    "count_gate",
    "count_hit",
    "count_read",
    "find_by_key_id",
    "get_client",
    "insert_client",
    "list_clients",
    "prune_counters",
    "related",
    "replace_key",
    "revoke",
]

# The current key of an enabled, unexpired client, or a superseded key still in its grace.
# "valid_until": the first moment the key stops working by time alone (the client's expiry or
# the rotated-out key's grace), so a cached entry can be checked against a later ``now``.
SELECT_BY_KEY_ID = """
SELECT c.id, c.name, c.tenant, c.scopes, c.is_admin, c.secret_sha256 AS digest,
       c.expires_at AS valid_until
FROM api_clients c
WHERE c.key_id = $1 AND c.disabled_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > $2)
UNION ALL
SELECT c.id, c.name, c.tenant, c.scopes, c.is_admin, k.secret_sha256 AS digest,
       LEAST(k.not_after, c.expires_at) AS valid_until
FROM api_client_keys k JOIN api_clients c ON c.id = k.client_id
WHERE k.key_id = $1 AND k.not_after > $2
  AND c.disabled_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > $2)
"""
INSERT_CLIENT = """
INSERT INTO api_clients
    (id, key_id, secret_sha256, name, tenant, scopes, is_admin, created_by, created_at,
     expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
INSERT_LINK = """
INSERT INTO client_links (from_client, to_client, kind, at) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
"""
COUNT_CLIENTS = "SELECT count(*) FROM api_clients"
RECORD_COLUMNS = (
    "id, name, tenant, scopes, is_admin, key_id, created_at, created_by, expires_at, "
    "disabled_at, disabled_by"
)
SELECT_CLIENT = f"SELECT {RECORD_COLUMNS} FROM api_clients WHERE id = $1"
SELECT_CLIENT_FOR_UPDATE = SELECT_CLIENT + " FOR UPDATE"
# $1 NULL: every tenant (an admin caller).
LIST_CLIENTS = f"""
SELECT {RECORD_COLUMNS} FROM api_clients
WHERE ($1::text IS NULL OR tenant = $1) ORDER BY created_at, id LIMIT $2
"""
REVOKE = f"""
UPDATE api_clients SET disabled_at = $2, disabled_by = $3
WHERE id = $1 AND disabled_at IS NULL
RETURNING {RECORD_COLUMNS}
"""
# A rotation: the previous key keeps working until $4 (the end of the grace); keys superseded
# earlier never outlive the newest grace.
SUPERSEDE_KEY = """
WITH shortened AS (
    UPDATE api_client_keys SET not_after = LEAST(not_after, $4)
    WHERE client_id = $1
)
INSERT INTO api_client_keys (key_id, client_id, secret_sha256, superseded_at, not_after)
SELECT key_id, id, secret_sha256, $3, $4 FROM api_clients WHERE id = $1 AND key_id = $2
"""
REPLACE_KEY = f"""
UPDATE api_clients SET key_id = $2, secret_sha256 = $3 WHERE id = $1
RETURNING {RECORD_COLUMNS}
"""
# Related: one reaches the other along the links (created or rotated, directly or through
# other clients), in either direction: b is among a's ancestors or a among b's. Walking up
# (to_client -> from_client, indexed) keeps both walks short even when one of them is the
# admin that created every client. UNION (not UNION ALL) stops at cycles.
RELATED = """
WITH RECURSIVE
up_a(id) AS (
    SELECT $1::uuid
    UNION
    SELECT l.from_client FROM client_links l JOIN up_a u ON l.to_client = u.id
),
up_b(id) AS (
    SELECT $2::uuid
    UNION
    SELECT l.from_client FROM client_links l JOIN up_b u ON l.to_client = u.id
)
SELECT EXISTS (SELECT 1 FROM up_a WHERE id = $2) OR EXISTS (SELECT 1 FROM up_b WHERE id = $1)
"""

# One statement per hit, so concurrent instances never lose a count: a new window restarts
# the counter at 1, the same window adds 1.
COUNT_HIT = """
INSERT INTO rate_counters (key, window_start, count) VALUES ($1, $2, 1)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN rate_counters.window_start = EXCLUDED.window_start
                 THEN rate_counters.count + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING count
"""
# The authentication gate in one round trip: the key id's failures in its window ($1, $2)
# and, unless they reached the limit ($5), one hit on the client's request counter ($3, $4).
COUNT_GATE = """
WITH failures AS (
    SELECT coalesce((SELECT count FROM rate_counters WHERE key = $1 AND window_start = $2), 0)
        AS n
),
hit AS (
    INSERT INTO rate_counters (key, window_start, count)
    SELECT $3, $4, $6::int FROM failures WHERE failures.n < $5
    ON CONFLICT (key) DO UPDATE SET
        count = CASE WHEN rate_counters.window_start = EXCLUDED.window_start
                     THEN rate_counters.count + EXCLUDED.count ELSE EXCLUDED.count END,
        window_start = EXCLUDED.window_start
    RETURNING count
)
SELECT failures.n AS failures, (SELECT count FROM hit) AS hits FROM failures
"""
COUNT_READ = "SELECT count FROM rate_counters WHERE key = $1 AND window_start = $2"
PRUNE_COUNTERS = "DELETE FROM rate_counters WHERE window_start < $1"


def _record(row: asyncpg.Record) -> ClientRecord:
    return ClientRecord(
        id=row["id"],
        name=row["name"],
        tenant=row["tenant"],
        scopes=list(row["scopes"]),
        is_admin=row["is_admin"],
        key_id=row["key_id"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        expires_at=row["expires_at"],
        disabled_at=row["disabled_at"],
        disabled_by=row["disabled_by"],
    )


async def find_by_key_id(conn: Conn | asyncpg.Pool, key_id: str, now: datetime) -> KeyRecord | None:
    """The enabled, unexpired client a key id (current, or in its grace) belongs to, that
    key's secret digest, and until when it works."""
    row = await conn.fetchrow(SELECT_BY_KEY_ID, key_id, now)
    if row is None:
        return None
    client = Client(
        id=row["id"],
        name=row["name"],
        tenant=row["tenant"],
        scopes=frozenset(row["scopes"]),
        is_admin=row["is_admin"],
        key_id=key_id,
    )
    return KeyRecord(client, bytes(row["digest"]), row["valid_until"])


async def insert_client(
    conn: Conn,
    *,
    key: NewKey,
    name: str,
    tenant: str,
    scopes: list[str],
    is_admin: bool,
    created_by: uuid.UUID | None,
    now: datetime,
    expires_at: datetime | None = None,
) -> uuid.UUID:
    """Store a new client (only the hash of its secret) and the link from its creator."""
    client_id = uuid.uuid4()
    await conn.execute(
        INSERT_CLIENT,
        client_id,
        key.key_id,
        secret_digest(key.secret),
        name,
        tenant,
        scopes,
        is_admin,
        created_by,
        now,
        expires_at,
    )
    if created_by is not None:
        await conn.execute(INSERT_LINK, created_by, client_id, "created", now)
    return client_id


async def count_clients(conn: Conn) -> int:
    count: int = await conn.fetchval(COUNT_CLIENTS)
    return count


async def get_client(
    conn: Conn, client_id: uuid.UUID, *, for_update: bool = False
) -> ClientRecord | None:
    row = await conn.fetchrow(SELECT_CLIENT_FOR_UPDATE if for_update else SELECT_CLIENT, client_id)
    return _record(row) if row else None


async def list_clients(conn: Conn, tenant: str | None, limit: int) -> list[ClientRecord]:
    return [_record(r) for r in await conn.fetch(LIST_CLIENTS, tenant, limit)]


async def revoke(
    conn: Conn, client_id: uuid.UUID, now: datetime, by: uuid.UUID | None
) -> ClientRecord | None:
    """Disable a client; None when it was disabled already."""
    row = await conn.fetchrow(REVOKE, client_id, now, by)
    return _record(row) if row else None


async def replace_key(
    conn: Conn,
    current: ClientRecord,
    key: NewKey,
    *,
    now: datetime,
    not_after: datetime,
    by: uuid.UUID | None,
) -> ClientRecord:
    """Give a client (locked by the caller) a new key; the previous one works until
    ``not_after``; the rotating client is linked to it."""
    await conn.execute(SUPERSEDE_KEY, current.id, current.key_id, now, not_after)
    row = await conn.fetchrow(REPLACE_KEY, current.id, key.key_id, secret_digest(key.secret))
    assert row is not None  # noqa: S101 - the caller holds the row locked
    if by is not None and by != current.id:
        await conn.execute(INSERT_LINK, by, current.id, "rotated", now)
    return _record(row)


async def related(conn: Conn, a: uuid.UUID, b: uuid.UUID) -> bool:
    found: bool = await conn.fetchval(RELATED, a, b)
    return found


async def count_hit(conn: Conn | asyncpg.Pool, key: str, window_start: int) -> int:
    count: int = await conn.fetchval(COUNT_HIT, key, window_start)
    return count


async def count_read(conn: Conn | asyncpg.Pool, key: str, window_start: int) -> int:
    count: int | None = await conn.fetchval(COUNT_READ, key, window_start)
    return count or 0


async def count_gate(
    conn: Conn | asyncpg.Pool,
    failures_key: str,
    failures_window: int,
    hit_key: str,
    hit_window: int,
    limit: int,
    hits: int = 1,
) -> tuple[int, int]:
    """(failures so far, requests so far, ``hits`` of them counted now, or 0 when the
    failures reached ``limit``)."""
    row = await conn.fetchrow(
        COUNT_GATE, failures_key, failures_window, hit_key, hit_window, limit, hits
    )
    assert row is not None  # noqa: S101 - one row always
    return row["failures"], row["hits"] or 0


async def prune_counters(conn: Conn | asyncpg.Pool, before: int) -> None:
    await conn.execute(PRUNE_COUNTERS, before)
