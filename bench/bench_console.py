"""The auditor pages' cost against the console's home page, over HTTP, on a large trail.

Run: python bench/bench_console.py [--events 100000] [--rounds 15]

Starts ``attest serve`` on a fresh database (ATTEST_TEST_DATABASE_URL, else an embedded
PostgreSQL), writes EVENTS decision events (``token.issued`` and ``token.denied`` over three
audiences and four denial reasons, spread over the last 30 days) straight into the audit
trail, waits until the sequencer has checkpointed them all, signs in to the console, and
then times, interleaved in rounds on one session:

  baseline      GET /console (the home page: session check, one template)
  charts 24h    GET /console/audit/charts?window=24h (two aggregate queries, four SVGs)
  charts 30d    GET /console/audit/charts?window=30d
  checkpoints   GET /console/audit/checkpoints (50 checkpoints, 50 consistency proofs)

Each figure is the median over rounds of (page time / baseline time), the two requests run
back to back, so load on a shared machine cancels out in the pair; the medians of the raw
times are printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time

import asyncpg
import httpx
from _server import attest_server

PAGES = {
    "charts 24h": "/console/audit/charts?window=24h",
    "charts 30d": "/console/audit/charts?window=30d",
    "checkpoints": "/console/audit/checkpoints",
}

# Decision events as the token service writes them (audience, reasons), minus the ids.
FILL = """
INSERT INTO audit_events (event_id, type, occurred_at, tenant, data)
SELECT gen_random_uuid(),
       CASE WHEN i % 4 = 0 THEN 'token.denied' ELSE 'token.issued' END,
       now() - make_interval(secs => (i * 7919) % (30 * 86400)),
       'default',
       CASE WHEN i % 4 = 0
            THEN jsonb_build_object('audience', 'model:a' || (i % 3),
                                    'reasons', jsonb_build_array('reason_' || (i % 16 / 4)))
            ELSE jsonb_build_object('audience', 'model:a' || (i % 3), 'jti', 'j' || i) END
FROM generate_series(1, $1) AS i
"""


async def _fill(url: str, events: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(FILL, events)
    finally:
        await conn.close()


def _size(base: str) -> int:
    return int(httpx.get(base + "/v1/log/checkpoint").text.split("\n")[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with attest_server(log_checkpoint_interval="0.2") as server:
        asyncio.run(_fill(server.database_url, args.events))
        started = time.monotonic()
        while _size(server.base) < args.events:
            time.sleep(0.5)
        print(
            f"{args.events} events sequenced and checkpointed in {time.monotonic() - started:.1f} s"
        )
        with httpx.Client(base_url=server.base, timeout=60) as http:
            form = http.get("/console/sign-in").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token is not None
            signed = http.post(
                "/console/sign-in", data={"api_key": server.admin_key, "csrf_token": token[1]}
            )
            assert signed.status_code in {200, 303}, signed.status_code
            for path in ("/console", *PAGES.values()):  # warm up
                assert http.get(path).status_code == 200, path
            times: dict[str, list[float]] = {"baseline": [], **{name: [] for name in PAGES}}
            ratios: dict[str, list[float]] = {name: [] for name in PAGES}
            for _ in range(args.rounds):
                for name, path in PAGES.items():
                    t0 = time.perf_counter()
                    http.get("/console").raise_for_status()
                    t1 = time.perf_counter()
                    http.get(path).raise_for_status()
                    t2 = time.perf_counter()
                    times["baseline"].append(t1 - t0)
                    times[name].append(t2 - t1)
                    ratios[name].append((t2 - t1) / (t1 - t0))
    print(f"{'page':<12} {'median ms':>10} {'x baseline (paired median)':>28}")
    print(f"{'baseline':<12} {statistics.median(times['baseline']) * 1000:>10.1f} {1:>28.1f}")
    for name in PAGES:
        print(
            f"{name:<12} {statistics.median(times[name]) * 1000:>10.1f} "
            f"{statistics.median(ratios[name]):>28.1f}"
        )


if __name__ == "__main__":
    main()
