"""Several instances on one database: concurrent issuance during a rotation, racing
schedulers, and pick-up of new keys without a restart."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import jwt

from attest.verify import RemoteJWKS, Verifier

AUDIENCE = "model:fable-5"


def kid_of(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


def states(admin_keys: Any, server: Any) -> dict[str, str]:
    return {k["kid"]: k["state"] for k in admin_keys(server)}


def scheduler_checks(world: Any, waiter: Any, servers: list[Any], more: int) -> None:
    """Wait until each server's key scheduler has run ``more`` further checks.

    Each check reads the world's injected clock once, in that server's thread, and nothing
    else runs there meanwhile (the test sends no requests while it waits).
    """
    start = [world.clock.reads_by(server.thread) for server in servers]
    waiter(
        lambda: all(
            world.clock.reads_by(server.thread) >= before + more
            for server, before in zip(servers, start, strict=True)
        ),
        what=f"{more} more scheduler checks on each instance",
    )


def test_tokens_issued_before_during_and_after_a_rotation_all_verify(
    world: Any, issuer_for: Any, admin_keys: Any, waiter: Any
) -> None:
    server = world.start(key_check_interval_ms=100)
    issuers = [issuer_for(server) for _ in range(4)]
    (key_a,) = states(admin_keys, server)
    # A verifier that refreshes only on its cache lifetime (the JWKS max-age) or on an
    # unknown kid, on the same clock as the service.
    verifier = Verifier(
        issuer=server.settings.issuer,
        audience=AUDIENCE,
        keys=RemoteJWKS(server.base_url + "/.well-known/jwks.json"),
        now=lambda: world.clock().timestamp(),
    )
    verifier.verify(issuers[0].issue())  # the verifier has cached A's key set
    issued: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def issue_and_verify(issuer: Any) -> None:
        while not stop.is_set():
            token = issuer.issue()
            issued.append(token)
            try:
                verifier.verify(token)
            except Exception as exc:
                failures.append(f"{kid_of(token)}: {exc!r}")

    threads = [threading.Thread(target=issue_and_verify, args=(i,)) for i in issuers]
    for thread in threads:
        thread.start()
    try:
        waiter(lambda: len(issued) >= 20, what="tokens before the rotation")
        with server.client(server.admin_key) as admin:
            key_b = admin.post("/v1/keys/rotate").json()["kid"]
        mark = len(issued)
        waiter(lambda: len(issued) >= mark + 20, what="tokens while B is pending")
        world.clock.advance(seconds=60)
        waiter(
            lambda: states(admin_keys, server) == {key_a: "retiring", key_b: "active"},
            what="the scheduled activation of B",
        )
        waiter(lambda: sum(kid_of(t) == key_b for t in issued) >= 20, what="tokens by B")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    kids = [kid_of(t) for t in issued]
    assert set(kids) == {key_a, key_b}
    # Once B signed for an instance, that instance never went back to A.
    first_b = kids.index(key_b)
    assert kids[first_b:].count(key_a) <= len(issuers)  # at most the requests in flight
    for token in issued:  # and all of them still verify afterwards
        verifier.verify(token)


def test_two_instances_racing_a_scheduled_rotation_make_exactly_one_key(
    world: Any, admin_keys: Any, waiter: Any
) -> None:
    first = world.start(key_check_interval_ms=50)
    second = world.start(key_check_interval_ms=50)
    (key_a,) = states(admin_keys, first)
    world.clock.advance(seconds=3600)  # the rotation interval has passed
    pending = waiter(
        lambda: [k for k, s in states(admin_keys, first).items() if s == "pending"],
        what="a pending key",
    )
    # Give both schedulers many more ticks in which a second key could appear: ten more
    # checks each (0.5 s at 50 ms when the machine is idle; as long as it takes when not).
    scheduler_checks(world, waiter, [first, second], 10)
    assert states(admin_keys, second) == {key_a: "active", pending[0]: "pending"}
    world.clock.advance(seconds=60)
    waiter(
        lambda: states(admin_keys, second) == {key_a: "retiring", pending[0]: "active"},
        what="the activation",
    )
    scheduler_checks(world, waiter, [first, second], 6)  # room for a stray second event
    events = world.fetch(
        "SELECT type, data->>'kid' AS kid FROM audit_events WHERE type LIKE 'key.%'"
    )
    assert sorted((e["type"], e["kid"]) for e in events) == sorted(
        [
            ("key.activated", key_a),
            ("key.published", pending[0]),
            ("key.retiring", key_a),
            ("key.activated", pending[0]),
        ]
    )


def test_many_concurrent_ticks_apply_a_transition_once(world: Any) -> None:
    """The advisory lock and the one-pending index, hit by eight ticks at the same instant."""
    from attest.keys.lifecycle import KeyPolicy, tick

    world.start()  # bootstrap: the first key
    world.clock.advance(seconds=3600)
    policy = KeyPolicy.from_settings(world.settings())
    now = world.clock()

    async def race(_conn: Any) -> list[Any]:
        import asyncpg

        from attest.db.pool import init_connection

        conns = [await asyncpg.connect(world.database_url) for _ in range(8)]
        try:
            for conn in conns:
                await init_connection(conn)
            return list(
                await asyncio.gather(*(tick(c, world.keystore(), policy, now) for c in conns))
            )
        finally:
            for conn in conns:
                await conn.close()

    plans = world.run(race)
    assert sum(p.create_pending for p in plans) == 1
    rows = world.fetch("SELECT state FROM signing_keys ORDER BY state")
    assert [r["state"] for r in rows] == ["active", "pending"]


def test_instances_pick_up_new_and_compromised_keys_without_restart(
    world: Any, issuer_for: Any, admin_keys: Any
) -> None:
    first, second = world.start(), world.start()
    on_first, on_second = issuer_for(first), issuer_for(second)
    (key_a,) = states(admin_keys, first)
    assert kid_of(on_second.issue()) == key_a
    with first.client(first.admin_key) as admin:
        key_b = admin.post("/v1/keys/rotate").json()["kid"]
    world.clock.advance(seconds=60)
    world.tick()
    assert kid_of(on_second.issue()) == key_b
    assert kid_of(on_first.issue()) == key_b
    with second.client(second.admin_key) as admin:
        revoked = admin.post(f"/v1/keys/{key_b}/revoke", json={"compromised": True}).json()
    key_c = revoked["replacement"]["kid"]
    # The instance that did not revoke never signs with the compromised key again.
    assert kid_of(on_first.issue()) == key_c
    ready = first.client().get("/readyz")
    assert ready.status_code == 200


def test_an_instance_without_the_new_key_refuses_to_issue(
    world: Any, issuer_for: Any, tmp_path: Any
) -> None:
    import shutil

    first = world.start()
    copy = tmp_path / "stale-keys"
    shutil.copytree(world.root / "keys", copy)  # a keystore mount that will miss the next key
    stale = world.start(keystore=str(copy))
    on_stale = issuer_for(stale)
    on_stale.issue()
    with first.client(first.admin_key) as admin:
        admin.post("/v1/keys/rotate")
    world.clock.advance(seconds=60)
    world.tick()
    refused = on_stale.http.post(
        "/v1/tokens", json={"subject_id": on_stale.subject_id, "audience": "model:fable-5"}
    )
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/problem+json")
    issuer_for(first).issue()  # the instance with the key goes on issuing


def test_each_instance_serves_the_key_set_another_instance_changed(
    world: Any, published: Any
) -> None:
    # Each instance keeps its JWKS bytes ready; a change made on another instance (or by
    # the CLI) must still reach the next request, with a new ETag.
    one, two = world.start(), world.start()

    def served(server: Any, etag: str = "") -> Any:
        return httpx.get(
            server.base_url + "/.well-known/jwks.json", headers={"If-None-Match": etag}
        )

    before = served(two)
    (key_a,) = [k["kid"] for k in before.json()["keys"]]
    assert served(two, before.headers["etag"]).status_code == 304
    with one.client(one.admin_key) as admin:
        key_b = admin.post("/v1/keys/rotate").json()["kid"]
        after = served(two, before.headers["etag"])
        assert after.status_code == 200
        assert after.headers["etag"] != before.headers["etag"]
        assert [k["kid"] for k in after.json()["keys"]] == [key_a, key_b]
        assert admin.post(f"/v1/keys/{key_b}/revoke", json={"compromised": True}).is_success
    assert [k["kid"] for k in published(two)["keys"]] == [key_a]
    assert served(two, before.headers["etag"]).status_code == 304  # the same set again
