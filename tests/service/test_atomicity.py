"""No token leaves the service without its record: a failing commit returns no token."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from attest_testing.support import LiveServer

# A deferred constraint trigger fails at COMMIT time, after the attestation row and the
# audit event were written: the strictest place for a real database failure.
TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION attest_test_fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.audience = '{audience}' THEN
        RAISE EXCEPTION 'commit refused by test trigger';
    END IF;
    RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER attest_test_fail_commit AFTER INSERT ON attestations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION attest_test_fail_commit();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS attest_test_fail_commit ON attestations;
DROP FUNCTION IF EXISTS attest_test_fail_commit();
"""


async def _sql(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        if args:
            return await conn.fetchval(sql, *args)
        return await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def failing_audience(live: LiveServer, admin: httpx.Client) -> Iterator[str]:
    audience = f"model:commit-fails-{uuid.uuid4().hex[:8]}"
    put = admin.put(f"/v1/audiences/{audience}", json={"policy": "us-nationals-only"})
    assert put.status_code == 201, put.text
    url = live.settings.database_url
    asyncio.run(_sql(url, TRIGGER_SQL.format(audience=audience)))
    try:
        yield audience
    finally:
        asyncio.run(_sql(url, DROP_SQL))


def test_a_failed_commit_returns_no_token_and_leaves_no_record(
    live: LiveServer,
    operator: httpx.Client,
    eligible_subject: dict[str, Any],
    failing_audience: str,
) -> None:
    response = operator.post(
        "/v1/tokens", json={"subject_id": eligible_subject["id"], "audience": failing_audience}
    )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "token" not in response.json()
    assert "eyJ" not in response.text

    url = live.settings.database_url
    rows = asyncio.run(
        _sql(url, "SELECT count(*) FROM attestations WHERE audience = $1", failing_audience)
    )
    events = asyncio.run(
        _sql(
            url,
            "SELECT count(*) FROM audit_events WHERE type = 'token.issued' "
            "AND data->>'audience' = $1",
            failing_audience,
        )
    )
    assert (rows, events) == (0, 0)

    # The same request for a healthy audience still works: nothing was left half-written.
    ok = operator.post(
        "/v1/tokens", json={"subject_id": eligible_subject["id"], "audience": "model:fable-5"}
    )
    assert ok.status_code == 201
