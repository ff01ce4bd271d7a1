"""Three ``attest serve`` processes on one database, under concurrent issuance, while a key
rotation is forced and the log sequencer's leader is killed with SIGKILL (issue 11, item 5).

What must hold, each checked below:

- exactly one active signing key at every moment (the keys table and ``GET /v1/keys``,
  sampled throughout);
- every token answered 201 verifies with a ``RemoteJWKS`` verifier that refreshes only on
  its cache lifetime (no refetch on an unknown kid), and has its attestation and exactly one
  ``token.issued`` audit event;
- the log ends with no gap and no event twice, every checkpoint (the public one sampled
  throughout, and every one stored) is consistent with the next (consistency proofs from
  ``GET /v1/log/proofs/consistency``), and the last covers every event;
- another instance holds the sequencer lock within ``TAKEOVER_BOUND`` seconds of the
  SIGKILL (measured: pg_locks/pg_stat_activity, the sequencer connection's
  application_name), and the log grows again;
- the status lists hold every revocation made during the run, and no other.

It runs real processes for about 30-40 s, so it runs once per CI: on the local PostgreSQL
(``ATTEST_TEST_DATABASE_URL``), not in the embedded-PostgreSQL pass.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from attest_testing.support import OPERATOR_SCOPES, US_PASSPORT

from attest.clients.service import generate_key
from attest.log.repository import LOG_LOCK
from attest.verify import InvalidToken, RemoteJWKS, Verifier
from attest.verify._tlog import open_checkpoint, parse_vkey, verify_consistency

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("ATTEST_TEST_DATABASE_URL"),
        reason="runs once per CI, on the local PostgreSQL (ATTEST_TEST_DATABASE_URL)",
    ),
]

ISSUER = "https://attest.cluster.test"
AUDIENCE = "model:fable-5"
#: The documented bound (README "Several instances"): the killed leader's backend exits
#: when its socket closes, freeing the lock, and a follower polls every 0.1 s.
TAKEOVER_BOUND = 2.0
LOAD_THREADS = 6
#: The run after the SIGKILL, under load (seconds).
AFTER_KILL = 10.0


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def claims(token: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(_b64(token.split(".")[1]))
    return found


def kid_of(token: str) -> str:
    kid: str = json.loads(_b64(token.split(".", maxsplit=1)[0]))["kid"]
    return kid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Instance:
    name: str
    base: str
    process: subprocess.Popen[bytes]
    alive: bool = True

    def pids(self) -> set[int]:
        """The process and its children (a server may run worker processes)."""
        try:
            parent = psutil.Process(self.process.pid)
            return {parent.pid, *(c.pid for c in parent.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def kill(self) -> None:
        """SIGKILL, the whole process group: no shutdown code runs anywhere."""
        self.alive = False
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


class Database:
    """Short queries on the test database from the test's threads (own event loop)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def fetch(self, query: str, *args: Any) -> list[Any]:
        async def run() -> list[Any]:
            conn = await asyncpg.connect(self.url)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(run())

    def leader_pid(self) -> int | None:
        """The backend-side pid named in application_name of the sequencer lock holder."""
        rows = self.fetch(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = $1 AND l.objid::bigint = $2",
            LOG_LOCK >> 32,
            LOG_LOCK & 0xFFFFFFFF,
        )
        if not rows:
            return None
        name: str = rows[0]["application_name"]
        assert name.startswith("attest-log-sequencer pid "), name
        return int(name.rsplit(" ", 1)[1])


@dataclass
class Run:
    """What the load, the samplers and the main thread saw."""

    issued: list[tuple[str, str]] = field(default_factory=list)  # (token, instance)
    revoked: set[str] = field(default_factory=set)  # jtis answered 201 by a revocation
    unknown: set[str] = field(default_factory=set)  # revocation sent to the killed instance
    failures: list[str] = field(default_factory=list)
    active_samples: int = 0
    api_samples: int = 0
    checkpoints: list[tuple[int, bytes]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _start(env: dict[str, str], name: str, work: Path) -> Instance:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "attest.cli", "serve"],
        env=env | {"ATTEST_PORT": str(port), "ATTEST_DATA_DIR": str(work / name)},
        stdout=subprocess.DEVNULL,
        stderr=(work / f"{name}.log").open("wb"),
        start_new_session=True,  # its own process group, killed as one
    )
    return Instance(name, f"http://127.0.0.1:{port}", process)


def _wait_ready(instance: Instance, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise AssertionError(f"{instance.name} exited during start-up")
        try:
            if httpx.get(instance.base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{instance.name} did not become ready")


@pytest.fixture
def cluster(cluster_db: str, tmp_path: Path) -> Iterator[tuple[list[Instance], str]]:
    admin_key = generate_key().api_key
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")} | {
        "ATTEST_DATABASE_URL": cluster_db,
        "ATTEST_ISSUER": ISSUER,
        "ATTEST_KEYSTORE": str(tmp_path / "keys"),
        "ATTEST_KEYSTORE_PASSPHRASE": secrets.token_hex(16),
        "ATTEST_PAIRWISE_SECRET": secrets.token_hex(32),
        "ATTEST_BOOTSTRAP_ADMIN_KEY": admin_key,
        "ATTEST_LOG_LEVEL": "WARNING",
        "ATTEST_FOUR_EYES_MIN_ASSURANCE": "never",
        # A rotation that completes inside the run: published 3 s before it signs, more
        # than the JWKS max-age, so every verifier has the key before its first token.
        "ATTEST_JWKS_MAX_AGE": "2",
        "ATTEST_KEY_PREPUBLISH": "3",
        "ATTEST_KEY_CHECK_INTERVAL_MS": "200",
        "ATTEST_LOG_CHECKPOINT_INTERVAL": "0.5",
    }
    first = _start(env, "a", tmp_path)
    instances = [first]
    try:
        _wait_ready(first)  # migrations and the first key, before the others start
        instances += [_start(env, name, tmp_path) for name in ("b", "c")]
        for instance in instances[1:]:
            _wait_ready(instance)
        yield instances, admin_key
    finally:
        for instance in instances:
            if instance.process.poll() is None:
                os.killpg(instance.process.pid, signal.SIGTERM)
        for instance in instances:
            try:
                instance.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(instance.process.pid, signal.SIGKILL)


def _client(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _setup(first: Instance, admin_key: str) -> tuple[str, list[str]]:
    """An operator key (issue and revoke) and a few eligible subjects."""
    with _client(first.base, admin_key) as admin:
        made = admin.post(
            "/v1/clients",
            json={
                "name": "operator",
                "tenant": "cluster",
                "scopes": [*OPERATOR_SCOPES, "tokens:revoke"],
            },
        )
        assert made.status_code == 201, made.text
    key: str = made.json()["api_key"]
    subjects = []
    with _client(first.base, key) as operator:
        for n in range(8):
            subject = operator.post("/v1/subjects", json={"external_ref": f"c-{n}"}).json()
            evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=US_PASSPORT)
            assert evidence.json()["status"] == "verified", evidence.text
            subjects.append(subject["id"])
    return key, subjects


def _load(
    run: Run, instances: list[Instance], key: str, subjects: list[str], verifier: Verifier, n: int
) -> None:
    """Issue (and now and then revoke) tokens round-robin over the live instances."""
    clients = {i.name: _client(i.base, key) for i in instances}
    rng = random.Random(n)
    try:
        for i in itertools.count(n):
            if run.stop.is_set():
                return
            instance = instances[i % len(instances)]
            if not instance.alive:
                continue
            body = {"subject_id": subjects[i % len(subjects)], "audience": AUDIENCE}
            try:
                reply = clients[instance.name].post("/v1/tokens", json=body)
            except httpx.TransportError:
                if instance.alive:
                    run.failures.append(f"{instance.name}: transport error while alive")
                continue  # the killed instance: its in-flight requests get no answer
            if reply.status_code != 201:
                run.failures.append(f"{instance.name}: {reply.status_code} {reply.text[:200]}")
                continue
            token: str = reply.json()["token"]
            run.issued.append((token, instance.name))
            try:
                verifier.verify(token)
            except InvalidToken as exc:
                run.failures.append(f"token by {kid_of(token)[:8]} refused: {exc.code}")
            if rng.random() < 0.1:  # revoke about one token in ten, on another instance
                other = rng.choice([x for x in instances if x.alive])
                jti = claims(token)["jti"]
                try:
                    done = clients[other.name].post(f"/v1/tokens/{jti}/revocations", json={})
                except httpx.TransportError:
                    run.unknown.add(jti)  # killed mid-request: it may or may not have landed
                    continue
                if done.status_code == 201:
                    run.revoked.add(jti)
                elif other.alive:
                    run.failures.append(f"revocation on {other.name}: {done.status_code}")
    finally:
        for client in clients.values():
            client.close()


def _sample_keys(run: Run, db: Database, instances: list[Instance], admin_key: str) -> None:
    """Exactly one active key, in the keys table and in every instance's GET /v1/keys."""
    clients = {i.name: _client(i.base, admin_key) for i in instances}
    try:
        for i in itertools.count():
            if run.stop.is_set():
                return
            active = db.fetch("SELECT kid FROM signing_keys WHERE state = 'active'")
            run.active_samples += 1
            if len(active) != 1:
                run.failures.append(f"{len(active)} active keys in the table")
            instance = instances[i % len(instances)]
            if instance.alive:
                try:
                    listed = clients[instance.name].get("/v1/keys")
                except httpx.TransportError:
                    continue
                if listed.status_code == 200:
                    run.api_samples += 1
                    states = Counter(k["state"] for k in listed.json()["keys"])
                    if states["active"] != 1:
                        run.failures.append(f"GET /v1/keys on {instance.name}: {states}")
            time.sleep(0.02)
    finally:
        for client in clients.values():
            client.close()


def _sample_checkpoints(run: Run, instances: list[Instance], vkey: str) -> None:
    """The public checkpoint, as a monitor reads it; each one's signature is checked."""
    key = parse_vkey(vkey)
    while not run.stop.is_set():
        for instance in [i for i in instances if i.alive][:1]:
            try:
                reply = httpx.get(instance.base + "/v1/log/checkpoint", timeout=10)
            except httpx.TransportError:
                continue
            if reply.status_code == 200:
                checkpoint = open_checkpoint(reply.text, key)
                run.checkpoints.append((checkpoint.size, checkpoint.root))
        time.sleep(0.2)


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def test_three_instances_survive_a_rotation_and_a_killed_sequencer_under_load(
    cluster: tuple[list[Instance], str], cluster_db: str
) -> None:
    instances, admin_key = cluster
    db = Database(cluster_db)
    key, subjects = _setup(instances[0], admin_key)
    discovery = httpx.get(instances[0].base + "/.well-known/attest-configuration").json()
    leader_pid = _wait(db.leader_pid, 10, "a sequencer leader")
    [leader] = [i for i in instances if leader_pid in i.pids()]
    followers = [i for i in instances if i is not leader]
    # A verifier honouring the JWKS max-age (2 s) and never refetching on an unknown kid:
    # only pre-publication can make the rotated key known to it in time.
    verifier = Verifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        keys=RemoteJWKS(
            followers[0].base + "/.well-known/jwks.json",
            min_ttl=1,
            default_ttl=2,
            unknown_kid_refetch_interval=3600,
        ),
        cache_size=0,
    )
    run = Run()
    threads = [
        threading.Thread(target=_load, args=(run, instances, key, subjects, verifier, n))
        for n in range(LOAD_THREADS)
    ]
    threads += [
        threading.Thread(target=_sample_keys, args=(run, db, instances, admin_key)),
        threading.Thread(
            target=_sample_checkpoints, args=(run, instances, discovery["log"]["vkey"])
        ),
    ]
    for thread in threads:
        thread.start()
    try:
        _wait(lambda: len(run.issued) >= 30, 30, "tokens before the rotation")
        with _client(followers[1].base, admin_key) as admin:
            rotated = admin.post("/v1/keys/rotate")
        assert rotated.status_code == 202, rotated.text
        new_kid = rotated.json()["kid"]
        time.sleep(1.0)
        size_at_kill = db.fetch("SELECT size FROM log_state")[0]["size"]
        old_pids = leader.pids()
        killed_at = time.monotonic()
        leader.kill()
        new_pid = _wait(
            lambda: (pid := db.leader_pid()) is not None and pid not in old_pids and pid,
            10,
            "another instance to take the sequencer lock",
        )
        takeover = time.monotonic() - killed_at
        [new_leader] = [i for i in followers if new_pid in i.pids()]
        _wait(
            lambda: db.fetch("SELECT size FROM log_state")[0]["size"] > size_at_kill,
            10,
            "the log to grow again",
        )
        resumed = time.monotonic() - killed_at
        time.sleep(max(0.0, AFTER_KILL - resumed))
        _wait(
            lambda: sum(kid_of(t) == new_kid for t, _ in run.issued) >= 20,
            20,
            "tokens signed by the rotated-in key",
        )
    finally:
        run.stop.set()
        for thread in threads:
            thread.join(timeout=60)
    print(
        f"\n{len(run.issued)} tokens, {len(run.revoked)} revoked, takeover {takeover:.3f} s "
        f"(leader {leader.name} -> {new_leader.name}), log growing again after {resumed:.3f} s, "
        f"{run.active_samples} key-table samples, {run.api_samples} GET /v1/keys samples, "
        f"{len(run.checkpoints)} public checkpoints read"
    )
    assert run.failures == []
    assert takeover < TAKEOVER_BOUND
    assert run.active_samples > 100
    assert run.api_samples > 50
    kids = Counter(kid_of(t) for t, _ in run.issued)
    assert len(kids) == 2  # the rotation happened under load
    assert kids[new_kid] >= 20

    # Every token answered 201 is recorded once: attestation and one token.issued event.
    jtis = [claims(t)["jti"] for t, _ in run.issued]
    assert len(set(jtis)) == len(jtis)
    recorded = {
        r["jti"] for r in db.fetch("SELECT jti FROM attestations WHERE jti = ANY($1)", jtis)
    }
    assert recorded == set(jtis)
    events = Counter(
        r["jti"]
        for r in db.fetch(
            "SELECT data->>'jti' AS jti FROM audit_events WHERE type = 'token.issued' "
            "AND data->>'jti' = ANY($1)",
            jtis,
        )
    )
    assert set(events) == set(jtis)
    assert max(events.values()) == 1

    # The log: every event sequenced once, no gap, and a checkpoint over all of them.
    survivor = new_leader.base

    def settled() -> bool:
        row = db.fetch(
            "SELECT count(*) AS n, count(log_index) AS indexed, "
            "count(DISTINCT log_index) AS distinct_indexes, "
            "coalesce(min(log_index), 0) AS lo, coalesce(max(log_index), -1) AS hi "
            "FROM audit_events"
        )[0]
        latest = db.fetch("SELECT max(size) AS size FROM log_checkpoints")[0]["size"]
        return row["n"] == row["indexed"] and latest == row["n"] and dict(row)

    row = _wait(settled, 20, "every event sequenced and checkpointed")
    assert row["distinct_indexes"] == row["n"]
    assert (row["lo"], row["hi"]) == (0, row["n"] - 1)
    stored = [
        (r["size"], bytes(r["root"]))
        for r in db.fetch("SELECT size, root FROM log_checkpoints ORDER BY size")
    ]
    assert len(stored) > 10
    by_size = dict(stored)
    for size, root in run.checkpoints:  # what monitors saw is what the log stored
        assert by_size[size] == root
    with httpx.Client(base_url=survivor, timeout=30) as http:
        for (first, first_root), (second, second_root) in itertools.pairwise(stored):
            reply = http.get(
                "/v1/log/proofs/consistency", params={"first": first, "second": second}
            )
            assert reply.status_code == 200, reply.text
            proof = [base64.b64decode(h) for h in reply.json()["proof"]]
            verify_consistency(first, second, first_root, second_root, proof)

        # The status lists: every revocation, and no other token.
        lists: dict[str, bytes] = {}
        for token, _ in run.issued:
            ref = claims(token)["status"]["status_list"]
            path = "/v1/" + ref["uri"].split("/v1/", 1)[1]
            if path not in lists:
                served = http.get(path)
                assert served.status_code == 200, served.text
                lists[path] = zlib.decompress(_b64(claims(served.text)["status_list"]["lst"]))
            value = (lists[path][ref["idx"] // 4] >> (2 * (ref["idx"] % 4))) & 3
            jti = claims(token)["jti"]
            if jti not in run.unknown:
                assert value == (1 if jti in run.revoked else 0), jti
    assert run.revoked
