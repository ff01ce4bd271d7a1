"""RemoteJWKS under pressure: refresh ahead of expiry, and floods of unknown kids."""

from __future__ import annotations

import asyncio
import secrets
import threading

import pytest
from attest_testing.verify import AUDIENCE, ISSUER, NOW, Clock, JWKSServer, Minter, good_claims

from attest.verify import InvalidToken, RemoteJWKS, Verifier

FLOOD = 10_000


def remote(server: JWKSServer, clock: Clock, **kwargs: float) -> tuple[Verifier, RemoteJWKS]:
    source = RemoteJWKS(server.url, **kwargs)
    verifier = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=source, now=clock, cache_size=0)
    return verifier, source


def _join_background(source: RemoteJWKS) -> None:
    thread = source._background
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()


def test_refresh_ahead_runs_in_the_background(
    server: JWKSServer, mint: Minter, clock: Clock
) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    server.cache_control = "max-age=300"
    v, source = remote(server, clock)  # refresh_ahead=0.1: from 270 s on
    v.verify(mint())
    clock.t = NOW + 269
    v.verify(mint(good_claims(now=int(clock.t))))
    assert (server.hits, source._background) == (1, None)
    # The issuer rotates; its server is slow. A lookup at 270 s starts the refresh ahead and
    # is answered from the current set without waiting for it.
    server.doc = {"keys": [mint.es.jwk, mint.ed.jwk]}
    server.gate.clear()
    clock.t = NOW + 270
    assert v.verify(mint(good_claims(now=int(clock.t))))["jti"] == "jti-0001"
    v.verify(mint(good_claims(now=int(clock.t))))  # a second lookup starts no second thread
    server.gate.set()
    _join_background(source)
    assert server.hits == 2
    # The new set is in: the rotated-in key verifies with no request in the path, and the
    # next refresh is due a TTL after the background fetch.
    assert v.verify(mint(good_claims(now=int(clock.t)), key=mint.ed))["jti"] == "jti-0001"
    assert server.hits == 2
    assert source._fresh_until == NOW + 270 + 300


def test_failed_refresh_ahead_keeps_serving_then_retries_in_line(
    server: JWKSServer, mint: Minter, clock: Clock
) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    v, source = remote(server, clock)
    v.verify(mint())
    server.mode = "error"
    clock.t = NOW + 280
    v.verify(mint(good_claims(now=int(clock.t))))
    _join_background(source)
    assert server.hits == 2
    clock.t = NOW + 295  # backing off after the failure: no new attempt, old keys serve
    v.verify(mint(good_claims(now=int(clock.t))))
    assert server.hits == 2
    server.mode = "ok"
    clock.t = NOW + 310  # expired and past the back-off: fetched in-line
    v.verify(mint(good_claims(now=int(clock.t))))
    assert server.hits == 3
    assert source._fresh_until == NOW + 310 + 300


def test_refresh_ahead_validation() -> None:
    with pytest.raises(ValueError, match="refresh_ahead"):
        RemoteJWKS("https://attest.example/jwks", refresh_ahead=1)


def _bogus_tokens(mint: Minter, n: int) -> list[str]:
    # Distinct random kids; one signature is enough (the key lookup fails before it).
    base = mint()
    _, payload, signature = base.split(".")
    tokens = []
    for _ in range(n):
        header = mint(kid=secrets.token_urlsafe(12)).split(".")[0]
        tokens.append(f"{header}.{payload}.{signature}")
    return tokens


def test_flood_of_unknown_kids_causes_a_handful_of_fetches(
    server: JWKSServer, mint: Minter, clock: Clock
) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    v, _ = remote(server, clock, unknown_kid_refetch_interval=30)
    v.verify(mint())
    tokens = _bogus_tokens(mint, FLOOD)
    for i, token in enumerate(tokens):
        clock.t = NOW + i // 100  # 100 s of flood at 100 tokens/s
        with pytest.raises(InvalidToken) as info:
            v.verify(token)
        assert info.value.code == "unknown_key"
    # 1 initial fetch + one refetch per started 30 s of flood (0, 30, 60, 90) + one
    # refresh ahead of the 300 s TTL at most
    assert server.hits <= 6, server.hits
    assert v.verify(mint(good_claims(now=int(clock.t))))["jti"] == "jti-0001"


async def test_async_flood_of_unknown_kids_causes_a_handful_of_fetches(
    server: JWKSServer, mint: Minter, clock: Clock
) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    v, _ = remote(server, clock, unknown_kid_refetch_interval=30)
    await v.verify_async(mint())
    tokens = _bogus_tokens(mint, FLOOD)

    async def one(token: str) -> str:
        try:
            await v.verify_async(token)
        except InvalidToken as exc:
            return exc.code
        return "accepted"

    codes: list[str] = []
    for start in range(0, FLOOD, 500):  # 500 concurrent requests at a time, 5 s apart
        clock.t = NOW + start // 100
        codes += await asyncio.gather(*(one(t) for t in tokens[start : start + 500]))
    assert codes == ["unknown_key"] * FLOOD
    assert server.hits <= 6, server.hits


def test_concurrent_threads_flooding_share_one_refetch(
    server: JWKSServer, mint: Minter, clock: Clock
) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    v, _ = remote(server, clock, unknown_kid_refetch_interval=30)
    v.verify(mint())
    tokens = _bogus_tokens(mint, 2000)
    server.gate.clear()  # hold the refetch until every thread is flooding
    codes: list[str] = []
    lock = threading.Lock()

    def work(chunk: list[str]) -> None:
        for token in chunk:
            try:
                v.verify(token)
            except InvalidToken as exc:
                with lock:
                    codes.append(exc.code)

    threads = [threading.Thread(target=work, args=(tokens[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    while server.hits < 2:
        threading.Event().wait(0.001)
    server.gate.set()
    for t in threads:
        t.join(30)
    assert codes == ["unknown_key"] * 2000
    assert server.hits == 2
