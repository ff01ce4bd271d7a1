"""SQL of the transparency log: tree size, tiles, checkpoints, the log key, and the one
write the log makes to the audit trail (each event's ``log_index``, once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from attest.audit.models import AuditEvent
from attest.db import Conn
from attest.log.models import LogKey, SignedCheckpoint
from attest.verify._tlog import vkey

__all__ = [
    "LOG_LOCK",
    "assign_indexes",
    "entries",
    "event_for_jti",
    "get_log_key",
    "insert_checkpoint",
    "insert_log_key",
    "latest_checkpoint",
    "list_checkpoints",
    "list_log_keys",
    "lock_size",
    "read_tiles",
    "set_size",
    "unsequenced",
    "write_tiles",
]

#: Advisory lock key of the sequencer ("attest" + 7): one leader at a time.
LOG_LOCK = 0x617474657307
#: Advisory lock key of log key creation ("attest" + 8), taken per transaction.
LOG_KEY_LOCK = 0x617474657308

EVENT_COLUMNS = "id, event_id, type, occurred_at, actor, tenant, subject_id, data, log_index"

LOCK_SIZE = "SELECT size FROM log_state FOR UPDATE"
SET_SIZE = "UPDATE log_state SET size = $1"
# Committed events not yet in the log, oldest first: read committed sees only committed rows.
SELECT_UNSEQUENCED = f"""
SELECT {EVENT_COLUMNS} FROM audit_events WHERE log_index IS NULL ORDER BY id LIMIT $1
"""
ASSIGN = """
UPDATE audit_events AS e SET log_index = v.idx
FROM unnest($1::bigint[], $2::bigint[]) AS v(id, idx)
WHERE e.id = v.id AND e.log_index IS NULL
"""
SELECT_TILES = """
SELECT t.level, t.idx, t.hashes FROM log_tiles AS t
JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx) ON (t.level, t.idx) = (w.level, w.idx)
"""
UPSERT_TILES = """
INSERT INTO log_tiles (level, idx, hashes)
SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes
WHERE log_tiles.hashes <> EXCLUDED.hashes
"""
SELECT_LATEST_CHECKPOINT = """
SELECT size, root, note, signed_at FROM log_checkpoints WHERE key_id = $1
ORDER BY size DESC LIMIT 1
"""
INSERT_CHECKPOINT = """
INSERT INTO log_checkpoints (size, root, note, key_id, signed_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (key_id, size) DO NOTHING
"""
SELECT_ENTRIES = f"""
SELECT {EVENT_COLUMNS} FROM audit_events
WHERE log_index >= $1 AND log_index < $2 ORDER BY log_index
"""
SELECT_ISSUED = f"""
SELECT {EVENT_COLUMNS} FROM audit_events
WHERE type = 'token.issued' AND data->>'jti' = $1 ORDER BY id LIMIT 1
"""
LOG_KEY_COLUMNS = "origin, key_id, public_key, kid, keystore_ref, created_at"
SELECT_LOG_KEY = f"SELECT {LOG_KEY_COLUMNS} FROM log_keys WHERE origin = $1"
SELECT_LOG_KEYS = f"SELECT {LOG_KEY_COLUMNS} FROM log_keys ORDER BY created_at, origin"
LOCK_LOG_KEY = "SELECT pg_advisory_xact_lock($1)"
INSERT_LOG_KEY = """
INSERT INTO log_keys (origin, key_id, public_key, kid, keystore_ref, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
"""


def _event(r: asyncpg.Record) -> tuple[AuditEvent, int | None]:
    event = AuditEvent(
        id=r["id"],
        event_id=r["event_id"],
        type=r["type"],
        occurred_at=r["occurred_at"],
        actor=r["actor"],
        tenant=r["tenant"],
        subject_id=r["subject_id"],
        data=r["data"],
        log_index=r["log_index"],
    )
    return event, r["log_index"]


async def lock_size(conn: Conn) -> int:
    size: int = await conn.fetchval(LOCK_SIZE)
    return size


async def set_size(conn: Conn, size: int) -> None:
    await conn.execute(SET_SIZE, size)


async def unsequenced(conn: Conn, limit: int) -> list[AuditEvent]:
    return [_event(r)[0] for r in await conn.fetch(SELECT_UNSEQUENCED, limit)]


async def assign_indexes(conn: Conn, ids: list[int], first: int) -> int:
    """Give events ``ids`` the positions first, first+1, ...; the number of rows updated."""
    status = await conn.execute(ASSIGN, ids, list(range(first, first + len(ids))))
    return int(status.split()[-1])


async def read_tiles(conn: Conn, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not wanted:
        return {}
    levels, indexes = zip(*sorted(wanted), strict=True)
    rows = await conn.fetch(SELECT_TILES, list(levels), list(indexes))
    return {(r["level"], r["idx"]): bytes(r["hashes"]) for r in rows}


async def write_tiles(conn: Conn, tiles: dict[tuple[int, int], bytes]) -> None:
    if tiles:
        keys = sorted(tiles)
        await conn.execute(
            UPSERT_TILES, [k[0] for k in keys], [k[1] for k in keys], [tiles[k] for k in keys]
        )


async def latest_checkpoint(conn: Conn, key_id: str) -> SignedCheckpoint | None:
    """The largest checkpoint signed by the log key ``key_id`` (this origin's)."""
    r = await conn.fetchrow(SELECT_LATEST_CHECKPOINT, key_id)
    if r is None:
        return None
    return SignedCheckpoint(r["size"], bytes(r["root"]), r["note"], r["signed_at"])


async def insert_checkpoint(conn: Conn, checkpoint: SignedCheckpoint, key_id: str) -> None:
    await conn.execute(
        INSERT_CHECKPOINT,
        checkpoint.size,
        checkpoint.root,
        checkpoint.note,
        key_id,
        checkpoint.signed_at,
    )


async def entries(conn: Conn, start: int, end: int) -> list[AuditEvent]:
    """The events at log positions [start, end), in log order."""
    return [_event(r)[0] for r in await conn.fetch(SELECT_ENTRIES, start, end)]


async def event_for_jti(conn: Conn, jti: str) -> tuple[AuditEvent, int | None] | None:
    r = await conn.fetchrow(SELECT_ISSUED, jti)
    return None if r is None else _event(r)


def _log_key(r: asyncpg.Record) -> LogKey:
    public = bytes(r["public_key"])
    return LogKey(
        origin=r["origin"],
        key_id=r["key_id"],
        public_key=public,
        kid=r["kid"],
        keystore_ref=r["keystore_ref"],
        created_at=r["created_at"],
        vkey=vkey(r["origin"], public),
    )


async def get_log_key(conn: Conn, origin: str, *, lock: bool = False) -> LogKey | None:
    """The log key of ``origin``; ``lock`` first serialises creation (inside a transaction)."""
    if lock:
        await conn.execute(LOCK_LOG_KEY, LOG_KEY_LOCK)
    r = await conn.fetchrow(SELECT_LOG_KEY, origin)
    return None if r is None else _log_key(r)


async def list_log_keys(conn: Conn) -> list[LogKey]:
    return [_log_key(r) for r in await conn.fetch(SELECT_LOG_KEYS)]


async def insert_log_key(conn: Conn, key: dict[str, Any], created_at: datetime) -> None:
    await conn.execute(
        INSERT_LOG_KEY,
        key["origin"],
        key["key_id"],
        key["public_key"],
        key["kid"],
        key["keystore_ref"],
        created_at,
    )


# A page of checkpoints by one log key, newest first, below tree size $2.
SELECT_CHECKPOINTS = """
SELECT size, root, note, signed_at FROM log_checkpoints WHERE key_id = $1 AND size < $2
ORDER BY size DESC LIMIT $3
"""


async def list_checkpoints(
    conn: Conn, key_id: str, below: int, limit: int
) -> list[SignedCheckpoint]:
    """Up to ``limit`` checkpoints of ``key_id`` smaller than ``below``, largest first."""
    rows = await conn.fetch(SELECT_CHECKPOINTS, key_id, below, limit)
    return [SignedCheckpoint(r["size"], bytes(r["root"]), r["note"], r["signed_at"]) for r in rows]
