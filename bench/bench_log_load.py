"""Transparency log under issuance load: commit-to-checkpoint latency, and what the log
sequencer and the status entry cost issuance.

Run: python bench/bench_log_load.py [--subjects 100] [--seconds 20] [--threads 4] [--pairs 2]

1. Latency: THREADS clients issue tokens (POST /v1/tokens) against a real ``attest serve``
   (bench/_server.py, default settings: 1 s checkpoint interval) for SECONDS; a watcher
   polls GET /v1/log/checkpoint every 10 ms and notes when each tree size first appears.
   Afterwards every issued token's ``token.issued`` event is looked up with its log_index
   (GET /v1/audit/events?type=token.issued with the admin key); its latency is the time
   from the 201 answer (the commit) until the first checkpoint whose size covers it.
2. Sequencer cost: the same issuance run on a second fresh server whose sequencer never
   leads, because this script holds the log's advisory lock (attest.log.repository.LOG_LOCK)
   on that database before the server starts (no service code or setting involved): events
   are still recorded in the issuing transaction, but nothing sequences, hashes, writes
   tiles or signs. Runs alternate (with log, without, ...) for PAIRS pairs.
3. Status entry cost: on the first server's database, status.allocate + status.attach
   (nextval, the list lookup, the keyed permutation, the entry INSERT) timed one by one in
   a rolled-back transaction, against a one-round-trip ``SELECT 1`` in the same transaction,
   and attest.status.permutation.permute alone; beside the median single-client issuance.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import asyncpg
import httpx
from _server import Server, attest_server
from bench_issuance import AUDIENCE, EVIDENCE, _api_key, _client

from attest.db.pool import init_connection
from attest.log.repository import LOG_LOCK
from attest.status import service as status
from attest.status.permutation import permute

_HOLD = """
import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    await conn.execute("SELECT pg_advisory_lock($1)", int(sys.argv[2]))
    print("locked", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await conn.close()
asyncio.run(main())
"""


@contextmanager
def _log_lock_holder() -> Iterator[Callable[[str], None]]:
    """A process that takes the log's leader lock on the database it is handed."""
    holders: list[subprocess.Popen[str]] = []

    def hold(url: str) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLD, url, str(LOG_LOCK)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        holders.append(proc)

    try:
        yield hold
    finally:
        for proc in holders:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)


def _onboard(server: Server, subjects: int) -> tuple[str, list[str]]:
    admin = _client(server.base, server.admin_key)
    scopes = ["subjects:write", "subjects:read", "evidence:write", "tokens:issue"]
    operator_key = _api_key(admin, "operator", scopes)
    reviewer = _client(server.base, _api_key(admin, "reviewer", ["evidence:review"]))
    operator = _client(server.base, operator_key)
    eligible = []
    for n in range(subjects):
        subject = operator.post("/v1/subjects", json={"external_ref": f"bench-{n}"}).json()
        evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=EVIDENCE)
        reviewer.post(f"/v1/evidence/{evidence.json()['id']}/approvals", json={}).raise_for_status()
        eligible.append(subject["id"])
    return operator_key, eligible


def _checkpoint_size(client: httpx.Client) -> int:
    response = client.get("/v1/log/checkpoint")
    return int(response.text.split("\n")[1]) if response.status_code == 200 else 0


def _issue_for(
    server: Server, key: str, eligible: list[str], threads: int, seconds: float
) -> tuple[list[tuple[float, str]], float]:
    """THREADS clients issue for SECONDS: (commit time, jti) of every 201, and the span."""
    issued: list[tuple[float, str]] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(n: int) -> None:
        with _client(server.base, key) as client:
            i = n
            while time.perf_counter() < stop:
                body = {"subject_id": eligible[i % len(eligible)], "audience": AUDIENCE}
                reply = client.post("/v1/tokens", json=body)
                done = time.perf_counter()
                assert reply.status_code == 201, reply.text
                with lock:
                    issued.append((done, reply.json()["jti"]))
                i += threads

    start = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return issued, time.perf_counter() - start


def _log_indexes(server: Server) -> dict[str, int]:
    """jti -> log_index of its token.issued event, from the audit API (admin key)."""
    found: dict[str, int] = {}
    with _client(server.base, server.admin_key) as admin:
        params: dict[str, str] = {"type": "token.issued", "limit": "1000"}
        while True:
            page = admin.get("/v1/audit/events", params=params)
            page.raise_for_status()
            body = page.json()
            for event in body["events"]:
                if event["log_index"] is not None:
                    found[event["data"]["jti"]] = event["log_index"]
            if body["next_cursor"] is None:
                return found
            params["cursor"] = str(body["next_cursor"])


def latency_run(server: Server, key: str, eligible: list[str], args: argparse.Namespace) -> float:
    seen: list[tuple[float, int]] = []  # (first time observed, checkpoint size)
    watching = threading.Event()
    watching.set()

    def watch() -> None:
        with httpx.Client(base_url=server.base) as client:
            last = 0
            while watching.is_set():
                size = _checkpoint_size(client)
                if size > last:
                    seen.append((time.perf_counter(), size))
                    last = size
                time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    issued, span = _issue_for(server, key, eligible, args.threads, args.seconds)
    deadline = time.perf_counter() + 60
    while True:  # until every issued token's event is sequenced and in a checkpoint seen
        indexes = _log_indexes(server)
        done = all(jti in indexes for _, jti in issued)
        if done and seen and seen[-1][1] > max(indexes[jti] for _, jti in issued):
            break
        if time.perf_counter() > deadline:
            raise SystemExit("the log did not cover the issued tokens within 60 s")
        time.sleep(0.2)
    watching.clear()
    watcher.join()
    latencies = []
    for committed, jti in issued:
        index = indexes[jti]
        covered = next(t for t, size in seen if size > index)
        latencies.append(max(0.0, covered - committed))
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    rate = len(issued) / span
    print(
        f"with log: {len(issued)} issued in {span:.1f} s by {args.threads} clients = "
        f"{rate:,.0f} tokens/s; commit -> checkpoint covering its token.issued event: "
        f"p50 {statistics.median(latencies) * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms, "
        f"max {latencies[-1] * 1000:,.0f} ms ({len(seen)} checkpoints seen)"
    )
    return rate


def plain_run(server: Server, key: str, eligible: list[str], args: argparse.Namespace) -> float:
    issued, span = _issue_for(server, key, eligible, args.threads, args.seconds)
    rate = len(issued) / span
    with httpx.Client(base_url=server.base) as client:
        size = _checkpoint_size(client)
    print(
        f"sequencer held off: {len(issued)} issued in {span:.1f} s = {rate:,.0f} tokens/s "
        f"(checkpoint size still {size})"
    )
    return rate


async def _status_costs(url: str, count: int) -> None:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    copy = """
    INSERT INTO attestations SELECT (jsonb_populate_record(NULL::attestations,
        to_jsonb(a) || jsonb_build_object('jti', $1::text))).* FROM attestations a LIMIT 1
    """
    alloc, attach, floor = [], [], []
    try:
        for _ in range(count):
            tr = conn.transaction()
            await tr.start()
            jti = "bench-" + secrets.token_hex(8)
            await conn.execute(copy, jti)  # a row for the entry's foreign key, untimed
            t0 = time.perf_counter()
            await conn.fetchval("SELECT 1")
            t1 = time.perf_counter()
            ref = await status.allocate(conn, list_size=1 << 20, now=_now())
            t2 = time.perf_counter()
            await status.attach(conn, ref, jti)
            t3 = time.perf_counter()
            await tr.rollback()
            floor.append(t1 - t0)
            alloc.append(t2 - t1)
            attach.append(t3 - t2)
    finally:
        await conn.close()
    key = os.urandom(32)
    t0 = time.perf_counter()
    for slot in range(10_000):
        permute(key, 1 << 20, slot)
    per_permute = (time.perf_counter() - t0) / 10_000
    med = statistics.median
    print(
        f"status entry, {count} times in a rolled-back transaction (medians): allocate "
        f"{med(alloc) * 1000:.3f} ms (2 statements + permute), attach {med(attach) * 1000:.3f} ms "
        f"(1 INSERT), together {med(a + b for a, b in zip(alloc, attach, strict=True)) * 1000:.3f}"
        f" ms; one SELECT 1 round trip {med(floor) * 1000:.3f} ms; permute alone "
        f"{per_permute * 1e6:.1f} us"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _single_client(server: Server, key: str, eligible: list[str], count: int) -> None:
    times = []
    with _client(server.base, key) as client:
        for i in range(count):
            body = {"subject_id": eligible[i % len(eligible)], "audience": AUDIENCE}
            t0 = time.perf_counter()
            assert client.post("/v1/tokens", json=body).status_code == 201
            times.append(time.perf_counter() - t0)
    median = statistics.median(times) * 1000
    print(f"one client, {count} sequential issuances: median {median:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--status", type=int, default=2000, help="status entries timed")
    args = parser.parse_args()
    ratios = []
    for pair in range(args.pairs):
        with attest_server() as server:
            key, eligible = _onboard(server, args.subjects)
            _issue_for(server, key, eligible, args.threads, 2)  # warm-up, not counted
            with_log = latency_run(server, key, eligible, args)
            if pair == 0:
                _single_client(server, key, eligible, 300)
                asyncio.run(_status_costs(server.database_url, args.status))
        with _log_lock_holder() as hold, attest_server(before_start=hold) as server:
            key, eligible = _onboard(server, args.subjects)
            _issue_for(server, key, eligible, args.threads, 2)
            without = plain_run(server, key, eligible, args)
        ratios.append(with_log / without)
        print(f"pair {pair + 1}: issuance with log / sequencer held off = {ratios[-1]:.2f}")
    print(f"median ratio over {args.pairs} pairs: {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
