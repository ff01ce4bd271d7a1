"""How close attest's issuance is to the floor of any recorded issuance on this stack (issue 11).

Run: python bench/bench_floor.py [--duration 5] [--connections 32] [--rounds 2] [--threads 2]

Starts ``attest serve`` as bench/bench_load.py does (same seeding and wrk scripts) and,
beside it on the same database server, bench/_floor_app.py: the least work a recorded
issuance must do (two ES256 signatures, three rows group-committed durably, the HTTP stack;
no decision, no rate limit, no log; its docstring). Both are served by granian with the
same workers. Cells alternate, ROUNDS times, at each connection count:

  attest GET /healthz, attest POST /v1/tokens issued, floor GET /healthz, floor POST /v1/tokens,
  the floor without recording (its signatures only), the floor without signing (recording only)

and the table gives each row's median req/s and p99 and its ratio to attest's /healthz
(issue 11's target is 0.40x at 32 connections) and to the floor's own /healthz. If the
floor itself stays under a target, no implementation on this stack and machine meets it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import bench_load
import httpx
from _floor_app import TABLES
from _server import attest_server

ROWS = [
    "attest GET /healthz",
    "attest POST /v1/tokens issued",
    "floor GET /healthz",
    "floor POST /v1/tokens",
    "floor, not recorded (signatures only)",
    "floor, not signed (recording only)",
]
#: The floor's rows and the path each posts to.
FLOOR_PATHS = {ROWS[3]: "/v1/tokens", ROWS[4]: "/floor/sign-only", ROWS[5]: "/floor/record-only"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _tables(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(TABLES)
        return (
            await conn.fetchval("SELECT count(*) FROM floor_attestations"),
            await conn.fetchval("SELECT count(*) FROM floor_events"),
        )
    finally:
        await conn.close()


def _floor_server(
    database_url: str, key: str, workers: int, batch_workers: int
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = os.environ | {
        "FLOOR_DATABASE_URL": database_url,
        "FLOOR_API_KEY": key,
        "FLOOR_BATCH_WORKERS": str(batch_workers),
    }
    command = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--http",
        "1",
        "--workers",
        str(workers),
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--factory",
        "_floor_app:app",
    ]
    process = subprocess.Popen(
        command, env=env, cwd=Path(__file__).parent, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the floor server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", default="32")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--subjects", type=int, default=50)
    parser.add_argument(
        "--batch-workers",
        type=int,
        default=2,
        help="the floor's concurrent batches per worker process (attest: 2)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_floor: wrk is missing (apt-get install -y wrk)", file=sys.stderr)
        return 2
    conns = [int(c) for c in args.connections.split(",") if c.strip()]
    workers = os.cpu_count() or 1
    settings = {
        "keystore_passphrase": secrets.token_hex(16),
        "pairwise_secret": secrets.token_hex(32),
        "log_level": os.environ.get("ATTEST_LOG_LEVEL", "INFO"),  # as `make run`
        "client_rate_limit": "100000000",  # as bench_load: one client sends every request
    }
    with attest_server(**settings) as server:
        key, eligible, ineligible = bench_load._seed(server, args.subjects)
        cases = {c.name: c for c in bench_load._cases(server, key, eligible, ineligible)}
        asyncio.run(_tables(server.database_url))
        floor, floor_base = _floor_server(server.database_url, key, workers, args.batch_workers)
        work = Path(tempfile.mkdtemp(prefix="attest-floor-"))
        try:
            plan = [
                (ROWS[0], server.base, cases["GET /healthz"]),
                (ROWS[1], server.base, cases["POST /v1/tokens issued"]),
                (ROWS[2], floor_base, cases["GET /healthz"]),
                *((name, floor_base, cases["POST /v1/tokens issued"]) for name in ROWS[3:]),
            ]
            scripts = {name: bench_load._script(case, key, work) for name, _, case in plan}
            for name, path in FLOOR_PATHS.items():
                script = scripts[name].with_name(f"floor-{ROWS.index(name)}.lua")
                script.write_text(scripts[name].read_text().replace('"/v1/tokens"', f'"{path}"'))
                scripts[name] = script
            print(
                f"attest serve and the floor, {workers} granian workers each; wrk "
                f"{args.threads} threads, {args.duration:g} s per cell, {args.rounds} "
                f"rounds; {os.cpu_count()} cores shared by all"
            )
            for name, base, case in plan:  # warm-up
                bench_load._wrk(base, case, scripts[name], 32, args.threads, 2)
            results: dict[tuple[str, int], list[dict[str, Any]]] = {}
            for c in conns:
                for _ in range(args.rounds):
                    for name, base, case in plan:
                        got = bench_load._wrk(
                            base, case, scripts[name], c, args.threads, args.duration
                        )
                        results.setdefault((name, c), []).append(got)
            rows, events = asyncio.run(_tables(server.database_url))
            answered = sum(
                r["expected"]
                for (n, _), rs in results.items()
                for r in rs
                if n in (ROWS[3], ROWS[5])
            )
        finally:
            floor.terminate()
            floor.wait(timeout=30)
            shutil.rmtree(work, ignore_errors=True)
    _table(results, conns)
    print(
        f"\nfloor: {rows:,} attestations and {events:,} events recorded; "
        f"{answered:,} answered 201 in the measured cells (the rest in the warm-up)"
    )
    return 0


def _table(results: dict[tuple[str, int], list[dict[str, Any]]], conns: list[int]) -> None:
    print(
        "\n| row | conns | req/s (each round) | x attest /healthz | x own /healthz | p99 ms "
        "| unexpected | errors |\n|---|---:|---|---:|---:|---:|---:|---:|"
    )
    for c in conns:
        rate = {n: statistics.median(r["rate"] for r in results[(n, c)]) for n in ROWS}
        for n in ROWS:
            runs = results[(n, c)]
            own = rate[ROWS[0] if n.startswith("attest") else ROWS[2]]
            p99 = statistics.median(r["p99_us"] for r in runs) / 1000
            bad = sum(r["unexpected"] for r in runs)
            errors = sum(r["connect"] + r["read"] + r["write"] + r["timeout"] for r in runs)
            each = " · ".join(f"{r['rate']:,.0f}" for r in runs)
            print(
                f"| {n} | {c} | {each} | {rate[n] / rate[ROWS[0]]:.2f} | "
                f"{rate[n] / own:.2f} | {p99:.1f} | {bad} | {errors} |"
            )


if __name__ == "__main__":
    raise SystemExit(main())
