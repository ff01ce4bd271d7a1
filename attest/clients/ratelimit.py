"""Fixed-window counters shared by every instance, for rate limits and failed-authentication
throttling: in PostgreSQL by default, in Redis when ``ATTEST_REDIS_URL`` is set.

A window is ``[k * window, (k + 1) * window)`` seconds of the injected clock; ``hit`` counts
one event in the current window and returns the count so far, ``read`` returns it without
counting. Both stores make a hit one atomic step, so concurrent instances never lose one.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from attest.clients import repository

__all__ = ["Counters", "PostgresCounters", "RedisCounters", "retry_after", "window_of"]

#: Prune PostgreSQL counters of windows older than this, every PRUNE_EVERY hits per instance.
PRUNE_AGE_SECONDS = 86_400
PRUNE_EVERY = 1000


def window_of(now: datetime, window: int) -> int:
    """The start of the window holding ``now`` (seconds since the epoch)."""
    return int(now.timestamp()) // window * window


def retry_after(now: datetime, window: int) -> int:
    """Whole seconds until the window holding ``now`` ends (at least 1)."""
    end = window_of(now, window) + window
    return max(1, math.ceil(end - now.timestamp()))


class Counters(Protocol):
    async def hit(self, key: str, window: int, now: datetime) -> int:
        """Count one event for ``key`` in the current window; the count so far."""

    async def read(self, key: str, window: int, now: datetime) -> int:
        """The count of ``key`` in the current window, without counting."""

    async def gate(
        self,
        failures_key: str,
        failures_window: int,
        hit_key: str,
        hit_window: int,
        limit: int,
        now: datetime,
    ) -> tuple[int, int]:
        """Authentication's two counters at once: the count of ``failures_key`` (not
        counted) and, unless it reached ``limit``, one hit of ``hit_key`` (else 0)."""

    async def close(self) -> None:
        """Release connections."""


#: A gate's counters: (failures key, its window start, hit key, its window start, limit).
_GateKey = tuple[str, int, str, int, int]


class _Gate:
    """Requests of one client waiting for the same counting statement."""

    __slots__ = ("answer", "size")

    def __init__(self) -> None:
        self.size = 0
        self.answer: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        # Its requests may all have gone (disconnected) before a failure is set: retrieved.
        self.answer.add_done_callback(lambda f: f.cancelled() or f.exception())


class PostgresCounters:
    """Counters in the ``rate_counters`` table: one upsert per hit.

    The authentication gate coalesces: requests of one client that arrive while its previous
    statement is in flight are counted together by the next one (one row update adding N,
    one commit), and each is given its own place in the window's count, as if counted one
    by one. Without it every request of a busy client waited for the row lock and the WAL
    flush of the one before it, which capped the whole service at one commit at a time."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._hits = 0
        #: The gate being formed per counter pair (joined until its statement is sent).
        self._forming: dict[_GateKey, _Gate] = {}
        #: One statement at a time per counter pair.
        self._sending: dict[_GateKey, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def hit(self, key: str, window: int, now: datetime) -> int:
        start = window_of(now, window)
        count = await repository.count_hit(self._pool, key, start)
        self._hits += 1
        if self._hits % PRUNE_EVERY == 0:
            await repository.prune_counters(self._pool, start - PRUNE_AGE_SECONDS)
        return count

    async def read(self, key: str, window: int, now: datetime) -> int:
        return await repository.count_read(self._pool, key, window_of(now, window))

    async def gate(
        self,
        failures_key: str,
        failures_window: int,
        hit_key: str,
        hit_window: int,
        limit: int,
        now: datetime,
    ) -> tuple[int, int]:
        """One statement for both counters, shared by the requests that arrive together."""
        key = (
            failures_key,
            window_of(now, failures_window),
            hit_key,
            window_of(now, hit_window),
            limit,
        )
        gate = self._forming.get(key)
        if gate is None:
            gate = self._forming[key] = _Gate()
            task = asyncio.create_task(self._send(key, gate))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        gate.size += 1
        place = gate.size
        failures, total = await asyncio.shield(gate.answer)
        self._hits += 1
        if self._hits % PRUNE_EVERY == 0:
            await repository.prune_counters(self._pool, key[3] - PRUNE_AGE_SECONDS)
        # The statement added gate.size hits: this request's is the place-th of them.
        return failures, (total - gate.size + place if total else 0)

    async def _send(self, key: _GateKey, gate: _Gate) -> None:
        lock = self._sending.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                # From here on, arrivals form the next gate.
                del self._forming[key]
                result = await repository.count_gate(self._pool, *key, hits=gate.size)
        except BaseException as exc:
            if self._forming.get(key) is gate:
                del self._forming[key]
            if isinstance(exc, asyncio.CancelledError):
                gate.answer.cancel()
                raise
            gate.answer.set_exception(exc)  # every request of the gate is answered with it
        else:
            gate.answer.set_result(result)
        finally:
            if not lock.locked() and key not in self._forming:
                self._sending.pop(key, None)

    async def close(self) -> None:
        return None


class RedisCounters:
    """Counters in Redis: ``INCR`` and ``EXPIRE`` in one transaction per hit; each window's
    key expires by itself."""

    PREFIX = "attest:rate:"

    def __init__(self, url: str, client: Any = None) -> None:
        import redis.asyncio  # noqa: PLC0415 - only when ATTEST_REDIS_URL is set

        self._redis: Any = client or redis.asyncio.Redis.from_url(url)

    def _key(self, key: str, window: int, now: datetime) -> str:
        return f"{self.PREFIX}{key}:{window_of(now, window)}"

    async def hit(self, key: str, window: int, now: datetime) -> int:
        name = self._key(key, window, now)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window * 2)
            count, _ = await pipe.execute()
        return int(count)

    async def read(self, key: str, window: int, now: datetime) -> int:
        value = await self._redis.get(self._key(key, window, now))
        return int(value) if value is not None else 0

    async def gate(
        self,
        failures_key: str,
        failures_window: int,
        hit_key: str,
        hit_window: int,
        limit: int,
        now: datetime,
    ) -> tuple[int, int]:
        failures = await self.read(failures_key, failures_window, now)
        if failures >= limit:
            return failures, 0
        return failures, await self.hit(hit_key, hit_window, now)

    async def close(self) -> None:
        await self._redis.aclose()
