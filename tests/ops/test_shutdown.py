"""SIGTERM under load (issue 11 item 4): requests in flight finish, new connections are
refused, the process exits 0 within ATTEST_SHUTDOWN_GRACE.

A real `attest serve` with two workers on a fresh database. Raw sockets, so that every byte
the server sent is seen: an answer is complete when its body has the length its
``Content-Length`` announced. Every request creates a subject with a unique ``external_ref``;
afterwards the database must hold exactly the subjects whose creation was answered 201, so
no request was carried out and then left without its answer.
"""

from __future__ import annotations

import contextlib
import json
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

import asyncpg
import httpx
import pytest

ATTEST = str(Path(sys.executable).parent / "attest")
GRACE = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _request(ref: str, key: str) -> tuple[bytes, bytes]:
    body = json.dumps({"external_ref": ref}).encode()
    head = (
        "POST /v1/subjects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head, body


def _read_answer(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _complete(raw: bytes) -> tuple[int, dict[str, object]] | None:
    """(status, JSON body) when ``raw`` is one complete HTTP answer, else None."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(x.split(":", 1)[1]) for x in lines[1:] if x.lower().startswith("content-length:")),
        None,
    )
    if length is None or len(body) != length:
        return None
    return int(lines[0].split()[1]), json.loads(body)


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    created: set[str] = field(default_factory=set)  # refs answered 201
    refused: int = 0  # connect refused, or closed before a single byte of answer
    incomplete: list[bytes] = field(default_factory=list)  # answered in part: the failure
    other: list[int] = field(default_factory=list)
    refused_before_term: int = 0


def _load(port: int, key: str, stop: threading.Event, term: threading.Event, tally: Tally) -> None:
    while not stop.is_set():
        ref = "load-" + secrets.token_hex(8)
        head, body = _request(ref, key)
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError:
            with tally.lock:
                tally.refused += 1
                tally.refused_before_term += not term.is_set()
            time.sleep(0.01)
            continue
        with sock:
            try:
                sock.sendall(head + body)
            except OSError:
                with tally.lock:
                    tally.refused += 1
                continue
            raw = _read_answer(sock)
        answer = _complete(raw)
        with tally.lock:
            if not raw:
                tally.refused += 1
                tally.refused_before_term += not term.is_set()
            elif answer is None:
                tally.incomplete.append(raw)
            elif answer[0] == 201:
                tally.created.add(ref)
            else:
                tally.other.append(answer[0])


async def _refs(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT external_ref FROM subjects")
    finally:
        await conn.close()
    return {r["external_ref"] for r in rows}


@pytest.mark.xdist_group("serve-load")
def test_sigterm_under_load_finishes_in_flight_refuses_new_and_exits_0(
    fresh_database: str, tmp_path: Path
) -> None:
    import asyncio

    from attest.clients.service import generate_key

    port = _free_port()
    key = generate_key().api_key
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env.update(
        ATTEST_DATABASE_URL=fresh_database,
        ATTEST_PORT=str(port),
        ATTEST_DATA_DIR=str(tmp_path / "data"),
        ATTEST_KEYSTORE=str(tmp_path / "keys"),
        ATTEST_KEYSTORE_PASSPHRASE=secrets.token_urlsafe(24),
        ATTEST_PAIRWISE_SECRET=secrets.token_urlsafe(24),
        ATTEST_BOOTSTRAP_ADMIN_KEY=key,
        ATTEST_WORKERS="2",
        ATTEST_SHUTDOWN_GRACE=str(GRACE),
        ATTEST_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen(
        [ATTEST, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "attest serve did not become ready"
            time.sleep(0.2)

        # Requests certainly in flight at the signal: headers and half the body sent.
        slow = []
        for n in range(4):
            head, body = _request(f"slow-{n}", key)
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(head + body[: len(body) // 2])
            slow.append((sock, body[len(body) // 2 :], f"slow-{n}"))

        tally = Tally()
        stop, term = threading.Event(), threading.Event()
        threads = [
            threading.Thread(target=_load, args=(port, key, stop, term, tally)) for _ in range(12)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        with tally.lock:
            before = len(tally.created)
        term.set()
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)

        # New connections are refused once the signal is handled.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

        # The slow requests are still being served: they finish and are answered in full.
        for sock, rest, ref in slow:
            with sock:
                sock.sendall(rest)
                answer = _complete(_read_answer(sock))
            assert answer is not None, ref
            assert answer[0] == 201, (ref, answer)
            assert answer[1]["external_ref"] == ref
            tally.created.add(ref)

        output, _ = proc.communicate(timeout=GRACE + 20)
        elapsed = time.monotonic() - signalled
        stop.set()
        for thread in threads:
            thread.join(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == 0, output
    assert elapsed < GRACE + 5, elapsed
    assert before > 10, "the load did not get going"  # the test measured something
    assert not tally.incomplete, tally.incomplete[:3]
    assert tally.refused_before_term == 0
    assert not tally.other, tally.other
    # Exactly the subjects whose creation was answered: none carried out and left unanswered.
    stored = {r for r in asyncio.run(_refs(fresh_database)) if r.startswith(("load-", "slow-"))}
    assert stored == tally.created
    assert "Traceback" not in output, output


@pytest.mark.xdist_group("serve-load")
def test_sigterm_grace_bounds_a_request_that_never_finishes(
    fresh_database: str, tmp_path: Path
) -> None:
    from attest.clients.service import generate_key

    port = _free_port()
    key = generate_key().api_key
    grace = 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env.update(
        ATTEST_DATABASE_URL=fresh_database,
        ATTEST_PORT=str(port),
        ATTEST_DATA_DIR=str(tmp_path / "data"),
        ATTEST_KEYSTORE=str(tmp_path / "keys"),
        ATTEST_KEYSTORE_PASSPHRASE=secrets.token_urlsafe(24),
        ATTEST_PAIRWISE_SECRET=secrets.token_urlsafe(24),
        ATTEST_BOOTSTRAP_ADMIN_KEY=key,
        ATTEST_WORKERS="1",
        ATTEST_SHUTDOWN_GRACE=str(grace),
    )
    proc = subprocess.Popen(
        [ATTEST, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "attest serve did not become ready"
            time.sleep(0.2)
        head, body = _request("never", key)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head + body[:5])  # the rest never comes
            time.sleep(0.3)
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=grace + 20)
            elapsed = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert grace - 0.5 <= elapsed < grace + 5, elapsed
