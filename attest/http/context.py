"""The application context: what every request handler needs, built once at start-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from litestar.connection import ASGIConnection

from attest.clock import utc_now
from attest.db import Conn
from attest.keys.keyring import Keyring
from attest.keys.keystore import Signer
from attest.metrics import Metrics
from attest.settings import Settings

__all__ = ["AppContext", "app_context"]


@dataclass(slots=True)
class AppContext:
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    pool: asyncpg.Pool = field(default=None)  # type: ignore[arg-type]  # set at start-up
    #: Follows the database's active key (set at start-up); see attest/keys/keyring.py.
    #: It is the one cache of the active signer: ``signer`` only reads it.
    keyring: Keyring | None = None
    pairwise_key: bytes = b""
    ready: bool = False
    metrics: Metrics = field(default_factory=Metrics)
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock()

    @property
    def signer(self) -> Signer | None:
        return self.keyring.current if self.keyring is not None else None

    def active_signer(self) -> Signer:
        if self.signer is None:
            raise RuntimeError("no active signing key is loaded")
        return self.signer

    async def current_signer(self, conn: Conn) -> Signer:
        """The key the database names active now (picks up rotations without a restart)."""
        if self.keyring is None:
            return self.active_signer()
        return await self.keyring.active(conn)


def app_context(connection: ASGIConnection[Any, Any, Any, Any]) -> AppContext:
    ctx: AppContext = connection.app.state.ctx
    return ctx
