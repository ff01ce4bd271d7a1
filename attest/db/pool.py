"""The asyncpg pool, with JSON codecs so jsonb columns read and write Python objects."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from attest.db import Conn

__all__ = ["create_pool", "init_connection"]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


async def init_connection(conn: Conn) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, size: int) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, init=init_connection, command_timeout=30
    )
    return pool
