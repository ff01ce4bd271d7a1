"""A real ``attest serve`` process on a fresh database, for the HTTP benchmarks.

The database is on the server named by ATTEST_TEST_DATABASE_URL, else on an embedded
PostgreSQL in a temporary directory; it is dropped when the context ends.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from attest.clients.service import generate_key


@dataclass(frozen=True)
class Server:
    base: str  # http://127.0.0.1:<port>
    admin_key: str
    work: Path  # a temporary directory for the benchmark's files
    database_url: str = ""  # the fresh database the server runs on
    pid: int = 0  # the server process (for a profiler to attach to)


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


@contextmanager
def attest_server(
    before_start: Callable[[str], object] | None = None,
    uvicorn_workers: int = 0,
    **settings: str,
) -> Iterator[Server]:
    """Serve attest on a free loopback port with ``ATTEST_<NAME>`` settings added.

    ``before_start(database_url)`` runs once the fresh database exists and before the
    server starts (a benchmark may take a lock there first)."""
    work = Path(tempfile.mkdtemp(prefix="attest-bench-"))
    embedded = None
    base_url = os.environ.get("ATTEST_TEST_DATABASE_URL")
    if not base_url:
        from attest.db.embedded import EmbeddedPostgres  # noqa: PLC0415 - only when needed

        embedded = EmbeddedPostgres(work / "pg")
        base_url = embedded.start()
    name = f"attest_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(base_url, f'CREATE DATABASE "{name}"'))
    if before_start is not None:
        before_start(_with_database(base_url, name))
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
    }
    env |= {f"ATTEST_{key.upper()}": value for key, value in settings.items()}
    command = [sys.executable, "-m", "attest.cli", "serve"]
    if uvicorn_workers:
        # uvicorn with uvloop and httptools, several workers, the app from bench/_factory.py.
        command = [sys.executable, "-m", "uvicorn", "--factory", "_factory:app"]
        command += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        command += ["--workers", str(uvicorn_workers), "--port", str(port)]
        command += ["--app-dir", str(Path(__file__).parent)]
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        yield Server(base, admin_key, work, env["ATTEST_DATABASE_URL"], server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        asyncio.run(_admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(work, ignore_errors=True)
