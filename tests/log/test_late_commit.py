"""GET /v1/audit/events cannot skip an event that commits late.

An event whose transaction began first (lower id) but commits after a later event was
already listed: with an id cursor it would be passed over forever. Pages follow log
positions, given after commit, so the late event lands after the cursor.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg

INSERT = (
    "INSERT INTO audit_events (event_id, type, occurred_at, tenant, data) "
    "VALUES ($1, $2, now(), 'default', '{}') RETURNING id"
)


def _page(server: Any, cursor: int, kind: str) -> dict[str, Any]:
    with server.client(server.admin_key) as admin:
        body: dict[str, Any] = admin.get(
            "/v1/audit/events", params={"cursor": cursor, "type": kind, "limit": 1}
        ).json()
        return body


def _wait_sequenced(server: Any, kind: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        with server.client(server.admin_key) as admin:
            found: list[dict[str, Any]] = admin.get(
                "/v1/audit/events", params={"type": kind, "limit": 1000}
            ).json()["events"]
        if found and all(e["log_index"] is not None for e in found):
            return found
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_cursor_never_passes_an_event_that_commits_late(world: Any) -> None:
    server = world.start()
    kind = f"test.late.{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        slow = await asyncpg.connect(world.database_url)
        fast = await asyncpg.connect(world.database_url)
        try:
            tx = slow.transaction()
            await tx.start()
            early_id = await slow.fetchval(INSERT, uuid.uuid4(), kind)
            late_id = await fast.fetchval(INSERT, uuid.uuid4(), kind)
            assert early_id < late_id
            # The reader pages to the end while the early event is still uncommitted.
            (seen,) = await asyncio.to_thread(_wait_sequenced, server, kind)
            assert seen["id"] == late_id
            page = await asyncio.to_thread(_page, server, 0, kind)
            cursor = page["events"][-1]["log_index"] + 1
            await tx.commit()
            found = await asyncio.to_thread(_wait_sequenced, server, kind)
            assert {e["id"] for e in found} == {early_id, late_id}
            after = await asyncio.to_thread(_page, server, cursor, kind)
            assert [e["id"] for e in after["events"]] == [early_id]
            assert after["events"][0]["log_index"] > seen["log_index"]
        finally:
            await slow.close()
            await fast.close()

    asyncio.run(scenario())
