"""Migrations: recorded with checksums, safe to run concurrently, a changed one stops start-up."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from attest.db.migrations import MigrationError, apply_migrations, available_migrations, pending


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url)


def test_concurrent_instances_apply_each_migration_once(fresh_database: str) -> None:
    async def run() -> list[list[str]]:
        conns = [await _connect(fresh_database) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(apply_migrations(c) for c in conns)))
        finally:
            for conn in conns:
                await conn.close()

    results = asyncio.run(run())
    shipped = [f"{m.version:04d}_{m.name}" for m in available_migrations()]
    # Exactly one instance applied everything; the others found nothing to do.
    assert sorted(results, key=len) == [[], [], [], shipped]

    async def check() -> None:
        conn = await _connect(fresh_database)
        try:
            rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
            assert [r["version"] for r in rows] == [m.version for m in available_migrations()]
            assert {r["checksum"] for r in rows} == {m.checksum for m in available_migrations()}
            assert await pending(conn) == []
        finally:
            await conn.close()

    asyncio.run(check())


def test_a_migration_changed_after_it_was_applied_stops_start_up(fresh_database: str) -> None:
    async def run() -> None:
        conn = await _connect(fresh_database)
        try:
            await apply_migrations(conn)
            await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
            with pytest.raises(MigrationError, match="changed after it was applied"):
                await apply_migrations(conn)
            with pytest.raises(MigrationError):
                await pending(conn)
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_newer_schema_than_this_release_stops_start_up(fresh_database: str) -> None:
    async def run() -> None:
        conn = await _connect(fresh_database)
        try:
            await apply_migrations(conn)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) "
                "VALUES (999, 'future', 'x')"
            )
            with pytest.raises(MigrationError, match="does not ship"):
                await apply_migrations(conn)
        finally:
            await conn.close()

    asyncio.run(run())


def test_audit_events_cannot_be_rewritten(fresh_database: str) -> None:
    async def run() -> None:
        conn = await _connect(fresh_database)
        try:
            await apply_migrations(conn)
            await conn.execute(
                "INSERT INTO audit_events (event_id, type, occurred_at) "
                "VALUES (gen_random_uuid(), 'x', now())"
            )
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("UPDATE audit_events SET type = 'y'")
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("DELETE FROM audit_events")
        finally:
            await conn.close()

    asyncio.run(run())
