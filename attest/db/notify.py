"""Change notifications between instances: one LISTEN connection per process.

A change that published bytes depend on (a status-list entry, the key set) sends
``pg_notify(channel, ...)`` in the transaction that makes it, so PostgreSQL delivers it to
every instance exactly when it commits (and never if it rolls back). Services keep what
they serve ready and drop it when their channel fires.

A cache entry is trusted only while the feed is ``live`` and its channel's ``epoch`` is the
one read before the entry was validated: a notification that arrives while a request
rebuilds the entry makes the rebuilt entry untrusted at once. While the connection is down
(or before it is up) nothing is trusted, and every read checks the database as if there
were no cache; reconnecting bumps every epoch, since notifications sent meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

__all__ = ["KEYS_CHANNEL", "STATUS_CHANNEL", "ChangeFeed"]

log = logging.getLogger(__name__)

#: Sent when a status-list entry changes; the payload is the list id.
STATUS_CHANNEL = "attest_status"
#: Sent when a signing key is added or changes state (the JWKS and the signer).
KEYS_CHANNEL = "attest_keys"


class ChangeFeed:
    """Epochs per channel, bumped by NOTIFY on a dedicated connection (see the module)."""

    def __init__(self, channels: tuple[str, ...] = (STATUS_CHANNEL, KEYS_CHANNEL)) -> None:
        self.channels = channels
        self._epochs = dict.fromkeys(channels, 0)
        self.live = False
        #: How many times the connection was (re)established: for tests and metrics.
        self.connects = 0

    def epoch(self, channel: str) -> int:
        """The channel's current epoch; read it before validating what a cache keeps."""
        return self._epochs[channel]

    def trusts(self, channel: str, epoch: int) -> bool:
        """Whether an entry validated at ``epoch`` is still known to be current."""
        return self.live and self._epochs[channel] == epoch

    def _bump(self, channel: str) -> None:
        self._epochs[channel] += 1

    def _bump_all(self) -> None:
        for channel in self._epochs:
            self._bump(channel)

    def _on_notify(self, _conn: object, _pid: int, channel: str, _payload: object) -> None:
        if channel in self._epochs:
            self._bump(channel)

    async def run(
        self, connect: Callable[[], Awaitable[asyncpg.Connection[asyncpg.Record]]], retry: float
    ) -> None:
        """Listen until cancelled; on a lost connection, distrust everything and reconnect
        after ``retry`` seconds."""
        while True:
            conn: asyncpg.Connection[asyncpg.Record] | None = None
            try:
                conn = await connect()
                lost: asyncio.Event = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                for channel in self.channels:
                    await conn.add_listener(channel, self._on_notify)
                self._bump_all()  # whatever was sent while we were not listening is lost
                self.live = True
                self.connects += 1
                await lost.wait()
                log.warning("change notifications lost their connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("change notifications unavailable; retrying", exc_info=True)
            finally:
                self.live = False
                self._bump_all()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(retry)


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    def fire(_conn: object) -> None:
        event.set()

    return fire
