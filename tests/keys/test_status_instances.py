"""Status lists across instances and key compromise: entries never collide between
instances, a compromised key's tokens are revoked, and a re-evaluation is worked by one
instance at a time and resumes where a dead one stopped."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from attest.db.pool import init_connection
from attest.keys.keyring import Keyring
from attest.metrics import Metrics
from attest.tokens.service import TokenService


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _ref(token: str) -> dict[str, Any]:
    ref: dict[str, Any] = json.loads(_b64(token.split(".")[1]))["status"]["status_list"]
    return ref


def _entry(uri: str, idx: int) -> int:
    body = httpx.get(uri).text
    raw = zlib.decompress(_b64(json.loads(_b64(body.split(".")[1]))["status_list"]["lst"]))
    return (raw[idx // 4] >> (2 * (idx % 4))) & 3


def test_two_instances_issuing_at_once_never_share_an_entry(world: Any, issuer_for: Any) -> None:
    first, second = world.start(), world.start()
    issuers = [issuer_for(first), issuer_for(second)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        tokens = list(pool.map(lambda i: issuers[i % 2].issue(), range(120)))
    refs = [(r["uri"].rsplit("/", 1)[1], r["idx"]) for r in map(_ref, tokens)]
    assert len(set(refs)) == 120
    stored = world.fetch("SELECT count(DISTINCT (list_id, idx)) AS n FROM token_statuses")
    assert stored[0]["n"] == 120


def test_a_compromised_key_revokes_every_outstanding_token_it_signed(
    world: Any, issuer_for: Any
) -> None:
    server = world.start()
    issuer = issuer_for(server)
    tokens = [issuer.issue() for _ in range(3)]
    kid = json.loads(_b64(tokens[0].split(".")[0]))["kid"]
    with server.client(server.admin_key) as admin:
        done = admin.post(f"/v1/keys/{kid}/revoke", json={"compromised": True})
        assert done.status_code == 200, done.text
        fresh = issuer.issue()  # signed by the replacement: unaffected
        events = admin.get("/v1/audit/events", params={"type": "key.compromised"}).json()
    assert [_entry(r["uri"], r["idx"]) for r in map(_ref, tokens)] == [1, 1, 1]
    assert _entry(_ref(fresh)["uri"], _ref(fresh)["idx"]) == 0
    [event] = events["events"]
    assert event["data"]["tokens_revoked"] == 3


def _service(pool: asyncpg.Pool, settings: Any) -> TokenService:
    # A second "instance" of the re-evaluation, on its own pool; it signs nothing.
    return TokenService(
        pool,
        settings,
        keyring=Keyring(None),
        pairwise_key=b"",
        metrics=Metrics(),  # type: ignore[arg-type]
    )


def test_a_reevaluation_is_worked_by_one_instance_and_resumes_after_one_dies(
    world: Any, issuer_for: Any
) -> None:
    # The server's own re-evaluation loop sleeps past the test: two service instances here
    # play the instances that share the work.
    server = world.start(status_reevaluation_interval_ms=60_000)
    issuer = issuer_for(server)
    name = f"re-{uuid.uuid4().hex[:8]}"
    audience = f"model:{name}"
    with server.client(server.admin_key) as admin:
        base = admin.get("/v1/policies/us-nationals-only").json()["document"]
        document = {k: v for k, v in base.items() if k not in ("name", "version")}
        assert admin.put(f"/v1/policies/{name}", json=document).status_code == 201
        assert admin.put(f"/v1/audiences/{audience}", json={"policy": name}).status_code == 201
        tokens = [issuer.issue(audience) for _ in range(5)]
        # A changed rule under which the citizen no longer qualifies.
        forbidding = {
            **document,
            "rule": {"attribute": "us_person_status", "any_of": ["us_national"]},
        }
        published = admin.put(f"/v1/policies/{name}", json=forbidding)
        assert published.status_code == 201, published.text

    async def scenario() -> dict[str, Any]:
        pools = [
            await asyncpg.create_pool(
                world.database_url, min_size=1, max_size=2, init=init_connection
            )
            for _ in range(2)
        ]
        try:
            a, b = (_service(p, server.settings) for p in pools)
            now = datetime.now(UTC)
            # Instance A claims the job and dies mid-batch (its transaction never commits).
            dead = await pools[0].acquire()
            tx = dead.transaction()
            await tx.start()
            held = await dead.fetchval(
                "SELECT id FROM status_reevaluations WHERE done_at IS NULL "
                "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1"
            )
            assert held is not None
            # While A holds it, B does not touch it: one instance per job.
            assert await b.reevaluate_next(now, batch=2) is None
            await tx.rollback()
            await pools[0].release(dead)
            # B resumes it, two tokens per batch, each batch committed with its cursor.
            checked = []
            while (n := await b.reevaluate_next(now, batch=2)) is not None:
                checked.append(n)
            assert await a.reevaluate_next(now, batch=2) is None
            async with pools[1].acquire() as conn:
                job = await conn.fetchrow(
                    "SELECT checked, revoked, done_at FROM status_reevaluations WHERE id = $1", held
                )
            return {"batches": checked, "job": dict(job)}
        finally:
            for pool in pools:
                await pool.close()

    result = asyncio.run(scenario())
    assert result["batches"] == [2, 2, 1]
    assert result["job"]["checked"] == 5
    assert result["job"]["revoked"] == 5
    assert result["job"]["done_at"] is not None
    assert [_entry(r["uri"], r["idx"]) for r in map(_ref, tokens)] == [1] * 5
