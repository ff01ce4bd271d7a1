"""SQL for signing-key records (public keys and lifecycle state; never private keys).

Rows become :class:`~attest.keys.models.SigningKey` here and go no further.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from attest.db import Conn
from attest.db.changes import KEYS_CHANNEL
from attest.keys.models import SigningKey

__all__ = [
    "ACTIVE_KID_PART",
    "KEYS_LOCK",
    "current_signing_key",
    "current_signing_kid",
    "get_key",
    "insert_active_key",
    "insert_pending_key",
    "keys_in_state",
    "last_expiry",
    "list_keys",
    "lock_keys",
    "max_audience_lifetime",
    "published_keys",
    "published_states",
    "set_state",
    "try_lock_keys",
]

#: Advisory lock key for key transitions ("attest" + 3): one instance rotates at a time.
KEYS_LOCK = 0x617474657303

KEY_COLUMNS = """kid, alg, state, public_jwk, keystore_ref, created_at, activated_at, retiring_at,
retired_at, compromised_at, activate_after, retire_after"""
# The signing key: the active key activated last (normally the only active key).
SELECT_CURRENT = f"""
SELECT {KEY_COLUMNS} FROM signing_keys WHERE state = 'active'
ORDER BY activated_at DESC, kid LIMIT 1
"""
SELECT_CURRENT_KID = """
SELECT kid FROM signing_keys WHERE state = 'active' ORDER BY activated_at DESC, kid LIMIT 1
"""
#: SELECT_CURRENT_KID as a part of another statement (a batch's decision reads).
ACTIVE_KID_PART = f"({SELECT_CURRENT_KID.strip()})"
SELECT_PUBLISHED = f"""
SELECT {KEY_COLUMNS} FROM signing_keys WHERE state IN ('pending', 'active', 'retiring')
ORDER BY created_at, kid
"""
# Just what decides the JWKS document: kid is a thumbprint and identity columns are
# immutable (0003_keys.sql), so the same (kid, state) list means the same published keys.
SELECT_PUBLISHED_STATES = """
SELECT kid, state FROM signing_keys WHERE state IN ('pending', 'active', 'retiring')
ORDER BY created_at, kid
"""
SELECT_ALL = f"SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"
SELECT_ONE = f"SELECT {KEY_COLUMNS} FROM signing_keys WHERE kid = $1"
SELECT_IN_STATE = f"SELECT {KEY_COLUMNS} FROM signing_keys WHERE state = $1 ORDER BY created_at"
INSERT_ACTIVE = """
INSERT INTO signing_keys (kid, alg, state, public_jwk, keystore_ref, created_at, activated_at)
VALUES ($1, $2, 'active', $3, $4, $5, $5)
"""
INSERT_PENDING = """
INSERT INTO signing_keys (kid, alg, state, public_jwk, keystore_ref, created_at, activate_after)
VALUES ($1, $2, 'pending', $3, $4, $5, $6)
"""
# One statement per target state; the trigger of 0003_keys.sql refuses any other transition.
UPDATE_STATE = {
    "active": "UPDATE signing_keys SET state = 'active', activated_at = $2 WHERE kid = $1",
    "retiring": """UPDATE signing_keys SET state = 'retiring', retiring_at = $2, retire_after = $3
        WHERE kid = $1""",
    "retired": "UPDATE signing_keys SET state = 'retired', retired_at = $2 WHERE kid = $1",
    "compromised": """UPDATE signing_keys SET state = 'compromised', compromised_at = $2
        WHERE kid = $1""",
}
NOTIFY = "SELECT pg_notify($1, $2)"
SELECT_LAST_EXPIRY = "SELECT max(expires_at) FROM attestations WHERE kid = $1"
SELECT_MAX_LIFETIME = "SELECT max(token_lifetime) FROM audiences"


async def lock_keys(conn: Conn) -> None:
    """Take the key-transition lock until the end of the current transaction (waits)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", KEYS_LOCK)


async def try_lock_keys(conn: Conn) -> bool:
    """Take the key-transition lock for this transaction if no other instance holds it."""
    got: bool = await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", KEYS_LOCK)
    return got


def _key(row: asyncpg.Record) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        alg=row["alg"],
        state=row["state"],
        public_jwk=row["public_jwk"],
        keystore_ref=row["keystore_ref"],
        created_at=row["created_at"],
        activated_at=row["activated_at"],
        retiring_at=row["retiring_at"],
        retired_at=row["retired_at"],
        compromised_at=row["compromised_at"],
        activate_after=row["activate_after"],
        retire_after=row["retire_after"],
    )


async def current_signing_key(conn: Conn | asyncpg.Pool) -> SigningKey | None:
    row = await conn.fetchrow(SELECT_CURRENT)
    return _key(row) if row is not None else None


async def current_signing_kid(conn: Conn | asyncpg.Pool) -> str | None:
    kid: str | None = await conn.fetchval(SELECT_CURRENT_KID)
    return kid


async def get_key(conn: Conn | asyncpg.Pool, kid: str) -> SigningKey | None:
    row = await conn.fetchrow(SELECT_ONE, kid)
    return _key(row) if row is not None else None


async def keys_in_state(conn: Conn, state: str) -> list[SigningKey]:
    return [_key(r) for r in await conn.fetch(SELECT_IN_STATE, state)]


async def published_keys(conn: Conn | asyncpg.Pool) -> list[SigningKey]:
    """The keys of the JWKS (pending, active, retiring), oldest first."""
    return [_key(r) for r in await conn.fetch(SELECT_PUBLISHED)]


async def published_states(conn: Conn | asyncpg.Pool) -> tuple[tuple[str, str], ...]:
    """(kid, state) of each key :func:`published_keys` returns, in the same order."""
    return tuple((r["kid"], r["state"]) for r in await conn.fetch(SELECT_PUBLISHED_STATES))


async def list_keys(conn: Conn | asyncpg.Pool) -> list[SigningKey]:
    """Every key ever made (key history), oldest first."""
    return [_key(r) for r in await conn.fetch(SELECT_ALL)]


async def insert_active_key(
    conn: Conn,
    kid: str,
    alg: str,
    public_jwk: dict[str, str],
    keystore_ref: str,
    now: datetime,
) -> None:
    await conn.execute(INSERT_ACTIVE, kid, alg, public_jwk, keystore_ref, now)
    await notify_keys(conn, kid)


async def insert_pending_key(
    conn: Conn,
    kid: str,
    alg: str,
    public_jwk: dict[str, str],
    keystore_ref: str,
    now: datetime,
    activate_after: datetime,
) -> None:
    await conn.execute(INSERT_PENDING, kid, alg, public_jwk, keystore_ref, now, activate_after)
    await notify_keys(conn, kid)


async def set_state(
    conn: Conn, kid: str, state: str, at: datetime, until: datetime | None = None
) -> None:
    if state == "retiring":
        await conn.execute(UPDATE_STATE[state], kid, at, until)
    else:
        await conn.execute(UPDATE_STATE[state], kid, at)
    await notify_keys(conn, kid)


async def notify_keys(conn: Conn, kid: str) -> None:
    """Every instance rebuilds its JWKS and re-reads its signer when this commits."""
    await conn.execute(NOTIFY, KEYS_CHANNEL, kid)


async def last_expiry(conn: Conn, kid: str) -> datetime | None:
    """When the last token recorded as signed by ``kid`` expires (None: it signed none)."""
    value: datetime | None = await conn.fetchval(SELECT_LAST_EXPIRY, kid)
    return value


async def max_audience_lifetime(conn: Conn) -> int | None:
    value: int | None = await conn.fetchval(SELECT_MAX_LIFETIME)
    return value
