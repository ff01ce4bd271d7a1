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
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import asyncpg

__all__ = ["KEYS_CHANNEL", "STATUS_CHANNEL", "ChangeFeed", "SingleFlight"]

T = TypeVar("T")

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

    def epochs(self) -> tuple[int, ...] | None:
        """Every channel's epoch while live (None while down: nothing may be shared)."""
        return tuple(self._epochs.values()) if self.live else None

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
            except Exception as exc:  # noqa: BLE001 - any failure: distrust, retry, go on
                # No traceback per retry: during an outage this repeats every ``retry``.
                log.warning("change notifications unavailable (%s); retrying", type(exc).__name__)
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


class SingleFlight:
    """Concurrent rebuilds of one kept answer share one database check.

    A request that finds its answer due for a check joins the check already running for
    the same key if the change feed is live and no change was notified since that check
    began (the same ``epochs``): its result is then as current as a check of its own. Else
    (a change came in meanwhile, or notifications are down) it runs its own check.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, tuple[tuple[int, ...], asyncio.Future[Any]]] = {}

    async def run(
        self,
        key: Hashable,
        epochs: tuple[int, ...] | None,
        make: Callable[[], Awaitable[T]],
    ) -> T:
        """``await make()``, or the result of the same check already under way."""
        running = self._running.get(key)
        if epochs is not None and running is not None and running[0] == epochs:
            try:
                result: T = await asyncio.shield(running[1])
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not running[1].cancelled() or (task is not None and task.cancelling()):
                    raise
                # the request that ran the check went away: check for ourselves
            else:
                return result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if epochs is not None:
            self._running[key] = (epochs, future)
        try:
            made = await make()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it; none is no error
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(made)
            return made
        finally:
            if self._running.get(key, (None, None))[1] is future:
                del self._running[key]
