"""Token requests that arrive together are decided as one batch (attest/tokens/issuance.py)
and recorded in one transaction (attest/tokens/batcher.py). What a batch must keep:

- each request gets its own answer, whatever the others in its batch are (issued, denied,
  refused), and exactly its own records;
- a request decided later in a batch counts what the earlier ones issued, as if each had
  been recorded alone: the sharing signal fires once per client that joins, and a holder-
  key limit admits no more keys than it allows;
- a statement that fails takes only its own request down: the batch is run again one
  request at a time, and the others are recorded.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from attest_testing.service import events, submit
from attest_testing.support import US_PASSPORT, Actors, LiveServer
from cryptography.hazmat.primitives.asymmetric import ec

from attest.tokens.batcher import Batcher, Failed


def _async(live: LiveServer, sync: httpx.Client) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live.base_url, headers=dict(sync.headers), timeout=30)


def _eligible(operator: httpx.Client, reviewer: httpx.Client) -> str:
    made = operator.post("/v1/subjects", json={"external_ref": f"b-{uuid.uuid4().hex}"})
    assert made.status_code == 201, made.text
    evidence = submit(operator, made.json()["id"], US_PASSPORT)
    assert reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={}).status_code == 200
    subject_id: str = made.json()["id"]
    return subject_id


@pytest.fixture
def team(actors: Actors) -> tuple[httpx.Client, httpx.Client]:
    operator = actors.client(
        "subjects:write", "subjects:read", "evidence:write", "tokens:issue", name="operator"
    )
    return operator, actors.client("evidence:review", name="reviewer")


def _holder_jwk() -> dict[str, str]:
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()

    def b64(n: int) -> str:
        return jwt.utils.base64url_encode(n.to_bytes(32, "big")).decode()

    return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y)}


async def test_each_request_of_a_mixed_batch_gets_its_own_answer_and_records(
    live: LiveServer,
    admin: httpx.Client,
    actors: Actors,
    team: tuple[httpx.Client, httpx.Client],
) -> None:
    operator, reviewer = team
    eligible = [_eligible(operator, reviewer) for _ in range(6)]
    ineligible = operator.post("/v1/subjects", json={"external_ref": f"n-{uuid.uuid4().hex}"})
    stranger = actors.client("subjects:write", name="other tenant", tenant=f"t-{uuid.uuid4().hex}")
    foreign = stranger.post("/v1/subjects", json={"external_ref": "theirs"}).json()["id"]
    audience = "model:fable-5"
    bodies: list[tuple[dict[str, Any], int]] = [
        *[({"subject_id": s, "audience": audience}, 201) for s in eligible * 3],
        ({"subject_id": ineligible.json()["id"], "audience": audience}, 403),
        ({"subject_id": eligible[0], "audience": "model:not-registered"}, 404),
        ({"subject_id": foreign, "audience": audience}, 404),
        ({"subject_id": str(uuid.uuid4()), "audience": audience}, 404),
        ({"subject_id": "not-a-uuid", "audience": audience}, 404),
    ]
    async with _async(live, operator) as http:
        answers = await asyncio.gather(*(http.post("/v1/tokens", json=b) for b, _ in bodies))
    assert [a.status_code for a in answers] == [status for _, status in bodies], [
        a.text for a in answers if a.status_code >= 500
    ]
    issued = [a.json() for a in answers if a.status_code == 201]
    assert len({t["jti"] for t in issued}) == len(issued) == 18
    claims = [jwt.decode(t["token"], options={"verify_signature": False}) for t in issued]
    slots = {(c["status"]["status_list"]["uri"], c["status"]["status_list"]["idx"]) for c in claims}
    assert len(slots) == 18  # every token its own status entry
    for (body, _), answer in zip(bodies, answers, strict=True):
        if answer.status_code == 201:
            url = f"/v1/audit/attestations/{answer.json()['jti']}"
            record = await asyncio.to_thread(admin.get, url)
            assert record.status_code == 200, record.text
            assert record.json()["subject_id"] == body["subject_id"]
    for subject_id in eligible:
        found = events(admin, subject_id=subject_id, type="token.issued")
        assert len(found) == 3
    denied = events(admin, subject_id=ineligible.json()["id"], type="token.denied")
    assert len(denied) == 1
    # Another tenant's subject: refused as unknown, and nothing recorded against it.
    assert not [e for e in events(admin, subject_id=foreign) if e["type"].startswith("token.")]


async def test_the_sharing_signal_fires_once_per_joining_client_within_a_batch(
    live: LiveServer,
    admin: httpx.Client,
    actors: Actors,
    team: tuple[httpx.Client, httpx.Client],
) -> None:
    operator, reviewer = team
    subject_id = _eligible(operator, reviewer)
    second = actors.client("tokens:issue", name="second gateway")
    third = actors.client("tokens:issue", name="third gateway")
    body = {"subject_id": subject_id, "audience": "model:fable-5"}
    async with _async(live, operator) as a, _async(live, second) as b, _async(live, third) as c:
        answers = await asyncio.gather(
            *(http.post("/v1/tokens", json=body) for _ in range(8) for http in (a, b, c))
        )
    assert {r.status_code for r in answers} == {201}
    signals = events(admin, subject_id=subject_id, type="subject.sharing_suspected")
    # The first client to be recorded joins alone; each of the two others joins once.
    assert sorted(s["data"]["clients"] for s in signals) == [2, 3], signals
    assert {s["data"]["signal"] for s in signals} == {"multiple_clients"}


async def test_a_holder_key_limit_holds_within_a_batch(
    live: LiveServer,
    admin: httpx.Client,
    team: tuple[httpx.Client, httpx.Client],
) -> None:
    operator, reviewer = team
    subject_id = _eligible(operator, reviewer)
    audience = f"model:batch-keys-{uuid.uuid4().hex[:8]}"
    bound = await asyncio.to_thread(
        admin.put,
        f"/v1/audiences/{audience}",
        json={"policy": "us-nationals-only", "max_holder_keys": 3},
    )
    assert bound.status_code == 201, bound.text
    keys = [_holder_jwk() for _ in range(12)]
    async with _async(live, operator) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    "/v1/tokens",
                    json={"subject_id": subject_id, "audience": audience, "holder_jwk": k},
                )
                for k in keys
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 3 + [403] * 9, [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 403):
        assert [r["code"] for r in refused.json()["reason_details"]] == ["holder_key_limit"]
    bound_keys = {
        jwt.decode(a.json()["token"], options={"verify_signature": False})["cnf"]["jkt"]
        for a in answers
        if a.status_code == 201
    }
    assert len(bound_keys) == 3
    signals = events(admin, subject_id=subject_id, type="subject.sharing_suspected")
    assert len(signals) == 9
    assert {s["data"]["holder_keys"] for s in signals} == {4}


async def test_a_failing_statement_takes_only_its_own_job_down(database_url: str) -> None:
    """The batcher itself, on a real pool: a batch whose statement fails is run again one
    job at a time; the failing job gets its error, the others are committed."""
    table = f"batch_probe_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    calls: list[list[str]] = []

    async def record(conn: asyncpg.Connection, _context: None, names: list[str]) -> list[Any]:
        calls.append(list(names))
        # One statement for the whole batch: 1/0 for a name that says so.
        await conn.execute(
            f"INSERT INTO {table} (name) "  # noqa: S608 - a test table of this test's naming
            "SELECT n || (1 / (CASE WHEN n LIKE 'bad%' THEN 0 ELSE 1 END))::text "
            "FROM unnest($1::text[]) AS n",
            names,
        )
        return [f"ok:{n}" for n in names]

    async def landed(_results: list[Any]) -> bool | None:
        return None

    batcher: Batcher[None, str, str] = Batcher(
        pool, prepare=lambda _conn: None, record=record, landed=landed, workers=1
    )
    try:
        await pool.execute(f"CREATE TABLE {table} (name text NOT NULL)")
        names = ["a", "b", "bad-c", "d"]
        answers = await asyncio.gather(
            *(batcher.submit(n, (n,)) for n in names), return_exceptions=True
        )
        assert answers[:2] == ["ok:a", "ok:b"]
        assert isinstance(answers[2], asyncpg.DivisionByZeroError)
        assert answers[3] == "ok:d"
        assert calls[0] == names  # one batch first, then each alone
        assert calls[1:] == [[n] for n in names]
        rows = await pool.fetch(f"SELECT name FROM {table} ORDER BY name")  # noqa: S608
        assert [r["name"] for r in rows] == ["a1", "b1", "d1"]
        assert not isinstance(answers[0], Failed)
    finally:
        await batcher.close()
        await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()


async def test_a_batch_plans_its_statements_once(database_url: str) -> None:
    """The batch's statements over arrays are planned generically inside its transaction:
    PostgreSQL would otherwise plan them again on every batch (custom plans)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    assert pool is not None
    probe = "SELECT count(*) FROM unnest($1::int[]) AS n WHERE n > 0 /* batch-plan-probe */"
    plans: list[tuple[int, int]] = []

    async def record(conn: asyncpg.Connection, _context: None, jobs: list[int]) -> list[Any]:
        await conn.fetchval(probe, jobs)
        row = await conn.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%batch-plan-probe%' AND statement NOT LIKE '%pg_prepared%'"
        )
        plans.append((row["generic_plans"], row["custom_plans"]))
        return list(jobs)

    async def landed(_results: list[Any]) -> bool | None:
        return None

    batcher: Batcher[None, int, int] = Batcher(
        pool, prepare=lambda _conn: None, record=record, landed=landed, workers=1
    )
    try:
        for n in range(8):
            assert await batcher.submit(n, (n,)) == n
        assert plans[-1] == (8, 0)  # never a custom plan, every batch the generic one
        # Outside a batch, the session's own setting is back: the first execution is custom.
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
    finally:
        await batcher.close()
        await pool.close()
