"""Rate limits (issue 12 item 4), on servers of their own with low limits: failed
authentications per key id and requests per client are answered 429 with Retry-After, the
counts hold across two instances (PostgreSQL by default, Redis with ATTEST_REDIS_URL), and
failures and scope refusals are counted in /metrics and recorded as security events
(rate-limited), with the key id and never the secret."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from attest_testing.postgres import database
from attest_testing.service import assert_problem
from attest_testing.support import Clock, LiveServer, make_settings, start_server

REDIS_URL = os.environ.get("ATTEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PROBE = "/v1/subjects/00000000-0000-4000-8000-000000000000"
LOW = {
    "auth_failure_limit": 3,
    "auth_failure_window": 60,
    "client_rate_limit": 6,
    "client_rate_window": 60,
}


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass
class Pair:
    a: LiveServer
    b: LiveServer
    clock: Clock

    def fresh_window(self) -> None:
        """Start every test in new windows: nothing counted by an earlier test applies."""
        self.clock.advance(seconds=120)

    def seconds_left(self, window: int) -> int:
        """Whole seconds until the fixed window (aligned to the epoch) holding now ends."""
        now = self.clock().timestamp()
        return window - int(now % window)

    def client(self, *scopes: str) -> str:
        with self.a.client(self.a.admin_key) as admin:
            made = admin.post(
                "/v1/clients", json={"name": "rl", "scopes": list(scopes), "tenant": "rl"}
            )
        assert made.status_code == 201, made.text
        key: str = made.json()["api_key"]
        return key


@pytest.fixture(scope="module", params=["postgres", "redis"])
def pair(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    extra: dict[str, Any] = dict(LOW)
    if request.param == "redis":
        if not _redis_up():
            pytest.skip("no Redis on 127.0.0.1:6379")
        extra["redis_url"] = REDIS_URL
    with database(database_url, "attest_rl") as url:
        settings = make_settings(url, tmp_path_factory.mktemp("rl"), **extra)
        clock = Clock()
        a = start_server(settings, clock)
        b = start_server(dataclasses.replace(settings, port=_free_port()), clock)
        try:
            yield Pair(a, b, clock)
        finally:
            b.stop()
            a.stop()


def test_failed_authentications_lock_the_key_id_out_on_every_instance(pair: Pair) -> None:
    pair.fresh_window()
    key = pair.client("subjects:read")
    wrong = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    for server in (pair.a, pair.a, pair.b):
        with server.client(wrong) as attacker:
            assert_problem(attacker.get(PROBE), 401, "unauthenticated")
    for server in (pair.a, pair.b):
        with server.client(key) as owner:
            # Locked out: even the right secret waits for the window to end.
            before = pair.seconds_left(LOW["auth_failure_window"])
            response = owner.get(PROBE)
            after = pair.seconds_left(LOW["auth_failure_window"])
            assert_problem(response, 429, "rate-limited")
            # Until the lock-out window ends: read off the injected clock around the request.
            assert int(response.headers["retry-after"]) in {before, after}
    pair.clock.advance(seconds=61)
    with pair.b.client(key) as owner:
        assert owner.get(PROBE).status_code == 404


def test_a_client_over_its_rate_is_429_across_instances(pair: Pair) -> None:
    pair.fresh_window()
    key = pair.client("subjects:read")
    with pair.a.client(key) as on_a, pair.b.client(key) as on_b:
        for http in (on_a, on_b, on_a, on_b, on_a, on_b):
            assert http.get(PROBE).status_code == 404
        before = pair.seconds_left(LOW["client_rate_window"])
        response = on_a.get(PROBE)
        after = pair.seconds_left(LOW["client_rate_window"])
        assert_problem(response, 429, "rate-limited")
        assert int(response.headers["retry-after"]) in {before, after}
        assert_problem(on_b.get(PROBE), 429, "rate-limited")
        pair.clock.advance(seconds=61)
        assert on_b.get(PROBE).status_code == 404


def _metric(server: LiveServer, name: str, label: str) -> float:
    text = httpx.get(server.base_url + "/metrics").text
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _security_events(server: LiveServer, event_type: str) -> list[dict[str, Any]]:
    with server.client(server.admin_key) as admin:
        response = admin.get("/v1/audit/events", params={"type": event_type, "limit": 1000})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_failures_and_refusals_are_counted_and_recorded_without_secrets(pair: Pair) -> None:
    pair.fresh_window()
    key = pair.client("subjects:read")
    key_id, secret = key.split("_")[1], key.split("_")[2]
    failures_before = _metric(pair.a, "attest_auth_failures_total", 'reason="invalid"')
    refusals_before = _metric(pair.a, "attest_scope_refusals_total", 'scope="tokens:issue"')
    with pair.a.client(key[:-4] + "zzzz") as attacker:
        for _ in range(5):
            attacker.get(PROBE)
    pair.clock.advance(seconds=61)
    with pair.a.client(key) as owner:
        for _ in range(3):
            body = {"audience": "model:fable-5", "subject_id": "x"}
            assert_problem(owner.post("/v1/tokens", json=body), 403, "insufficient-scope")
    failures = _metric(pair.a, "attest_auth_failures_total", 'reason="invalid"')
    assert failures - failures_before == 3  # then the key id was locked out
    assert _metric(pair.a, "attest_auth_failures_total", 'reason="throttled"') >= 2
    refusals = _metric(pair.a, "attest_scope_refusals_total", 'scope="tokens:issue"')
    assert refusals - refusals_before == 3
    failed = [
        e for e in _security_events(pair.a, "security.auth_failed") if e["data"]["key_id"] == key_id
    ]
    # Two events for five attempts: the first failure and the lockout.
    assert [e["data"]["failures_in_window"] for e in failed] == [1, 3]
    assert failed[-1]["data"]["locked_out"] is True
    assert failed[0]["tenant"] == "rl"
    refused = [
        e
        for e in _security_events(pair.a, "security.scope_refused")
        if e["data"]["key_id"] == key_id
    ]
    assert len(refused) == 1
    assert refused[0]["data"]["scope"] == "tokens:issue"
    assert secret not in json.dumps(failed + refused)


def test_defaults_are_high_enough_for_real_clients() -> None:
    from attest.settings import load_settings

    settings = load_settings(environ={})
    assert settings.auth_failure_limit == 10
    assert settings.auth_failure_window == 300
    assert settings.client_rate_limit == 20_000
    assert settings.client_rate_window == 60
    assert settings.redis_url is None


def test_retry_after_is_the_rest_of_the_window() -> None:
    from datetime import UTC, datetime

    from attest.clients.ratelimit import retry_after, window_of

    now = datetime(2026, 1, 1, 0, 0, 10, 500_000, tzinfo=UTC)
    assert window_of(now, 60) == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    assert retry_after(now, 60) == 50
    assert retry_after(now + timedelta(seconds=49), 60) == 1


def test_concurrent_requests_of_one_client_are_each_counted_once(pair: Pair) -> None:
    """Requests that arrive together share one counting statement (PostgresCounters
    coalesces them); each still gets its own place in the window: exactly the limit pass,
    every other is 429, and the crossing is recorded once."""
    from concurrent.futures import ThreadPoolExecutor

    pair.fresh_window()
    key = pair.client("subjects:read")
    limited_before = len(_security_events(pair.a, "security.rate_limited"))
    with pair.a.client(key) as on_a, pair.b.client(key) as on_b:

        def probe(n: int) -> int:
            return (on_a if n % 2 else on_b).get(PROBE).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(probe, range(40)))
    assert statuses.count(404) == LOW["client_rate_limit"], statuses
    assert statuses.count(429) == 40 - LOW["client_rate_limit"], statuses
    assert len(_security_events(pair.a, "security.rate_limited")) == limited_before + 1


def test_the_postgres_counters_are_unlogged_and_keep_counting(live: LiveServer) -> None:
    """0012: rate_counters (and its indexes) are written without WAL, so a hit's commit waits
    for no flush; hits of one key still add up, and a new window starts again from one."""
    import asyncio

    import asyncpg

    from attest.clients import repository

    async def check() -> tuple[set[str], list[tuple[int, int]]]:
        conn = await asyncpg.connect(live.settings.database_url)
        try:
            rows = await conn.fetch(
                "SELECT relpersistence::text AS relpersistence FROM pg_class c"
                " WHERE c.oid = 'rate_counters'::regclass"
                " OR c.oid IN (SELECT indexrelid FROM pg_index"
                " WHERE indrelid = 'rate_counters'::regclass)"
            )
            key = f"test-unlogged-{os.getpid()}"
            counts = [
                await repository.count_gate(conn, "none", 0, key, 60, 10, hits=2),
                await repository.count_gate(conn, "none", 0, key, 60, 10),
                await repository.count_gate(conn, "none", 0, key, 120, 10),
            ]
            return {r["relpersistence"] for r in rows}, counts
        finally:
            await conn.close()

    persistence, counts = asyncio.run(check())
    assert persistence == {"u"}
    assert counts == [(0, 2), (0, 3), (0, 1)]
