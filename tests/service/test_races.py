"""Issuance decides on data read inside the transaction that records the token.

A probe found that a subject revoked while its token request was in flight still got a
token: the decision had been made on data read before the recording transaction. These
tests reproduce that race deterministically. A test connection holds the attestations
table (LOCK TABLE ... IN EXCLUSIVE MODE), so a token request that has decided waits at its
INSERT; the eligibility change (subject revocation, evidence withdrawal, a new policy
version) is sent while the issuance waits; then the table is released.

The invariant, read from the audit trail: no token.issued event of a subject is recorded
after an event that changed its eligibility. Either the change waits for the decision in
flight (the token was decided before it, and its record comes first), or the decision
sees the change (and is denied or decided under the new policy version).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from attest_testing.service import events, submit
from attest_testing.support import US_PASSPORT, Actors, LiveServer

HOLD_ATTESTATIONS = "LOCK TABLE attestations IN EXCLUSIVE MODE"
# Backends of this database waiting for a heavyweight lock (a table, a row, a transaction,
# an advisory lock), other than the asking connection.
WAITING = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 15
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


async def _race(
    database_url: str,
    issue: Callable[[], Awaitable[httpx.Response]],
    change: Callable[[], Awaitable[httpx.Response]],
) -> tuple[httpx.Response, httpx.Response]:
    """Hold the attestations table, start ``issue``, wait until it waits at its INSERT,
    send ``change``, wait until it either finished or waits too, release, collect both."""
    holder = await asyncpg.connect(database_url)
    # Activity is read on a connection of its own: inside the holder's transaction
    # pg_stat_activity would answer the same snapshot every time.
    monitor = await asyncpg.connect(database_url)
    try:
        hold = holder.transaction()
        await hold.start()
        try:
            await holder.execute(HOLD_ATTESTATIONS)
            issuing = asyncio.ensure_future(issue())

            async def issuance_waits() -> bool:
                if issuing.done():
                    raise AssertionError(f"issuance did not wait: {issuing.result().text}")
                return bool(await monitor.fetchval(WAITING) >= 1)

            await _until(issuance_waits, "the issuance waits at its INSERT")
            changing = asyncio.ensure_future(change())

            async def change_settled() -> bool:
                return changing.done() or await monitor.fetchval(WAITING) >= 2

            await _until(change_settled, "the change finished or waits")
        finally:
            await hold.rollback()
        return await issuing, await changing
    finally:
        await holder.close()
        await monitor.close()


def _ids(found: list[dict[str, Any]], kind: str) -> list[int]:
    return [e["id"] for e in found if e["type"] == kind]


async def _recorded_before(
    admin: httpx.Client, subject_id: str, token: httpx.Response, change_type: str
) -> None:
    """The token, if one was issued, is recorded before the change of its subject."""
    found = await asyncio.to_thread(events, admin, subject_id=subject_id)
    [changed] = _ids(found, change_type)
    issued = _ids(found, "token.issued")
    assert all(i < changed for i in issued), (issued, changed)
    if token.status_code == 201:
        assert len(issued) == 1
    else:
        assert token.status_code == 403, token.text
        assert issued == []


@pytest.fixture
def eligible(actors: Actors) -> tuple[httpx.Client, str, str]:
    """(operator, subject id, evidence id): a US citizen with approved IAL2 evidence."""
    operator = actors.client(
        "subjects:write", "evidence:write", "tokens:issue", "subjects:revoke", name="operator"
    )
    reviewer = actors.client("evidence:review", name="reviewer")
    subject = operator.post("/v1/subjects", json={"external_ref": f"race-{uuid.uuid4().hex}"})
    assert subject.status_code == 201, subject.text
    evidence = submit(operator, subject.json()["id"], US_PASSPORT)
    approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
    assert approved.status_code == 200, approved.text
    return operator, subject.json()["id"], evidence["id"]


def _async_client(live: LiveServer, sync: httpx.Client) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live.base_url, headers=dict(sync.headers), timeout=30)


# (change, its path under the subject or its evidence, its status, the event it records)
CHANGES = [
    ("revocation", "/v1/subjects/{subject}/revocations", 201, "subject.revoked"),
    ("withdrawal", "/v1/evidence/{evidence}/withdrawals", 200, "evidence.withdrawn"),
]


@pytest.mark.parametrize(
    ("change", "path", "status", "event"), CHANGES, ids=[c[0] for c in CHANGES]
)
async def test_a_change_of_the_subject_during_issuance_waits_for_it_and_later_requests_see_it(
    live: LiveServer,
    database_url: str,
    admin: httpx.Client,
    actors: Actors,
    eligible: tuple[httpx.Client, str, str],
    change: str,
    path: str,
    status: int,
    event: str,
) -> None:
    operator, subject_id, evidence_id = eligible
    changer = actors.client("subjects:revoke", "evidence:review", name=change)
    url = path.format(subject=subject_id, evidence=evidence_id)
    body = {"subject_id": subject_id, "audience": "model:fable-5"}
    async with (
        _async_client(live, operator) as http,
        _async_client(live, changer) as other,
    ):
        token, changed = await _race(
            database_url,
            lambda: http.post("/v1/tokens", json=body),
            lambda: other.post(url, json={}),
        )
        assert changed.status_code == status, changed.text
        await _recorded_before(admin, subject_id, token, event)
        after = await http.post("/v1/tokens", json=body)
        assert after.status_code == 403, after.text


async def test_a_policy_version_published_during_issuance_waits_for_it(
    live: LiveServer,
    database_url: str,
    admin: httpx.Client,
    eligible: tuple[httpx.Client, str, str],
) -> None:
    operator, subject_id, _ = eligible
    # A policy and an audience of this test's own, so other tests never see the change.
    name = f"race-{uuid.uuid4().hex[:10]}"
    audience = f"model:{name}"
    async with (
        _async_client(live, operator) as http,
        _async_client(live, admin) as platform,
    ):
        base = (await platform.get("/v1/policies/us-nationals-only")).json()["document"]
        document = {k: v for k, v in base.items() if k not in ("name", "version")}
        first = await platform.put(f"/v1/policies/{name}", json=document)
        assert first.status_code == 201, first.text
        bound = await platform.put(f"/v1/audiences/{audience}", json={"policy": name})
        assert bound.status_code == 201, bound.text
        token, published = await _race(
            database_url,
            lambda: http.post("/v1/tokens", json={"subject_id": subject_id, "audience": audience}),
            lambda: platform.put(f"/v1/policies/{name}", json=document),
        )
        assert published.status_code == 201, published.text
        assert published.json()["version"] == 2
        found = await asyncio.to_thread(events, admin, type="policy.published")
        [published_at] = [
            e["id"] for e in found if e["data"]["policy"] == name and e["data"]["version"] == 2
        ]
        issued = [
            e
            for e in await asyncio.to_thread(events, admin, subject_id=subject_id)
            if e["type"] == "token.issued" and e["data"]["audience"] == audience
        ]
        assert token.status_code == 201, token.text
        [record] = issued
        # Decided under version 1, recorded before version 2 was published.
        assert record["data"]["policy_version"] == 1
        assert record["id"] < published_at
        after = await http.post("/v1/tokens", json={"subject_id": subject_id, "audience": audience})
        assert after.status_code == 201, after.text
        [_, latest] = [
            e
            for e in await asyncio.to_thread(events, admin, subject_id=subject_id)
            if e["type"] == "token.issued" and e["data"]["audience"] == audience
        ]
        assert latest["data"]["policy_version"] == 2


async def test_no_token_is_recorded_after_a_revocation_among_racing_requests(
    live: LiveServer,
    admin: httpx.Client,
    eligible: tuple[httpx.Client, str, str],
) -> None:
    """The probe's undelayed form: many token requests racing one revocation."""
    operator, subject_id, _ = eligible
    body = {"subject_id": subject_id, "audience": "model:fable-5"}
    async with _async_client(live, operator) as http:
        before = [asyncio.ensure_future(http.post("/v1/tokens", json=body)) for _ in range(40)]
        revocation = asyncio.ensure_future(
            http.post(f"/v1/subjects/{subject_id}/revocations", json={})
        )
        after = [asyncio.ensure_future(http.post("/v1/tokens", json=body)) for _ in range(40)]
        *answers, revoked = await asyncio.gather(*before, *after, revocation)
    assert revoked.status_code == 201
    assert {a.status_code for a in answers} <= {201, 403}
    found = await asyncio.to_thread(events, admin, subject_id=subject_id)
    [revoked_at] = _ids(found, "subject.revoked")
    issued = _ids(found, "token.issued")
    assert all(i < revoked_at for i in issued), (issued, revoked_at)
    assert len(issued) == sum(a.status_code == 201 for a in answers)
