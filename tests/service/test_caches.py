"""API-key records are cached per instance and invalidated on every instance at once
(LISTEN/NOTIFY); without notifications a cached record lives at most
ATTEST_CACHE_MAX_STALENESS_MS (attest/db/notify.py).

Two app instances share the session's database: the session server (A), and B, whose
cache listener is cut off (its backend terminated with pg_terminate_backend) and does not
reconnect for the rest of the test (``cache_listener_retry_ms``). A revoked key must be
refused by A at once (the notification) and by B within the staleness bound.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from attest_testing.support import Clock, LiveServer, make_settings, start_server

pytestmark = pytest.mark.xdist_group("caches")

BOUND_MS = 1000
# Scheduling slack on a loaded 2-core machine, on top of the bound.
MARGIN_S = 0.75
# A notification travels one commit and one loopback hop.
NOTIFIED_S = 0.5

KILL_LISTENERS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE application_name = 'attest-cache-listener' AND datname = current_database()
"""


@pytest.fixture(scope="module")
def deaf(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Instance B on the same database; once its listener is lost it stays lost."""
    settings = make_settings(
        live.settings.database_url,
        tmp_path_factory.mktemp("deaf"),
        bootstrap_admin_key=live.admin_key,
        keystore=live.settings.keystore,
        keystore_passphrase=live.settings.keystore_passphrase,
        pairwise_secret=live.settings.pairwise_secret,
        cache_max_staleness_ms=BOUND_MS,
        cache_listener_retry_ms=600_000,
    )
    server = start_server(settings, Clock())
    try:
        yield server
    finally:
        server.stop()


def _metric(server: LiveServer, name: str) -> float:
    text = httpx.get(server.base_url + "/metrics").text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found[1])


def _until(check: object, what: str, seconds: float = 15) -> float:
    start = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - start > seconds:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def _refused_within(server: LiveServer, key: str, seconds: float) -> float:
    """Ask with ``key`` until refused (401); how long it took. Fails past ``seconds``."""
    start = time.monotonic()
    with server.client(key) as http:
        while True:
            status = http.get("/v1/policies/us-nationals-only").status_code
            if status == 401:
                return time.monotonic() - start
            assert status == 200, status
            assert time.monotonic() - start <= seconds, f"key still accepted after {seconds} s"
            time.sleep(0.02)


def _kill_listeners(url: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(url)
        try:
            killed: int = await conn.fetchval(KILL_LISTENERS)
            return killed
        finally:
            await conn.close()

    return asyncio.run(run())


def test_a_revoked_key_is_refused_at_once_when_notified_and_within_the_bound_when_not(
    live: LiveServer, deaf: LiveServer, admin: httpx.Client, tenant: str
) -> None:
    made = admin.post(
        "/v1/clients", json={"name": "cached", "scopes": ["policies:read"], "tenant": tenant}
    )
    assert made.status_code == 201, made.text
    key, client_id = made.json()["api_key"], made.json()["id"]
    for server in (live, deaf):
        with server.client(key) as http:
            assert http.get("/v1/policies/us-nationals-only").status_code == 200
    hits = _metric(deaf, 'attest_cache_lookups{cache="apikey",result="hit"}')
    with deaf.client(key) as http:
        assert http.get("/v1/policies/us-nationals-only").status_code == 200
    # The second request was answered from the cache, not the database.
    assert _metric(deaf, 'attest_cache_lookups{cache="apikey",result="hit"}') == hits + 1

    assert _kill_listeners(live.settings.database_url) >= 2
    _until(lambda: _metric(deaf, "attest_cache_listener_connected") == 0, "B hears nothing")
    _until(lambda: _metric(live, "attest_cache_listener_connected") == 1, "A listens again")
    for server in (live, deaf):  # both hold a fresh record of the key
        with server.client(key) as http:
            assert http.get("/v1/policies/us-nationals-only").status_code == 200

    revoked = admin.post(f"/v1/clients/{client_id}/revocations")
    assert revoked.status_code in (200, 201), revoked.text
    # A heard the commit's notification: refused at once, well inside the bound.
    assert _refused_within(live, key, NOTIFIED_S) < BOUND_MS / 1000
    # B heard nothing, and still refuses the key within the bound.
    _refused_within(deaf, key, BOUND_MS / 1000 + MARGIN_S)
    assert _metric(deaf, "attest_cache_listener_connected") == 0, "B must still be deaf"


def test_a_rotated_out_key_without_grace_is_refused_at_once(
    live: LiveServer, admin: httpx.Client, tenant: str
) -> None:
    made = admin.post(
        "/v1/clients", json={"name": "rotated", "scopes": ["policies:read"], "tenant": tenant}
    )
    assert made.status_code == 201, made.text
    old, client_id = made.json()["api_key"], made.json()["id"]
    _until(lambda: _metric(live, "attest_cache_listener_connected") == 1, "A listens")
    with live.client(old) as http:
        assert http.get("/v1/policies/us-nationals-only").status_code == 200
        assert http.get("/v1/policies/us-nationals-only").status_code == 200  # cached now
    rotated = admin.post(f"/v1/clients/{client_id}/keys", json={"grace_seconds": 0})
    assert rotated.status_code in (200, 201), rotated.text
    assert _refused_within(live, old, NOTIFIED_S) < BOUND_MS / 1000
    with live.client(rotated.json()["api_key"]) as http:
        assert http.get("/v1/policies/us-nationals-only").status_code == 200


def test_a_rotated_out_key_expires_at_the_end_of_its_grace_even_when_cached(
    live: LiveServer, admin: httpx.Client, tenant: str
) -> None:
    """The cached record carries the end of the grace; the injected clock passes it."""
    made = admin.post(
        "/v1/clients", json={"name": "grace", "scopes": ["policies:read"], "tenant": tenant}
    )
    old, client_id = made.json()["api_key"], made.json()["id"]
    rotated = admin.post(f"/v1/clients/{client_id}/keys", json={"grace_seconds": 600})
    assert rotated.status_code in (200, 201), rotated.text
    with live.client(old) as http:
        assert http.get("/v1/policies/us-nationals-only").status_code == 200
        assert http.get("/v1/policies/us-nationals-only").status_code == 200
        live.clock.advance(seconds=601)
        assert http.get("/v1/policies/us-nationals-only").status_code == 401
