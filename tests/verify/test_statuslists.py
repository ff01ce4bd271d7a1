"""StatusLists, the ready status= hook, against a real HTTP server serving Status List
Tokens (draft-ietf-oauth-status-list): what it accepts, what it refuses, how it caches."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from attest_testing.verify import (
    AUDIENCE,
    NOW,
    Clock,
    Minter,
    SigningKey,
    b64url,
    good_claims,
    new_es256,
)

from attest.verify import InvalidToken, StatusLists, Verifier


class ListServer:
    """Serves one Status List Token per path; counts requests; can hold them at a gate."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.hits = 0
        self.gate = threading.Event()
        self.gate.set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                server.gate.wait(5)
                body = server.bodies.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/statuslist+jwt")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def lists() -> Iterator[ListServer]:
    server = ListServer()
    yield server
    server.close()


def _lst(values: list[int], bits: int = 2) -> str:
    raw = bytearray((len(values) * bits + 7) // 8)
    for i, v in enumerate(values):
        raw[(i * bits) // 8] |= v << ((i * bits) % 8)
    return b64url(zlib.compress(bytes(raw)))


def list_token(
    key: SigningKey,
    uri: str,
    values: list[int],
    *,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> bytes:
    body: dict[str, Any] = {
        "sub": uri,
        "iat": NOW,
        "exp": NOW + 120,
        "ttl": 60,
        "status_list": {"bits": 2, "lst": _lst(values)},
    }
    body.update(claims)
    head = header or {"alg": key.alg, "typ": "statuslist+jwt", "kid": key.kid}
    signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(body).encode())}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}".encode()


class Setup:
    def __init__(self, lists: ListServer, es_key: SigningKey, mint: Minter, clock: Clock) -> None:
        self.lists, self.key, self.mint, self.clock = lists, es_key, mint, clock
        self.uri = f"{lists.base}/v1/status-lists/1"
        self.hook = StatusLists()
        self.verifier = Verifier(
            issuer=lists.base,
            audience=AUDIENCE,
            keys={"keys": [es_key.jwk]},
            now=clock,
            status=self.hook,
            cache_size=0,
        )

    def serve(self, values: list[int], **kwargs: Any) -> None:
        self.lists.bodies["/v1/status-lists/1"] = list_token(self.key, self.uri, values, **kwargs)

    def token(self, idx: int, uri: str | None = None) -> str:
        status = {"status_list": {"idx": idx, "uri": uri or self.uri}}
        return self.mint(good_claims(iss=self.lists.base, status=status))

    def code(self, token: str) -> str:
        try:
            self.verifier.verify(token)
        except InvalidToken as exc:
            return exc.code
        return "valid"


@pytest.fixture
def setup(lists: ListServer, es_key: SigningKey, mint: Minter, clock: Clock) -> Setup:
    return Setup(lists, es_key, mint, clock)


def test_each_entry_value_gives_its_outcome(setup: Setup) -> None:
    setup.serve([0, 1, 2, 3])
    assert [setup.code(setup.token(i)) for i in range(4)] == [
        "valid",
        "revoked",
        "suspended",
        "revoked",
    ]


def test_a_list_is_cached_for_its_ttl_then_fetched_again(setup: Setup) -> None:
    setup.serve([0, 0])
    assert setup.code(setup.token(1)) == "valid"
    setup.serve([0, 1])  # revoked at the issuer
    assert setup.code(setup.token(1)) == "valid"  # within the ttl: the cached list
    assert setup.lists.hits == 1
    setup.clock.t += 61
    assert setup.code(setup.token(1)) == "revoked"
    assert setup.lists.hits == 2


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("expired", {"exp": NOW - 10}),
        ("sub of another list", {"sub": "http://127.0.0.1:1/v1/status-lists/9"}),
        ("bits not allowed", {"status_list": {"bits": 3, "lst": _lst([0])}}),
        ("lst not zlib", {"status_list": {"bits": 2, "lst": b64url(b"not zlib")}}),
        ("iat not an integer", {"iat": float(NOW)}),
    ],
)
def test_a_bad_list_is_refused_and_the_token_fails_closed(
    setup: Setup, name: str, kwargs: dict[str, Any]
) -> None:
    setup.serve([0, 0], **kwargs)
    assert setup.code(setup.token(0)) == "status_unavailable", name


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "elig+jwt"},  # a token's type, not a list's
        {"typ": "statuslist+jwt", "crit": ["x"]},  # more than alg, typ, kid
        {"typ": "statuslist+jwt", "alg": "EdDSA"},  # not the key's algorithm
    ],
)
def test_a_list_with_a_bad_header_is_refused(setup: Setup, header: dict[str, Any]) -> None:
    full = {"alg": setup.key.alg, "kid": setup.key.kid, **header}
    setup.serve([0], header=full)
    assert setup.code(setup.token(0)) == "status_unavailable"


def test_a_list_signed_by_a_key_outside_the_key_set_is_refused(setup: Setup) -> None:
    other = new_es256()
    setup.lists.bodies["/v1/status-lists/1"] = list_token(other, setup.uri, [0])
    assert setup.code(setup.token(0)) == "status_unavailable"


def test_a_list_uri_not_under_the_issuer_is_never_fetched(setup: Setup) -> None:
    setup.serve([0])
    elsewhere = "http://127.0.0.2:9/v1/status-lists/1"
    assert setup.code(setup.token(0, uri=elsewhere)) == "status_unavailable"
    # a prefix of the issuer's host is not "under" it
    assert setup.code(setup.token(0, uri=setup.lists.base + "0/v1/status-lists/1")) == (
        "status_unavailable"
    )
    assert setup.lists.hits == 0


def test_an_index_out_of_range_and_an_unreachable_list_fail_closed(setup: Setup) -> None:
    setup.serve([0, 0, 0, 0])
    assert setup.code(setup.token(4)) == "status_unavailable"  # one byte holds 4 entries
    missing = setup.token(0, uri=f"{setup.lists.base}/v1/status-lists/404")
    assert setup.code(missing) == "status_unavailable"


def test_the_last_valid_list_is_used_while_the_issuer_is_down(setup: Setup) -> None:
    setup.serve([0, 1])
    assert setup.code(setup.token(0)) == "valid"
    del setup.lists.bodies["/v1/status-lists/1"]
    setup.clock.t += 61  # the ttl passed; the list is still before its exp
    assert setup.code(setup.token(1)) == "revoked"
    setup.clock.t += 120  # now past its exp too
    assert setup.code(setup.token(0)) == "status_unavailable"


def test_concurrent_fetches_of_one_list_are_coalesced(setup: Setup) -> None:
    setup.serve([0] * 8)
    setup.lists.gate.clear()
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(setup.code(setup.token(1))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    setup.lists.gate.set()
    for thread in threads:
        thread.join(10)
    assert results == ["valid"] * 8
    assert setup.lists.hits == 1


async def test_verify_async_fetches_off_the_event_loop(setup: Setup) -> None:
    setup.serve([0, 2])
    assert (await setup.verifier.verify_async(setup.token(0)))["jti"]
    with pytest.raises(InvalidToken) as info:
        await setup.verifier.verify_async(setup.token(1))
    assert info.value.code == "suspended"
    assert setup.lists.hits == 1
    tasks = [setup.verifier.verify_async(setup.token(0)) for _ in range(5)]
    assert len(await asyncio.gather(*tasks)) == 5


def test_one_hook_serves_one_issuer(setup: Setup) -> None:
    with pytest.raises(ValueError, match="one issuer"):
        Verifier(
            issuer="https://other.example", audience=AUDIENCE, keys={"keys": []}, status=setup.hook
        )
