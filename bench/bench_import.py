"""Bulk onboarding throughput: subjects per second through ``attest subjects import``.

Run: python bench/bench_import.py [--rows 100000] [--evidence-every 0]

Starts ``attest serve`` as a separate process on a fresh database (on the server named by
ATTEST_TEST_DATABASE_URL, else an embedded PostgreSQL in a temporary directory), writes a
JSON Lines file of ROWS subjects (every Nth row with an IAL1 manual review when
--evidence-every N is given), imports it over HTTP with the batch endpoint and prints
subjects per second. Then it imports the same file again to time an idempotent re-run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from attest.clients.service import generate_key
from attest.subjects.importer import run_import

EVIDENCE = {
    "type": "manual_review",
    "document_type": "us_passport",
    "attributes": {"citizenship": ["US"], "us_person_status": "us_citizen"},
    "assurance": "IAL1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("attest serve exited during start-up")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("attest serve did not become ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--evidence-every", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="attest-bench-"))
    embedded = None
    base_url = os.environ.get("ATTEST_TEST_DATABASE_URL")
    if not base_url:
        from attest.db.embedded import EmbeddedPostgres  # noqa: PLC0415 - only when needed

        embedded = EmbeddedPostgres(work / "pg")
        base_url = embedded.start()
    name = f"attest_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(base_url, f'CREATE DATABASE "{name}"'))
    port = _free_port()
    admin_key = generate_key().api_key
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")} | {
        "ATTEST_DATABASE_URL": _with_database(base_url, name),
        "ATTEST_PORT": str(port),
        "ATTEST_DATA_DIR": str(work / "data"),
        "ATTEST_KEYSTORE": str(work / "keys"),
        "ATTEST_KEYSTORE_PASSPHRASE": secrets.token_hex(16),
        "ATTEST_PAIRWISE_SECRET": secrets.token_hex(32),
        "ATTEST_BOOTSTRAP_ADMIN_KEY": admin_key,
        "ATTEST_LOG_LEVEL": "WARNING",
        "ATTEST_BATCH_MAX_ITEMS": str(max(args.batch_size, 1)),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "attest.cli", "serve"], env=env, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        source = work / "subjects.jsonl"
        with source.open("w", encoding="utf-8") as fh:
            for n in range(args.rows):
                item: dict[str, object] = {"external_ref": f"bench-{n:07d}"}
                if args.evidence_every and n % args.evidence_every == 0:
                    item["evidence"] = [EVIDENCE]
                fh.write(json.dumps(item) + "\n")
        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
            first = run_import(
                source, client, batch_size=args.batch_size, concurrency=args.concurrency
            )
            again = run_import(
                source, client, batch_size=args.batch_size, concurrency=args.concurrency
            )
        every = {0: "", 1: ", evidence on every row"}
        evidence = every.get(args.evidence_every, f", evidence on 1 row in {args.evidence_every}")
        print(
            f"import: {first.created} subjects{evidence} in {first.seconds:.2f} s = "
            f"{first.created / first.seconds:,.0f} subjects/s "
            f"(batch {args.batch_size}, {args.concurrency} in flight)"
        )
        print(
            f"re-run: {again.existing} existing, {again.created} created in "
            f"{again.seconds:.2f} s = {again.existing / again.seconds:,.0f} rows/s"
        )
        ok = first.created == args.rows and again.created == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
        asyncio.run(_admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if embedded is not None:
            embedded.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
