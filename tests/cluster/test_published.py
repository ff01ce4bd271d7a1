"""The JWKS and status lists are served from memory, and still follow every change: a change
made on one instance is notified to the others at its commit (LISTEN/NOTIFY); without a
notification an instance looks at the database again within ``published_recheck_ms``."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from attest_testing.support import (
    OPERATOR_SCOPES,
    US_PASSPORT,
    Clock,
    LiveServer,
    make_settings,
    start_server,
)

from attest.db.changes import KEYS_CHANNEL, STATUS_CHANNEL, ChangeFeed

FABLE = "model:fable-5"


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def entry(list_token: str, idx: int) -> int:
    claims = json.loads(_b64(list_token.split(".")[1]))
    raw = zlib.decompress(_b64(claims["status_list"]["lst"]))
    return (raw[idx // 4] >> (2 * (idx % 4))) & 3


def feed_of(server: LiveServer) -> ChangeFeed:
    feed: ChangeFeed = server.server.config.app.state["change_feed"]
    return feed


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll ``check`` until true; the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.01)
    return time.monotonic() - start


def sql(url: str, query: str, *args: Any) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def pair(cluster_db: str, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two instances on one database, one keystore and one clock."""
    clock = Clock()
    first = make_settings(cluster_db, tmp_path, four_eyes_min_assurance="never")
    shared = {
        "keystore_passphrase": first.keystore_passphrase,
        "pairwise_secret": first.pairwise_secret,
        "bootstrap_admin_key": first.bootstrap_admin_key,
        "four_eyes_min_assurance": "never",
    }
    a = start_server(first, clock)
    b = start_server(make_settings(cluster_db, tmp_path, **shared), clock)
    try:
        for server in (a, b):
            wait_for(lambda s=server: feed_of(s).live, 10, "the change feed is listening")
        yield a, b
    finally:
        a.stop()
        b.stop()


def issue(server: LiveServer) -> tuple[str, dict[str, Any], httpx.Client]:
    with server.client(server.admin_key) as admin:
        made = admin.post(
            "/v1/clients",
            json={
                "name": "operator",
                "tenant": f"t-{uuid.uuid4().hex[:8]}",
                "scopes": [*OPERATOR_SCOPES, "tokens:revoke"],
            },
        )
        assert made.status_code == 201, made.text
    operator = server.client(made.json()["api_key"])
    subject = operator.post("/v1/subjects", json={"external_ref": uuid.uuid4().hex}).json()
    evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=US_PASSPORT)
    assert evidence.json()["status"] == "verified", evidence.text
    reply = operator.post("/v1/tokens", json={"subject_id": subject["id"], "audience": FABLE})
    assert reply.status_code == 201, reply.text
    token: str = reply.json()["token"]
    ref: dict[str, Any] = json.loads(_b64(token.split(".")[1]))["status"]["status_list"]
    return token, ref, operator


def served_on(server: LiveServer, ref: dict[str, Any]) -> str:
    path = ref["uri"].split("/v1/", 1)[1]
    reply = httpx.get(f"{server.base_url}/v1/{path}")
    assert reply.status_code == 200, reply.text
    return reply.text


def test_a_revocation_on_one_instance_reaches_the_list_another_serves_from_memory(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    a, b = pair
    token, ref, operator = issue(a)
    ready = served_on(b, ref)
    assert entry(ready, ref["idx"]) == 0
    assert served_on(b, ref) == ready  # kept: the same signed bytes (same iat)
    before = feed_of(b).epoch(STATUS_CHANNEL)
    jti = json.loads(_b64(token.split(".")[1]))["jti"]
    assert operator.post(f"/v1/tokens/{jti}/revocations", json={}).status_code == 201
    # NOTIFY at the commit: B drops its ready list well before its 1 s recheck.
    took = wait_for(lambda: entry(served_on(b, ref), ref["idx"]) == 1, 0.5, "revoked on B")
    assert feed_of(b).epoch(STATUS_CHANNEL) > before
    assert took < 0.5


def test_a_change_without_notification_is_served_within_the_recheck_interval(
    pair: tuple[LiveServer, LiveServer], cluster_db: str
) -> None:
    """A notification is lost (here: a change written without one): the bound still holds."""
    a, b = pair
    _, ref, _ = issue(a)
    served_on(b, ref)
    list_id = int(ref["uri"].rsplit("/", 1)[1])
    sql(
        cluster_db,
        "WITH c AS (UPDATE token_statuses SET status = 1, changed_at = now() "
        "WHERE list_id = $1 AND idx = $2 RETURNING list_id, idx) "
        "INSERT INTO token_status_changes (list_id, idx, status, changed_at) "
        "SELECT list_id, idx, 1, now() FROM c",
        list_id,
        ref["idx"],
    )
    bound = b.settings.published_recheck_ms / 1000
    wait_for(lambda: entry(served_on(b, ref), ref["idx"]) == 1, bound + 0.5, "revoked on B")


def test_while_the_listener_is_down_every_read_asks_the_database(
    pair: tuple[LiveServer, LiveServer], cluster_db: str
) -> None:
    a, b = pair
    token, ref, operator = issue(a)
    served_on(b, ref)
    feed = feed_of(b)
    # Kill every LISTEN connection (both instances'): the feeds notice and stop trusting.
    killed = sql(
        cluster_db,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    assert len(killed) >= 2
    wait_for(lambda: not feed.live, 5, "B notices its listener is gone")
    jti = json.loads(_b64(token.split(".")[1]))["jti"]
    assert operator.post(f"/v1/tokens/{jti}/revocations", json={}).status_code == 201
    assert entry(served_on(b, ref), ref["idx"]) == 1  # at once: nothing is trusted
    wait_for(lambda: feed.live and feed.connects >= 2, 10, "B listens again")


def test_a_new_key_is_in_every_instance_jwks_at_once(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = pair

    def kids(server: LiveServer) -> set[str]:
        reply = httpx.get(server.base_url + "/.well-known/jwks.json")
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/jwk-set+json"
        assert reply.headers["cache-control"] == f"public, max-age={server.settings.jwks_max_age}"
        return {k["kid"] for k in reply.json()["keys"]}

    before, epoch = kids(b), feed_of(b).epoch(KEYS_CHANNEL)
    assert kids(b) == before == kids(a)
    etag = httpx.get(b.base_url + "/.well-known/jwks.json").headers["etag"]
    unchanged = httpx.get(b.base_url + "/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.headers["etag"] == etag
    with a.client(a.admin_key) as admin:
        rotated = admin.post("/v1/keys/rotate")
        assert rotated.status_code == 202, rotated.text
    new = rotated.json()["kid"]
    wait_for(lambda: new in kids(b), 0.5, "the pending key in B's JWKS")
    assert feed_of(b).epoch(KEYS_CHANNEL) > epoch
    changed = httpx.get(b.base_url + "/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert changed.status_code == 200
