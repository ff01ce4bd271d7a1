"""Fixtures for the log tests that need a database of their own: servers on a fresh one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from attest_testing.postgres import database
from attest_testing.support import Clock, LiveServer, make_settings, start_server


class LogWorld:
    """Servers sharing one fresh database and keystore; direct SQL for the tests' attacks."""

    def __init__(self, database_url: str, root: Path) -> None:
        self.database_url = database_url
        self.root = root
        self.clock = Clock()
        self.servers: list[LiveServer] = []
        base = make_settings(database_url, root)
        self.secrets = {
            "keystore_passphrase": base.keystore_passphrase,
            "pairwise_secret": base.pairwise_secret,
            "bootstrap_admin_key": base.bootstrap_admin_key,
            "four_eyes_min_assurance": "never",
            "log_checkpoint_interval": "0.05",
            # One origin for every instance (the default follows each one's port).
            "log_origin": "attest.test/log",
        }

    def start(self, **overrides: Any) -> LiveServer:
        settings = make_settings(self.database_url, self.root, **{**self.secrets, **overrides})
        server = start_server(settings, self.clock)
        self.servers.append(server)
        return server

    def stop(self, server: LiveServer) -> None:
        server.stop()
        self.servers.remove(server)

    def close(self) -> None:
        for server in list(self.servers):
            self.stop(server)

    def run(self, work: Callable[[Any], Any]) -> Any:
        """``work(conn)`` on a connection set up as the app's."""
        import asyncpg

        from attest.db.pool import init_connection

        async def run() -> Any:
            conn = await asyncpg.connect(self.database_url)
            try:
                await init_connection(conn)
                return await work(conn)
            finally:
                await conn.close()

        return asyncio.run(run())

    def add_events(self, count: int, kind: str = "test.event") -> None:
        """Committed audit events written straight to the trail (as any use case does)."""

        async def add(conn: Any) -> None:
            await conn.executemany(
                "INSERT INTO audit_events (event_id, type, occurred_at, tenant, data) "
                "VALUES ($1, $2, now(), 'default', $3)",
                [(uuid.uuid4(), kind, {"n": i}) for i in range(count)],
            )

        self.run(add)


@pytest.fixture
def log_db(database_url: str) -> Iterator[str]:
    with database(database_url, "attest_log") as url:
        yield url


@pytest.fixture
def world(log_db: str, tmp_path: Path) -> Iterator[LogWorld]:
    made = LogWorld(log_db, tmp_path)
    yield made
    made.close()
