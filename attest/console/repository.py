"""Console sessions in PostgreSQL: only the SHA-256 of a session id is ever stored."""

from __future__ import annotations

import uuid
from datetime import datetime

from attest.console.models import SessionRecord
from attest.db import Conn

__all__ = ["delete_expired", "delete_session", "find_session", "insert_session"]

INSERT_SESSION = """
INSERT INTO console_sessions (id_sha256, client_id, key_id, csrf_token, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
"""
SELECT_SESSION = """
SELECT client_id, key_id, csrf_token, expires_at FROM console_sessions
WHERE id_sha256 = $1 AND expires_at > $2
"""
DELETE_SESSION = "DELETE FROM console_sessions WHERE id_sha256 = $1"
DELETE_EXPIRED = "DELETE FROM console_sessions WHERE expires_at <= $1"


async def insert_session(
    conn: Conn,
    id_sha256: bytes,
    *,
    client_id: uuid.UUID,
    key_id: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(INSERT_SESSION, id_sha256, client_id, key_id, csrf_token, now, expires_at)


async def find_session(conn: Conn, id_sha256: bytes, now: datetime) -> SessionRecord | None:
    row = await conn.fetchrow(SELECT_SESSION, id_sha256, now)
    if row is None:
        return None
    return SessionRecord(row["client_id"], row["key_id"], row["csrf_token"], row["expires_at"])


async def delete_session(conn: Conn, id_sha256: bytes) -> None:
    await conn.execute(DELETE_SESSION, id_sha256)


async def delete_expired(conn: Conn, now: datetime) -> int:
    status: str = await conn.execute(DELETE_EXPIRED, now)
    return int(status.rsplit(" ", 1)[-1])
