"""Transparency log: sequencing throughput, and proof times at 1M and 10M leaves.

Run: python bench/bench_log.py [--events 50000] [--leaves 1000000,10000000] [--proofs 2000]

1. Sequencing: starts ``attest serve`` on a fresh database (ATTEST_TEST_DATABASE_URL, else
   an embedded PostgreSQL), commits EVENTS audit events in one transaction, and times how
   long the sequencer (batches of 2000, tiles in PostgreSQL) takes to give them all a log
   position, and until a signed checkpoint covers them; then 300 inclusion proofs over
   HTTP (round trip, one SQL read of the tiles each).
2. Proofs: grows one tree in memory through each size of LEAVES with the service's own
   code (attest.log.merkle, the same tiles the database holds; 10M leaves take about 40 s
   and 370 MB on this machine) and at each size times PROOFS inclusion and consistency
   proofs (planning, reading the tiles, hashing), each verified once.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid

import asyncpg
import httpx
from _server import attest_server

from attest.log import merkle
from attest.verify import _tlog


async def _insert(url: str, count: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO audit_events (event_id, type, occurred_at, tenant, data) "
            "VALUES ($1, 'bench.event', now(), 'default', $2::jsonb)",
            [(uuid.uuid4(), f'{{"n": {i}}}') for i in range(count)],
        )
    finally:
        await conn.close()


async def _pending(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE log_index IS NULL"
        )
        return count
    finally:
        await conn.close()


def _checkpoint_size(base: str) -> int:
    response = httpx.get(base + "/v1/log/checkpoint")
    return int(response.text.split("\n")[1]) if response.status_code == 200 else 0


def sequencing(events: int) -> None:
    with attest_server(log_checkpoint_interval="1") as server:
        while asyncio.run(_pending(server.database_url)):
            time.sleep(0.1)  # the bootstrap events first
        before = _checkpoint_size(server.base)
        asyncio.run(_insert(server.database_url, events))
        start = time.perf_counter()
        while asyncio.run(_pending(server.database_url)):
            time.sleep(0.02)
        sequenced = time.perf_counter() - start
        while _checkpoint_size(server.base) < before + events:
            time.sleep(0.02)
        checkpointed = time.perf_counter() - start
        size = _checkpoint_size(server.base)
        rng = random.Random(3)
        served: list[float] = []
        with httpx.Client(base_url=server.base) as client:
            for _ in range(300):
                params = {"index": rng.randrange(size), "tree_size": size}
                t0 = time.perf_counter()
                assert client.get("/v1/log/proofs/inclusion", params=params).status_code == 200
                served.append(time.perf_counter() - t0)
    print(
        f"sequencing: {events} events committed at once -> all sequenced in "
        f"{sequenced:.2f} s ({events / sequenced:,.0f} events/s); in a signed checkpoint "
        f"after {checkpointed:.2f} s"
    )
    print(f"inclusion proof over HTTP, tiles in PostgreSQL, at {size:,} leaves: {_ms(served)}")


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    return f"median {statistics.median(samples) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms"


def proofs(sizes: list[int], count: int) -> None:
    """Grow one tree through each of ``sizes`` (ascending) and time proofs at each."""
    start = time.perf_counter()
    tiles: dict[tuple[int, int], bytes] = {}
    size = 0
    batch = 10_000
    for leaves in sizes:
        for first in range(size, leaves, batch):
            chunk = [b"leaf %d" % i for i in range(first, min(first + batch, leaves))]
            tiles.update(merkle.append(size, tiles, chunk))
            size += len(chunk)
        built = time.perf_counter() - start
        print(f"proofs: {size:,} leaves, {len(tiles):,} tiles built in memory in {built:.1f} s")
        _time_proofs(tiles, size, count)


def _time_proofs(tiles: dict[tuple[int, int], bytes], size: int, count: int) -> None:
    (root,) = merkle.resolve(merkle.root_plan(size), tiles)
    rng = random.Random(7)
    inclusion: list[float] = []
    for _ in range(count):
        index = rng.randrange(size)
        t0 = time.perf_counter()
        plan = merkle.inclusion_plan(index, size)
        wanted = {k: tiles[k] for k in merkle.tiles_for(plan)}  # what one SQL read returns
        proof = merkle.resolve(plan, wanted)
        inclusion.append(time.perf_counter() - t0)
    _tlog.verify_inclusion(index, size, _tlog.leaf_hash(b"leaf %d" % index), proof, root)
    consistency: list[float] = []
    for _ in range(count):
        first = rng.randrange(1, size)
        t0 = time.perf_counter()
        plan = merkle.consistency_plan(first, size)
        wanted = {k: tiles[k] for k in merkle.tiles_for(plan)}
        proof = merkle.resolve(plan, wanted)
        consistency.append(time.perf_counter() - t0)
    (first_root,) = merkle.resolve(merkle.root_plan(first), tiles)
    _tlog.verify_consistency(first, size, first_root, root, proof)
    print(f"inclusion proof at {size:,} leaves: {_ms(inclusion)}")
    print(f"consistency proof to {size:,} leaves: {_ms(consistency)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument(
        "--leaves",
        default="1000000,10000000",
        help="Tree sizes for the proof timings, comma-separated; one tree grows through them.",
    )
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--skip-server", action="store_true", help="Only the proof timings.")
    args = parser.parse_args()
    if not args.skip_server:
        sequencing(args.events)
    proofs(sorted(int(n) for n in args.leaves.split(",")), args.proofs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
