"""Group commit: token requests that arrive together are recorded in one transaction.

Each request is a *job*: a payload that ``record`` turns into a result, together with the
other jobs of its batch, on the batch's connection inside the batch's transaction (one
call per batch: attest/tokens/issuance.py decides a whole batch in a few statements). A
result is the job's answer or :class:`Failed`, its own refusal; a denial is a result like
any other and is recorded with the batch. When ``record`` raises (a value PostgreSQL
refuses, a deadlock victim, a key that cannot be loaded), the batch is rolled back to its
savepoint and each job is recorded again alone, under a savepoint of its own, so that the
one that fails is rolled back alone and the others go on. The batch commits once; every
request is answered only after that commit returned.

A batch takes the requests waiting when a worker becomes free (those that arrived while the
previous batches were being recorded), at most ``max_batch``, after waiting ``window`` for
more when set. ``workers`` batches are recorded at the same time, each on its own pooled
connection. Jobs are handed over in the order of their ``order`` key (the audience first).

What each request learns when the database fails:

- before COMMIT was sent (or COMMIT answered with an error): the transaction did not
  commit; every request of the batch gets :class:`NotRecorded`, a 503 saying so;
- while COMMIT was in flight (the connection lost, a timeout): the outcome is unknown to
  this process. The ``landed`` callback is asked (on a fresh connection) whether the batch
  committed; if it can tell, each request gets its real outcome, else
  :class:`~attest.errors.ServiceUnavailable` subclasses saying the outcome is unknown
  (the caller names the ``jti`` so the client can look it up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import asyncpg

from attest.db import Conn

__all__ = ["Batcher", "CommitUnknown", "Failed", "Job", "NotCommitted"]

log = logging.getLogger(__name__)

R = TypeVar("R")
C = TypeVar("C")
P = TypeVar("P")

#: Errors that mean the connection (not the statement) failed: the batch cannot go on.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)

#: Errors that mean the database is too slow for this batch (a statement timeout, a lock
#: that could not be had): the batch's other jobs would wait the same way, one after the
#: other, so the batch stops at the first and every request of it is answered at once.
SLOW_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.QueryCanceledError,
    asyncpg.LockNotAvailableError,
)

SAVEPOINT = "SAVEPOINT attest_job"
#: A batch's transaction plans its statements generically: they are the same few statements
#: over arrays, whose custom plans PostgreSQL otherwise keeps choosing and so plans each
#: statement again on every batch (the read statement's planning cost more than running it).
BEGIN = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; " + SAVEPOINT
NEXT_SAVEPOINT = "RELEASE SAVEPOINT attest_job; SAVEPOINT attest_job"
ROLLBACK_JOB = "ROLLBACK TO SAVEPOINT attest_job"
COMMIT = "RELEASE SAVEPOINT attest_job; COMMIT"


@dataclass(frozen=True, slots=True)
class Failed:
    """A job's own failure, rolled back to its savepoint (the batch went on)."""

    error: BaseException


class CommitUnknown(Exception):
    """The batch's COMMIT was sent and no answer came back: it may or may not have landed.
    ``result`` is what the job would have answered had it committed."""

    def __init__(self, result: object) -> None:
        super().__init__("commit outcome unknown")
        self.result = result


class NotCommitted(Exception):
    """The batch's transaction did not commit (its connection failed before COMMIT, or
    COMMIT was answered with an error, or the server was shutting down)."""


@dataclass(slots=True)
class Job(Generic[P, R]):
    payload: P
    order: tuple[str, ...]
    future: asyncio.Future[R | Failed] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Batcher(Generic[C, P, R]):
    """Records jobs in shared transactions (the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        prepare: Callable[[Conn], C],
        record: Callable[[Conn, C, list[P]], Awaitable[list[R | Failed]]],
        landed: Callable[[list[R | Failed]], Awaitable[bool | None]],
        max_batch: int = 64,
        window_ms: int = 0,
        workers: int = 2,
        observe: Callable[[int, int], None] | None = None,
    ) -> None:
        self._pool = pool
        self._prepare = prepare
        self._record_jobs = record
        self._landed = landed
        self._max = max_batch
        self._window = window_ms / 1000
        self._workers_count = workers
        self._observe = observe or (lambda _size, _depth: None)
        self._queue: asyncio.Queue[Job[P, R]] | None = None
        self._workers: list[asyncio.Task[None]] = []

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return self._queue.qsize() if self._queue is not None else 0

    async def submit(self, payload: P, order: tuple[str, ...]) -> R:
        """Record ``payload`` in the next batch; its result once the batch committed. Raises
        the job's own error, or the batch's (not recorded, outcome unknown)."""
        if self._queue is None:
            self._start()
        assert self._queue is not None  # noqa: S101 - started above
        job: Job[P, R] = Job(payload, order)
        self._queue.put_nowait(job)
        outcome = await job.future
        if isinstance(outcome, Failed):
            raise outcome.error
        return outcome

    def _start(self) -> None:
        self._queue = asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._work(), name=f"attest-issue-batch-{n}")
            for n in range(self._workers_count)
        ]

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._queue = None

    async def _work(self) -> None:
        assert self._queue is not None  # noqa: S101 - started with its queue
        queue = self._queue
        while True:
            jobs = [await queue.get()]
            if self._window:
                await asyncio.sleep(self._window)
            while len(jobs) < self._max and not queue.empty():
                jobs.append(queue.get_nowait())
            self._observe(len(jobs), queue.qsize())
            try:
                await self._record(jobs)
            except BaseException as exc:
                # Never leave a request waiting: whatever went wrong is every job's answer.
                for job in jobs:
                    if not job.future.done():
                        job.future.set_result(Failed(_as_error(exc)))
                if isinstance(exc, asyncio.CancelledError):
                    raise

    async def _record(self, jobs: list[Job[P, R]]) -> None:
        jobs.sort(key=lambda j: j.order)
        async with self._pool.acquire() as conn:
            try:
                await conn.execute(BEGIN)
                results = await self._run_batch(conn, self._prepare(conn), jobs)
            except BaseException:
                with contextlib.suppress(Exception):
                    if not conn.is_closed():
                        await conn.execute("ROLLBACK")
                raise
            try:
                await conn.execute(COMMIT)
            except CONNECTION_ERRORS:
                # COMMIT was sent and no answer came: ask a fresh connection what happened.
                committed = await self._ask_landed(results)
                self._finish(jobs, results, committed)
                return
            except asyncpg.PostgresError as exc:
                # The server answered: rolled back (a deferred check failed at COMMIT).
                log.warning("issuance batch not committed: %s", type(exc).__name__)
                self._finish(jobs, results, committed=False)
                return
        self._finish(jobs, results, committed=True)

    async def _run_batch(self, conn: Conn, context: C, jobs: list[Job[P, R]]) -> list[R | Failed]:
        try:
            results = await self._record_jobs(conn, context, [j.payload for j in jobs])
        except (*CONNECTION_ERRORS, *SLOW_ERRORS):
            # The batch's connection is gone, or each job would wait as long: nothing of
            # the batch commits.
            raise
        except Exception as exc:  # noqa: BLE001 - a statement of the batch: each job alone
            await conn.execute(ROLLBACK_JOB)
            if len(jobs) == 1:
                return [Failed(exc)]
            log.info("issuance batch of %d failed (%s): each alone", len(jobs), type(exc).__name__)
            return [await self._run_alone(conn, context, job) for job in jobs]
        if len(results) != len(jobs):
            raise RuntimeError("a batch's record answered a different number of jobs")
        return results

    async def _run_alone(self, conn: Conn, context: C, job: Job[P, R]) -> R | Failed:
        try:
            (result,) = await self._record_jobs(conn, context, [job.payload])
        except (*CONNECTION_ERRORS, *SLOW_ERRORS):
            raise
        except Exception as exc:  # noqa: BLE001 - the job's own failure, answered to it alone
            await conn.execute(ROLLBACK_JOB)
            return Failed(exc)
        await conn.execute(NEXT_SAVEPOINT)
        return result

    async def _ask_landed(self, results: list[R | Failed]) -> bool | None:
        try:
            return await self._landed(results)
        except Exception as exc:  # noqa: BLE001 - the check itself failing: unknown
            log.warning("issuance batch outcome unknown (%s)", type(exc).__name__)
            return None

    def _finish(
        self, jobs: list[Job[P, R]], results: list[R | Failed], committed: bool | None
    ) -> None:
        for job, result in zip(jobs, results, strict=True):
            if job.future.done():
                continue
            if committed or isinstance(result, Failed):
                job.future.set_result(result)
            elif committed is None:
                job.future.set_result(Failed(CommitUnknown(result)))
            else:
                job.future.set_result(Failed(NotCommitted()))


def _as_error(exc: BaseException) -> BaseException:
    if isinstance(exc, asyncio.CancelledError):
        return NotCommitted()
    return exc
