"""Faults under load: a real ``attest serve`` process, token load from 32 clients, waits.

Used by tests/faults (with attest_testing.faultpg, the PostgreSQL a test may crash).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from attest_testing.support import US_PASSPORT

__all__ = ["AUDIENCE", "Answer", "Load", "Serve", "api_key", "eligible_subjects", "wait_until"]

ATTEST = str(Path(sys.executable).parent / "attest")
AUDIENCE = "model:fable-5"
OPERATOR = ["subjects:write", "subjects:read", "evidence:write", "tokens:issue"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Serve:
    """``attest serve`` as a process, its output in a file (read on failure)."""

    def __init__(self, database_url: str, work: Path, **settings: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_key = _admin_key()
        self.work = work
        self.output_path = work / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
        env |= {
            "ATTEST_DATABASE_URL": database_url,
            "ATTEST_PORT": str(self.port),
            "ATTEST_ISSUER": self.url,
            "ATTEST_DATA_DIR": str(work / "data"),
            "ATTEST_KEYSTORE": str(work / "keys"),
            "ATTEST_KEYSTORE_PASSPHRASE": secrets.token_hex(16),
            "ATTEST_PAIRWISE_SECRET": secrets.token_hex(32),
            "ATTEST_BOOTSTRAP_ADMIN_KEY": self.admin_key,
            "ATTEST_LOG_LEVEL": "WARNING",
            "ATTEST_KEY_ROTATION_INTERVAL": "0",
        }
        env |= {f"ATTEST_{key.upper()}": value for key, value in settings.items()}
        self.env = env
        self._out = self.output_path.open("w")
        self.proc = subprocess.Popen(
            [ATTEST, "serve"], env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        self._out.flush()
        return self.output_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"attest serve exited early:\n{self.output()[-4000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"attest serve did not become ready:\n{self.output()[-4000:]}")

    def client(self, key: str | None = None, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._out.close()


def _admin_key() -> str:
    from attest.clients.service import generate_key

    key: str = generate_key().api_key
    return key


def api_key(admin: httpx.Client, name: str, scopes: list[str]) -> str:
    reply = admin.post("/v1/clients", json={"name": name, "tenant": "faults", "scopes": scopes})
    assert reply.status_code == 201, reply.text
    key: str = reply.json()["api_key"]
    return key


def eligible_subjects(server: Serve, count: int) -> tuple[str, list[str]]:
    """(an operator API key, ``count`` subjects with approved evidence for AUDIENCE)."""
    with server.client(server.admin_key) as admin:
        operator_key = api_key(admin, "operator", OPERATOR)
        reviewer_key = api_key(admin, "reviewer", ["evidence:review"])
    subjects = []
    with server.client(operator_key) as operator, server.client(reviewer_key) as reviewer:
        for n in range(count):
            subject = operator.post("/v1/subjects", json={"external_ref": f"fault-{n}"})
            assert subject.status_code in (200, 201), subject.text
            sid = subject.json()["id"]
            evidence = operator.post(f"/v1/subjects/{sid}/evidence", json=US_PASSPORT)
            assert evidence.status_code == 201, evidence.text
            approval = reviewer.post(f"/v1/evidence/{evidence.json()['id']}/approvals", json={})
            assert approval.status_code == 200, approval.text
            subjects.append(sid)
    return operator_key, subjects


@dataclass
class Answer:
    started: float
    ended: float
    status: int  # 0: no answer (transport error or client timeout)
    headers: dict[str, str]
    body: Any
    error: str = ""

    @property
    def took(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    """``threads`` clients issuing tokens back to back until stopped; every answer kept."""

    server: Serve
    api_key: str
    subjects: list[str]
    threads: int = 32
    timeout: float = 10.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _run(self, n: int) -> None:
        subject = self.subjects[n % len(self.subjects)]
        with self.server.client(self.api_key, timeout=self.timeout) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    reply = http.post(
                        "/v1/tokens", json={"subject_id": subject, "audience": AUDIENCE}
                    )
                    body: Any = reply.json() if reply.content else None
                    answer = Answer(
                        started, time.monotonic(), reply.status_code, dict(reply.headers), body
                    )
                except (httpx.HTTPError, ValueError) as exc:
                    answer = Answer(started, time.monotonic(), 0, {}, None, repr(exc))
                with self._lock:
                    self.answers.append(answer)
                if answer.status != 201:
                    time.sleep(0.05)  # a client backing off a little, as Retry-After asks

    def start(self) -> None:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 5)
            assert not worker.is_alive(), "a load client did not return"

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def issued_after(self, moment: float) -> list[Answer]:
        return [a for a in self.snapshot() if a.status == 201 and a.started >= moment]


def wait_until(check: Any, *, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(every)
