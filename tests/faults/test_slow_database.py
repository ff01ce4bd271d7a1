"""A slow database: a lock another connection holds makes statements wait. Each wait is
bounded (ATTEST_DB_STATEMENT_TIMEOUT_MS on the server, ATTEST_DB_POOL_TIMEOUT_MS for a pool
connection), so every request is answered 503 with Retry-After within the bound instead of
queueing behind the lock, and the server is healthy the moment the lock is released."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
from attest_testing.faultpg import FaultCluster
from attest_testing.faults import AUDIENCE, Answer, Serve, eligible_subjects, wait_until

PROBLEM = "application/problem+json"
STATEMENT_TIMEOUT_MS = 1500
POOL_TIMEOUT_MS = 400
POOL_SIZE = 4
WORKERS = 2
# The longest wait a request can meet (its pool wait, then its statement's) and a margin.
BOUND = (STATEMENT_TIMEOUT_MS + POOL_TIMEOUT_MS) / 1000 + 2.5


class TableLock:
    """ACCESS EXCLUSIVE on a table, from a connection of its own, until released."""

    def __init__(self, url: str, table: str) -> None:
        self.url, self.table = url, table
        self.held = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._hold()), daemon=True)

    async def _hold(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE")
                self.held.set()
                await asyncio.to_thread(self._release.wait, 60)
        finally:
            await conn.close()

    def __enter__(self) -> TableLock:
        self._thread.start()
        assert self.held.wait(10), "could not take the lock"
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._thread.join(timeout=15)


def _timed(call: object) -> Answer:
    started = time.monotonic()
    reply = call()  # type: ignore[operator]
    return Answer(started, time.monotonic(), reply.status_code, dict(reply.headers), reply.json())


def test_a_locked_table_is_answered_503_within_the_bound_then_all_is_well(
    cluster: FaultCluster, short_tmp: Path
) -> None:
    server = Serve(
        cluster.url,
        short_tmp,
        workers=str(WORKERS),
        db_pool_size=str(POOL_SIZE),
        db_pool_timeout_ms=str(POOL_TIMEOUT_MS),
        db_statement_timeout_ms=str(STATEMENT_TIMEOUT_MS),
    )
    try:
        server.wait_ready()
        operator_key, subjects = eligible_subjects(server, 4)
        with server.client(operator_key, timeout=BOUND + 5) as http:
            assert (
                http.post(
                    "/v1/tokens", json={"subject_id": subjects[0], "audience": AUDIENCE}
                ).status_code
                == 201
            )

            def issue(n: int) -> Answer:
                body = {"subject_id": subjects[n % len(subjects)], "audience": AUDIENCE}
                return _timed(lambda: http.post("/v1/tokens", json=body))

            def read(n: int) -> Answer:
                return _timed(lambda: http.get(f"/v1/subjects/{subjects[n % len(subjects)]}"))

            with TableLock(cluster.url, "subjects"), ThreadPoolExecutor(32) as pool:
                started = time.monotonic()
                answers = list(pool.map(issue, range(48))) + list(pool.map(read, range(16)))
                held_for = time.monotonic() - started

            # Every request answered 503 problem with Retry-After, each within the bound.
            for answer in answers:
                assert answer.status == 503, answer
                assert answer.headers["content-type"].startswith(PROBLEM), answer
                assert answer.headers["retry-after"].isdigit(), answer
                assert answer.body["type"] == "urn:attest:problem:unavailable", answer
                assert answer.took <= BOUND, answer
            # Both bounds did the answering: statements cancelled by the server after the
            # statement timeout, and requests that never got a connection after the pool wait.
            assert any(a.took >= STATEMENT_TIMEOUT_MS / 1000 for a in answers)
            assert any(a.took < STATEMENT_TIMEOUT_MS / 1000 for a in answers)
            assert held_for < 64 * BOUND / 4  # they did not queue one behind another

            # The lock is gone: healthy at once, nothing left waiting, no connection leaked.
            reply = http.post("/v1/tokens", json={"subject_id": subjects[1], "audience": AUDIENCE})
            assert reply.status_code == 201, reply.text
            assert http.get("/readyz").status_code == 200

        async def activity() -> tuple[dict[str, int], int]:
            conn = await asyncpg.connect(cluster.url)
            try:
                rows = await conn.fetch(
                    "SELECT split_part(application_name, ' pid ', 1) AS name, count(*) AS n,"
                    " count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting"
                    " FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid() AND datname = current_database()"
                    " GROUP BY 1"
                )
                return {r["name"]: r["n"] for r in rows}, sum(r["waiting"] for r in rows)
            finally:
                await conn.close()

        # Per worker process: its pool's connections (unnamed) and at most one of each
        # dedicated one (log sequencer, cache listener, change feed); none waiting on a lock.
        connections, waiting = wait_until(
            lambda: (found := asyncio.run(activity()))[1] == 0 and found,
            timeout=5,
            what="no statement waiting",
        )
        assert connections.pop("", 0) <= POOL_SIZE * WORKERS, connections
        assert all(n <= WORKERS for n in connections.values()), connections
        assert waiting == 0
        assert server.proc.poll() is None
    except BaseException:
        print(server.output()[-6000:])
        raise
    finally:
        server.stop()
