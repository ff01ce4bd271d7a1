"""Cache invalidation across instances: PostgreSQL LISTEN/NOTIFY, with bounded staleness.

A change that a cache must not outlive (a client revoked, a key rotated) calls
:func:`publish` inside the transaction that makes it: ``pg_notify`` is delivered only when
that transaction commits, to every instance listening, each of which drops the entries the
topic names at once.

Each process keeps one dedicated listening connection (:class:`Listener`), not a pool
connection. Notifications can be lost only while that connection is down, so an entry is
trusted (:meth:`Listener.trusted`) only

- while it is younger than ``max_staleness`` (``ATTEST_CACHE_MAX_STALENESS_MS``, at most
  1 s), whatever the listener's state; or
- when the listener has been connected without interruption since before the entry was
  read, and answered its last liveness check less than ``max_staleness`` ago (so a
  connection that died silently stops being trusted within the bound too).

On every (re)connection, once ``LISTEN`` is in place, every cache is flushed: whatever was
published while the listener was down can no longer be served. Times are monotonic
seconds (``time.monotonic``): staleness is a property of this process, not of the
injected request clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg

from attest.db import Conn

__all__ = ["CHANNEL", "Cache", "Listener", "publish"]

log = logging.getLogger(__name__)

#: The one channel every instance listens on; the payload is ``<topic>:<key>``.
CHANNEL = "attest_cache"
#: ``<topic>:*`` drops a whole cache; ``*`` drops every cache.
EVERYTHING = "*"

NOTIFY = "SELECT pg_notify($1, $2)"

K = TypeVar("K")
V = TypeVar("V")


async def publish(conn: Conn, topic: str, key: str) -> None:
    """Tell every instance to drop ``topic``'s entry ``key`` once the caller's transaction
    commits (``pg_notify`` is transactional: a rolled-back change notifies nobody)."""
    await conn.execute(NOTIFY, CHANNEL, f"{topic}:{key}")


class Listener:
    """The process's listening connection and the caches it invalidates."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection[Any]]],
        *,
        max_staleness_ms: int = 1000,
        retry_ms: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self.max_staleness = max_staleness_ms / 1000
        self._retry = retry_ms / 1000
        self._clock = clock
        self._caches: dict[str, Cache[Any, Any]] = {}
        self._conn: asyncpg.Connection[Any] | None = None
        #: Monotonic time since which the listener is connected without a break (None: down).
        self.connected_since: float | None = None
        #: When the listening connection last answered a liveness check.
        self._alive_at: float = float("-inf")
        self._lost = asyncio.Event()
        self.connections = 0  # how many times LISTEN was (re)established, for /metrics

    def cache(self, topic: str) -> Cache[Any, Any]:
        """The cache of ``topic`` (created on first use), invalidated by its notifications."""
        if topic not in self._caches:
            self._caches[topic] = Cache(self, topic)
        return self._caches[topic]

    @property
    def connected(self) -> bool:
        return self.connected_since is not None

    def now(self) -> float:
        return self._clock()

    def trusted(self, read_at: float) -> bool:
        """Whether an entry read at ``read_at`` may still be served (the module docstring)."""
        now = self._clock()
        if now - read_at <= self.max_staleness:
            return True
        since = self.connected_since
        return since is not None and since <= read_at and now - self._alive_at <= self.max_staleness

    def flush(self) -> None:
        for cache in self._caches.values():
            cache.clear()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if not isinstance(payload, str):
            return
        if payload == EVERYTHING:
            self.flush()
            return
        topic, _, key = payload.partition(":")
        cache = self._caches.get(topic)
        if cache is not None:
            if key == EVERYTHING:
                cache.clear()
            else:
                cache.drop(key)

    def _on_lost(self, _conn: object) -> None:
        self._down()
        self._lost.set()

    def _down(self) -> None:
        if self.connected_since is not None:
            log.warning(
                "cache listener lost; cached entries now live at most %.3f s", self.max_staleness
            )
        self.connected_since = None

    async def _open(self) -> None:
        conn = await self._connect()
        # Named, so an operator (or a test) can find this process's listeners.
        await conn.execute("SET application_name = 'attest-cache-listener'")
        self._lost.clear()
        conn.add_termination_listener(self._on_lost)
        await conn.add_listener(CHANNEL, self._on_notify)
        self._conn = conn
        # Whatever was published while nobody listened is forgotten: start empty.
        self.flush()
        self.connected_since = self._alive_at = self._clock()
        self.connections += 1

    async def run(self) -> None:
        """Keep the listener connected until cancelled; check it every max_staleness / 4."""
        interval = max(0.01, self.max_staleness / 4)
        while True:
            try:
                await self._watch(interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: down, retry later
                log.warning("cache listener unavailable (%s); retrying", type(exc).__name__)
                self._down()
                await self._close()
                await asyncio.sleep(self._retry)

    async def _watch(self, interval: float) -> None:
        """(Re)connect if needed, check the connection, wait up to ``interval`` for its loss;
        raise when it is lost, so that ``run`` reconnects after the retry delay."""
        if self._conn is None or self._conn.is_closed():
            await self._open()
        started = self._clock()
        assert self._conn is not None  # noqa: S101 - opened above
        await self._conn.fetchval("SELECT 1", timeout=max(0.05, self.max_staleness))
        self._alive_at = started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lost.wait(), interval)
        if self._lost.is_set():
            raise ConnectionResetError("the listening connection was lost")

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)

    async def close(self) -> None:
        self._down()
        await self._close()


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    read_at: float


@dataclass
class Cache(Generic[K, V]):
    """Entries of one topic, each stamped with the monotonic time it was read.

    Reading through :meth:`get_or_load` is race-free against invalidation: the generation
    is taken before the load, and a load that an invalidation overtook is not stored.
    """

    listener: Listener
    topic: str
    max_entries: int = 10_000
    _entries: dict[Any, _Entry[V]] = field(default_factory=dict)
    _generation: int = 0
    hits: int = 0
    misses: int = 0

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def drop(self, key: str) -> None:
        self._generation += 1
        self._entries.pop(key, None)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if not self.listener.trusted(entry.read_at):
            del self._entries[key]
            return None
        return entry.value

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value of ``key``, else ``load()`` (not stored when None)."""
        found = self.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        generation, read_at = self._generation, self.listener.now()
        value = await load()
        if value is not None and generation == self._generation:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = _Entry(value, read_at)
        return value
