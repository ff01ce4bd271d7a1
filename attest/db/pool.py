"""The asyncpg pool, with JSON codecs so jsonb columns read and write Python objects.

Every wait on the database is bounded, so a slow or lost database turns into a quick 503
problem (attest.http.problems) instead of requests piling up behind it:

- borrowing a connection waits at most ``acquire_timeout_ms`` (``ATTEST_DB_POOL_TIMEOUT_MS``)
  unless the caller passes its own timeout: asyncpg's own default is to wait forever;
- each statement of the service role's connections runs at most ``statement_timeout_ms``
  (``ATTEST_DB_STATEMENT_TIMEOUT_MS``, PostgreSQL's ``statement_timeout``, enforced by the
  server, which cancels the statement and releases its locks: SQLSTATE 57014);
- the client gives up on a statement a few seconds after that (``command_timeout``), for a
  server that does not answer at all.

A connection that broke (the server restarted, the network dropped) is discarded by the
pool when it is released, and the next acquire opens a fresh one: no restart is needed
once the database is back.

A released connection is not sent asyncpg's reset statement (advisory unlock, CLOSE ALL,
UNLISTEN, RESET ALL: one more round trip per use, on every token batch): the service's
pooled connections never hold session state. Every lock taken on them is transaction-scoped
(``pg_advisory_xact_lock*``, row locks), nothing LISTENs or SETs on them (the listeners,
the log sequencer and bootstrap use connections of their own), and a transaction left open
is still rolled back by asyncpg on release. Session state on a pooled connection would
outlive its user: keep it on a dedicated connection.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolAcquireContext

from attest.db import Conn

__all__ = ["BoundedPool", "create_pool", "init_connection"]

_SORTED_JSON = msgspec.json.Encoder(order="sorted")

#: Client-side limit on one statement when the server-side one is off (seconds).
_COMMAND_TIMEOUT = 30.0


def _dumps(value: Any) -> str:
    # Compact and key-sorted like json.dumps(sort_keys=True), several times faster: a
    # batch sends its rows and events as one JSON array each.
    return _SORTED_JSON.encode(value).decode()


async def init_connection(conn: Conn) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_dumps, decoder=json.loads, schema="pg_catalog")


class _PooledConnection(asyncpg.Connection):
    """A pooled connection, released without the reset statement (the module docstring)."""

    def get_reset_query(self) -> str:
        return ""


class BoundedPool(asyncpg.Pool):
    """An asyncpg pool whose ``acquire()`` waits a bounded time by default."""

    def __init__(self, *args: Any, acquire_timeout: float | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        # On timeout asyncpg raises asyncio.TimeoutError (the builtin TimeoutError, an
        # OSError): answered as a 503 problem with Retry-After.
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def create_pool(
    dsn: str,
    size: int,
    *,
    statement_timeout_ms: int = 0,
    acquire_timeout_ms: int | None = None,
) -> asyncpg.Pool:
    """The service's pool: ``size`` connections at most; 0 ms statement timeout: none."""
    server_settings = {"statement_timeout": str(statement_timeout_ms)}
    command_timeout = max(_COMMAND_TIMEOUT, statement_timeout_ms / 1000 + 5)
    acquire_timeout = None if not acquire_timeout_ms else acquire_timeout_ms / 1000
    pool = BoundedPool(
        dsn,
        acquire_timeout=acquire_timeout,
        connection_class=_PooledConnection,
        record_class=asyncpg.Record,
        min_size=1,
        max_size=size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        init=init_connection,
        command_timeout=command_timeout,
        server_settings=server_settings,
        # Opening a connection is part of an acquire: bounded by the same wait.
        timeout=acquire_timeout or 60,
    )
    await pool
    return pool
