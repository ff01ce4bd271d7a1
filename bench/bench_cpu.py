"""CPU per request, by process kind, under wrk (issue 11: where an issuance's cost lies).

Run: python bench/bench_cpu.py [--rows healthz,issued,denied] [--duration 10]
                               [--connections 32] [SETTING=VALUE ...]

Starts ``attest serve`` as bench/bench_load.py does (same seeding, same wrk scripts; the
SETTING=VALUE pairs are extra ``ATTEST_<SETTING>`` values, such as
``issue_batch_workers=1``), runs one wrk cell per row and, around each cell, reads the CPU
time (user + system, /proc/<pid>/stat) of every process on the machine, grouped as the
attest workers (python), PostgreSQL (every postgres process) and the rest. It prints the
rate and, per answered request, the CPU microseconds of each group: unlike req/s, which
moves with whatever else the shared machine runs, CPU per request mostly does not, so two
builds compare by it. wrk's own CPU is not counted (it has exited when the cell is read).

It also prints, per answered request, what the database was made to do, which does not
move with the machine's load at all: the WAL bytes written (the server's WAL position before
and after the cell), and the transactions committed and rows inserted and updated in the
server's database (pg_stat_database, whose counters a backend reports within a second: the
cell waits for them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import bench_load
from _server import attest_server

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of every live process, summed by kind."""
    totals: dict[str, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / TICK
        kind = "postgres" if name.startswith("postgres") else name
        kind = "python" if kind.startswith("python") else kind
        totals[kind] = totals.get(kind, 0.0) + used
    return totals


DATABASE_WORK = """
SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS wal, xact_commit AS commits,
    tup_inserted AS inserted, tup_updated AS updated
FROM pg_stat_database WHERE datname = current_database()
"""


def database_work(url: str) -> dict[str, float]:
    """The database's WAL position and its commit and row counters so far."""

    async def read() -> dict[str, float]:
        conn = await asyncpg.connect(url)
        try:
            row = await conn.fetchrow(DATABASE_WORK)
        finally:
            await conn.close()
        assert row is not None
        return {k: float(v) for k, v in row.items()}

    return asyncio.run(read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="healthz,issued,denied")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--subjects", type=int, default=50)
    parser.add_argument("settings", nargs="*", help="extra NAME=VALUE settings")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_cpu: wrk is missing (apt-get install -y wrk)", file=sys.stderr)
        return 2
    settings = {
        "keystore_passphrase": secrets.token_hex(16),
        "pairwise_secret": secrets.token_hex(32),
        "log_level": "INFO",
        "client_rate_limit": "100000000",  # one client sends every request (bench_load)
        **dict(pair.split("=", 1) for pair in args.settings),
    }
    with attest_server(**settings) as server:
        key, eligible, ineligible = bench_load._seed(server, args.subjects)
        cases = bench_load._cases(server, key, eligible, ineligible)
        work = Path(tempfile.mkdtemp(prefix="attest-cpu-"))
        print(f"{args.connections} connections, {args.duration:g} s per row; CPU per request:")
        for word in args.rows.split(","):
            case = next(c for c in cases if word.strip() in c.name)
            script = bench_load._script(case, key, work)
            bench_load._wrk(server.base, case, script, args.connections, 2, 2)  # warm-up
            time.sleep(1.5)  # the warm-up's statistics reported
            work_before = database_work(server.database_url)
            before = cpu_seconds()
            started = time.monotonic()
            got = bench_load._wrk(server.base, case, script, args.connections, 2, args.duration)
            after = cpu_seconds()
            time.sleep(1.5)  # the cell's statistics reported
            work_after = database_work(server.database_url)
            answered = got["requests"]
            done = {k: (work_after[k] - work_before[k]) / answered for k in work_after}
            used = {k: after[k] - before.get(k, 0.0) for k in after}
            parts = ", ".join(
                f"{kind} {1e6 * seconds / answered:,.0f} us"
                for kind, seconds in sorted(used.items(), key=lambda kv: -kv[1])
                if seconds > 0.05
            )
            print(
                f"- {case.name}: {got['rate']:,.0f}/s (p99 {got['p99_us'] / 1000:.1f} ms, "
                f"{got['unexpected']} unexpected, {time.monotonic() - started:.0f} s): {parts}; "
                f"database: {done['wal']:,.0f} WAL bytes, {done['commits']:.2f} commits, "
                f"{done['inserted']:.2f} rows inserted, {done['updated']:.2f} updated"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
