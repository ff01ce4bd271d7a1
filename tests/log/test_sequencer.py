"""The sequencer: one leader at a time, no gap, no event twice, whoever dies mid-batch.

Several app instances run on one fresh database. The invariants are checked from the
database and from the public endpoints: positions 0..n-1 each held by exactly one event,
and the signed checkpoint's root equal to an RFC 9162 root recomputed from the events.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import rfc8785
from attest_testing.support import OPERATOR_SCOPES, US_PASSPORT, LiveServer

from attest.verify import _tlog

pytestmark = pytest.mark.slow


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 over leaf hashes, written out here (independent of attest.log)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


def _leaf(row: Any) -> bytes:
    return rfc8785.dumps(
        {
            "event_id": str(row["event_id"]),
            "type": row["type"],
            "occurred_at": row["occurred_at"].isoformat(),
            "actor": str(row["actor"]) if row["actor"] else None,
            "tenant": row["tenant"],
            "subject_id": str(row["subject_id"]) if row["subject_id"] else None,
            "data": row["data"],
        }
    )


def _sequenced(world: Any) -> list[Any]:
    async def read(conn: Any) -> list[Any]:
        return list(
            await conn.fetch(
                "SELECT * FROM audit_events WHERE log_index IS NOT NULL ORDER BY log_index"
            )
        )

    rows: list[Any] = world.run(read)
    return rows


def _wait_all_sequenced(world: Any, timeout: float = 30) -> list[Any]:
    async def pending(conn: Any) -> int:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE log_index IS NULL"
        )
        return count

    deadline = time.monotonic() + timeout
    while world.run(pending):
        assert time.monotonic() < deadline, "the sequencer did not catch up"
        time.sleep(0.05)
    return _sequenced(world)


def _checkpoint(server: LiveServer, size: int) -> _tlog.Checkpoint:
    vkey = httpx.get(server.base_url + "/.well-known/attest-configuration").json()["log"]["vkey"]
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(server.base_url + "/v1/log/checkpoint")
        if response.status_code == 200:
            checkpoint = _tlog.open_checkpoint(response.text, _tlog.parse_vkey(vkey))
            if checkpoint.size >= size:
                return checkpoint
        assert time.monotonic() < deadline, f"no checkpoint of size {size}"
        time.sleep(0.05)


def _check_log(world: Any, server: LiveServer) -> list[Any]:
    """No gap, no event twice, and the signed root is the root of the events in log order."""
    rows = _wait_all_sequenced(world)
    assert [r["log_index"] for r in rows] == list(range(len(rows)))
    assert len({r["event_id"] for r in rows}) == len(rows)
    checkpoint = _checkpoint(server, len(rows))
    assert checkpoint.size == len(rows)
    assert checkpoint.root == _mth([_tlog.leaf_hash(_leaf(r)) for r in rows])
    return rows


def test_a_leader_killed_mid_batch_is_replaced_with_no_gap(world: Any) -> None:
    a = world.start()
    b = world.start()
    world.add_events(300)  # more than a full tile (256 leaves)
    first = _check_log(world, a)
    assert len(first) >= 300

    # A leader that dies mid-batch: with both instances stopped, this connection takes the
    # lock (a third "instance"), appends every pending event inside its transaction, and is
    # killed by the server before it commits. Its work must vanish with it.

    async def die_mid_batch(conn: Any) -> None:
        from attest.log import merkle, repository
        from attest.log.leaves import leaf_bytes

        killer = await asyncpg.connect(world.database_url)
        try:
            assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", repository.LOG_LOCK)
            tx = conn.transaction()
            await tx.start()
            size = await repository.lock_size(conn)
            events = await repository.unsequenced(conn, 1000)
            assert len(events) == 70
            edges = await repository.read_tiles(
                conn, {(lv, ix) for lv, ix, _ in merkle.edge_tiles(size)}
            )
            await repository.write_tiles(
                conn, merkle.append(size, edges, [leaf_bytes(e) for e in events])
            )
            await repository.assign_indexes(conn, [e.id for e in events], size)
            await repository.set_size(conn, size + len(events))
            pid = conn.get_server_pid()
            await killer.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await killer.close()

    async def as_dying_leader() -> None:
        conn = await asyncpg.connect(world.database_url)
        from attest.db.pool import init_connection

        await init_connection(conn)
        try:
            await die_mid_batch(conn)
        finally:
            conn.terminate()

    # Stop both instances so the dying leader can take the lock, then restart one.
    world.stop(a)
    world.stop(b)
    world.add_events(70)
    asyncio.run(as_dying_leader())
    c = world.start()
    d = world.start()
    rows = _check_log(world, c)
    assert len(rows) == len(first) + 70

    # And a graceful stop of whichever leads, while events keep arriving.
    world.add_events(10)
    world.stop(c)
    world.add_events(10)
    rows = _check_log(world, d)
    assert len(rows) == len(first) + 90


def _issue_token(server: LiveServer) -> tuple[str, str]:
    with server.client(server.admin_key) as admin:
        made = admin.post(
            "/v1/clients",
            json={"name": "operator", "scopes": list(OPERATOR_SCOPES), "tenant": "acme"},
        )
        assert made.status_code == 201, made.text
    with server.client(made.json()["api_key"]) as operator:
        subject = operator.post("/v1/subjects", json={"external_ref": "hr-1"}).json()
        evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=US_PASSPORT)
        assert evidence.json()["status"] == "verified", evidence.text
        issued = operator.post(
            "/v1/tokens", json={"subject_id": subject["id"], "audience": "model:fable-5"}
        )
        assert issued.status_code == 201, issued.text
    return issued.json()["jti"], subject["id"]


def _audit_verify(
    server: LiveServer, tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    vkey = httpx.get(server.base_url + "/.well-known/attest-configuration").json()["log"]["vkey"]
    key_file = tmp_path / "key"
    key_file.write_text(server.admin_key)
    return subprocess.run(
        [
            sys.executable, "-m", "attest.cli", "audit", "verify", "--url", server.base_url,
            "--log-key", vkey, "--api-key-file", str(key_file), *extra,
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_audit_verify_detects_an_audit_row_edited_in_the_database(
    world: Any, tmp_path: Path
) -> None:
    server = world.start()
    jti, _ = _issue_token(server)
    _check_log(world, server)
    state = tmp_path / "state.json"
    ok = _audit_verify(server, tmp_path, "--jti", jti, "--state", str(state))
    assert ok.returncode == 0, ok.stderr

    # The append-only trigger refuses the service's own role...
    async def rewrite(conn: Any) -> None:
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute(
                'UPDATE audit_events SET data = data || \'{"audience": "model:mythos-5"}\' '
                "WHERE data->>'jti' = $1",
                jti,
            )
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("UPDATE audit_events SET log_index = log_index + 1000")
        # ...but the table's owner can switch it off: the log is what catches that.
        async with conn.transaction():
            await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_rewrite")
            await conn.execute(
                'UPDATE audit_events SET data = data || \'{"audience": "model:mythos-5"}\' '
                "WHERE data->>'jti' = $1",
                jti,
            )
            await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_rewrite")

    world.run(rewrite)
    refused = _audit_verify(server, tmp_path, "--jti", jti, "--state", str(state))
    assert refused.returncode == 1
    assert refused.stderr.startswith("invalid: leaf_not_in_log:"), refused.stderr


def test_a_full_tile_boundary_is_crossed(world: Any) -> None:
    """256 leaves exactly make a full tile: served immutable, its hash the level-1 entry;
    the 257th leaf starts the next tile, and proofs across the boundary verify."""
    server = world.start()
    world.add_events(256 - len(_check_log(world, server)))
    rows = _check_log(world, server)
    assert len(rows) == 256
    full = httpx.get(server.base_url + "/v1/log/tile/0/000")
    assert full.status_code == 200
    assert "immutable" in full.headers["cache-control"]
    level_one = httpx.get(server.base_url + "/v1/log/tile/1/000.p/1")
    assert level_one.content == _mth([full.content[i : i + 32] for i in range(0, 8192, 32)])
    assert httpx.get(server.base_url + "/v1/log/tile/0/001.p/1").status_code == 404
    world.add_events(1)
    rows = _check_log(world, server)
    tail = httpx.get(server.base_url + "/v1/log/tile/0/001.p/1")
    assert tail.status_code == 200, tail.text
    assert tail.content == _tlog.leaf_hash(_leaf(rows[256]))
    checkpoint = _checkpoint(server, 257)
    for index in (0, 255, 256):
        proof = httpx.get(
            server.base_url + "/v1/log/proofs/inclusion",
            params={"index": index, "tree_size": 257},
        ).json()
        _tlog.verify_inclusion(
            index,
            257,
            _tlog.leaf_hash(_leaf(rows[index])),
            [base64.b64decode(h) for h in proof["proof"]],
            checkpoint.root,
        )
