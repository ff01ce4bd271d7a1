"""Numbered SQL migrations from ``schema/sql``, applied under an advisory lock.

Each applied file is recorded with its SHA-256; a file changed after it was applied
stops start-up, since the database no longer matches what the code expects.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

from attest.db import Conn

__all__ = ["Migration", "MigrationError", "apply_migrations", "available_migrations", "pending"]

log = logging.getLogger(__name__)

#: Advisory lock key for migrations (an arbitrary constant: "attest" + 1).
MIGRATION_LOCK = 0x617474657301
_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"


class MigrationError(RuntimeError):
    """The database's migration history does not match the files shipped."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@functools.cache
def _shipped() -> tuple[Migration, ...]:
    folder = resources.files("attest._schema").joinpath("sql")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME_RE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migrations must be numbered 0001.. without gaps, found {versions}")
    return tuple(found)


def available_migrations() -> list[Migration]:
    """The migrations this release ships (read once per process)."""
    return list(_shipped())


async def _check_history(conn: Conn, migrations: list[Migration]) -> list[Migration]:
    """Return the migrations still to apply; raise if an applied one was changed."""
    applied = {row["version"]: row for row in await conn.fetch(SELECT_APPLIED)}
    by_version = {m.version: m for m in migrations}
    for version, row in applied.items():
        shipped = by_version.get(version)
        if shipped is None:
            raise MigrationError(
                f"database has migration {version:04d}_{row['name']} that this release "
                "does not ship: refusing to run an older release against a newer schema"
            )
        if shipped.checksum != row["checksum"]:
            raise MigrationError(
                f"migration {version:04d}_{shipped.name}.sql was changed after it was applied "
                f"(recorded sha256 {row['checksum'][:12]}…, file {shipped.checksum[:12]}…)"
            )
    todo = [m for m in migrations if m.version not in applied]
    if todo and applied and todo[0].version < max(applied):
        raise MigrationError(
            f"migration {todo[0].version:04d}_{todo[0].name} is numbered below migration "
            f"{max(applied):04d}, already applied: migrations apply in order only"
        )
    return todo


async def pending(conn: Conn) -> list[Migration]:
    """Migrations not yet applied (raises :class:`MigrationError` on a changed one)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    migrations = available_migrations()
    if not exists:
        return migrations
    return await _check_history(conn, migrations)


async def apply_migrations(conn: Conn) -> list[str]:
    """Apply pending migrations, each in its own transaction. Safe to run concurrently."""
    migrations = available_migrations()
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(CREATE_TABLE)
        todo = await _check_history(conn, migrations)
        done: list[str] = []
        for migration in todo:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    INSERT_APPLIED, migration.version, migration.name, migration.checksum
                )
            label = f"{migration.version:04d}_{migration.name}"
            log.info("applied migration %s", label)
            done.append(label)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
