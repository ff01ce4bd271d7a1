"""Key admission and key sources: StaticJWKS, JWKSFile (reload) and RemoteJWKS (HTTP)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from attest_testing.verify import (
    AUDIENCE,
    ISSUER,
    NOW,
    Clock,
    JWKSServer,
    Minter,
    b64url,
    good_claims,
    new_es256,
)
from cryptography.hazmat.primitives.asymmetric import rsa

from attest.verify import InvalidToken, JWKSFile, RemoteJWKS, StaticJWKS, Verifier


def _rsa_jwk() -> dict[str, Any]:
    numbers = rsa.generate_private_key(65537, 2048).public_key().public_numbers()
    n = numbers.n.to_bytes(256, "big")
    return {"kty": "RSA", "kid": "rsa", "n": b64url(n), "e": "AQAB", "alg": "RS256"}


def bad_keys(mint: Minter) -> dict[str, dict[str, Any]]:
    es, ed = mint.es.jwk, mint.ed.jwk
    off_curve_y = b64url((int.from_bytes(os.urandom(32), "big") % 2**255).to_bytes(32, "big"))
    return {
        "oct": {"kty": "oct", "kid": "hmac", "k": b64url(b"secret"), "alg": "HS256"},
        "rsa": _rsa_jwk(),
        "private-ec": {**es, "kid": "priv", "d": b64url(b"\x01" * 32)},
        "use-enc": {**es, "kid": "enc", "use": "enc"},
        "key-ops-sign-only": {**es, "kid": "ops", "key_ops": ["sign"]},
        "alg-mismatch-ec": {**es, "kid": "alg1", "alg": "EdDSA"},
        "alg-mismatch-okp": {**ed, "kid": "alg2", "alg": "ES256"},
        "alg-hs256": {**es, "kid": "alg3", "alg": "HS256"},
        "off-curve": {**es, "kid": "off", "y": off_curve_y},
        "short-x": {**es, "kid": "short", "x": es["x"][:-2]},
        "padded-x": {**ed, "kid": "pad", "x": ed["x"] + "="},
        "p384": {**es, "kid": "p384", "crv": "P-384"},
        "x25519": {**ed, "kid": "xdh", "crv": "X25519", "alg": DROP_ALG},
        "ed-identity": {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": "id",
            "x": b64url(b"\x01" + bytes(31)),
        },
        "ed-order-2": {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": "o2",
            "x": b64url((2**255 - 20).to_bytes(32, "little")),
        },
        "no-kid": {k: v for k, v in es.items() if k != "kid"},
        "empty-kid": {**es, "kid": ""},
        "unknown-kty": {"kty": "XYZ", "kid": "xyz"},
    }


DROP_ALG = "EdDSA"
ED_IDENTITY = b"\x01" + bytes(31)  # the neutral element (order 1)


def test_good_keys_admitted_and_bad_keys_refused_and_reported(
    mint: Minter, caplog: pytest.LogCaptureFixture
) -> None:
    bad = bad_keys(mint)
    bad["x25519"].pop("alg")
    doc = {"keys": [mint.es.jwk, mint.ed.jwk, *bad.values(), "not-an-object"]}
    with caplog.at_level(logging.WARNING, logger="attest.verify"):
        source = StaticJWKS(doc)
    assert source.get(mint.es.kid, NOW) is not None
    assert source.get(mint.ed.kid, NOW) is not None
    for name, jwk in bad.items():
        kid = jwk.get("kid")
        if kid:
            assert source.get(kid, NOW) is None, name
    rejected = source.rejected
    assert len(rejected) == len(bad) + 1
    reasons = {kid: reason for kid, reason in rejected if kid}
    assert "symmetric" in reasons["hmac"] or "private" in reasons["hmac"]
    assert "RSA" in reasons["rsa"]
    assert "private" in reasons["priv"]
    assert "use" in reasons["enc"]
    assert "key_ops" in reasons["ops"]
    assert "alg" in reasons["alg1"]
    assert "alg" in reasons["alg2"]
    assert "alg" in reasons["alg3"]
    assert "curve" in reasons["off"].lower() or "point" in reasons["off"].lower()
    assert "small-order" in reasons["id"]
    assert "small-order" in reasons["o2"]
    assert "curve" in reasons["p384"]
    assert (None, "missing kid") in rejected
    assert len([r for r in caplog.records if "JWKS key refused" in r.getMessage()]) == len(rejected)


def test_token_signed_by_refused_key_is_unknown_key(mint: Minter, clock: Clock) -> None:
    es = mint.es.jwk
    for jwk in ({**es, "use": "enc"}, {**es, "alg": "EdDSA"}, {**es, "d": "AAAA"}):
        v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys={"keys": [jwk]}, now=clock)
        with pytest.raises(InvalidToken) as info:
            v.verify(mint())
        assert info.value.code == "unknown_key"


def test_duplicate_kid_refuses_every_copy(mint: Minter) -> None:
    other = new_es256()
    source = StaticJWKS({"keys": [mint.es.jwk, {**other.jwk, "kid": mint.es.kid}]})
    assert source.get(mint.es.kid, NOW) is None
    assert any("duplicate" in reason for _, reason in source.rejected)


def test_not_a_jwks_document() -> None:
    for doc in ({}, {"keys": {}}, {"keys": "x"}):
        with pytest.raises(ValueError, match="JWKS"):
            StaticJWKS(doc)


def test_key_ops_with_verify_and_no_use_are_fine(mint: Minter) -> None:
    jwk = {k: v for k, v in mint.es.jwk.items() if k not in ("use", "alg")}
    source = StaticJWKS({"keys": [{**jwk, "key_ops": ["verify"]}]})
    assert source.get(mint.es.kid, NOW) is not None
    assert source.rejected == []


# --- JWKSFile ------------------------------------------------------------------------


def write_jwks(path: Path, keys: list[dict[str, Any]], mtime: int) -> None:
    path.write_text(json.dumps({"keys": keys}))
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))


def test_jwks_file_reloads_on_change(tmp_path: Path, mint: Minter, clock: Clock) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, [mint.es.jwk], 1000)
    mono = Clock(0.0)
    source = JWKSFile(path, clock=mono)
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=source, now=clock, cache_size=0)
    assert v.verify(mint())["jti"] == "jti-0001"
    with pytest.raises(InvalidToken, match="kid") as info:
        v.verify(mint(key=mint.ed))
    assert info.value.code == "unknown_key"
    mono.t += source.unknown_kid_check_interval
    write_jwks(path, [mint.ed.jwk], 2000)  # rotation: es256 key removed, ed25519 added
    assert v.verify(mint(key=mint.ed))["jti"] == "jti-0001"  # a new kid is looked up at once
    with pytest.raises(InvalidToken) as info:
        v.verify(mint())
    assert info.value.code == "unknown_key"


def test_jwks_file_rewrite_is_picked_up_within_check_interval(
    tmp_path: Path, mint: Minter, clock: Clock
) -> None:
    """A known kid is served without looking at the file until check_interval has passed."""
    path = tmp_path / "jwks.json"
    write_jwks(path, [mint.es.jwk, mint.ed.jwk], 1000)
    mono = Clock(0.0)
    source = JWKSFile(path, check_interval=1.0, clock=mono)
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=source, now=clock, cache_size=0)
    token = mint()
    assert v.verify(token)["jti"] == "jti-0001"
    write_jwks(path, [mint.ed.jwk], 2000)  # the es256 key is withdrawn
    mono.t = 0.999
    assert v.verify(token)["jti"] == "jti-0001"  # not looked at yet: still inside the interval
    mono.t = 1.0
    with pytest.raises(InvalidToken) as info:
        v.verify(token)
    assert info.value.code == "unknown_key"
    assert v.verify(mint(key=mint.ed))["jti"] == "jti-0001"


def test_jwks_file_looks_at_most_once_per_interval(
    tmp_path: Path, mint: Minter, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Known kids cost no stat inside the interval; a flood of unknown kids is rate-limited."""
    path = tmp_path / "jwks.json"
    write_jwks(path, [mint.es.jwk], 1000)
    mono = Clock(0.0)
    source = JWKSFile(path, check_interval=1.0, unknown_kid_check_interval=0.1, clock=mono)
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(p: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if os.fspath(p) == source.path:
            stats.append(os.fspath(p))
        return real_stat(p, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    assert source.get(mint.es.kid, NOW) is not None
    assert len(stats) == 1
    for i in range(1000):
        mono.t = i / 1000 * 0.99
        assert source.get(mint.es.kid, NOW) is not None
    assert len(stats) == 1  # a known kid: no stat inside the interval
    mono.t = 0.0
    for i in range(100):  # 100 unknown kids over 0.5 s: at most one look per 0.1 s
        mono.t = i * 0.005
        assert source.get(f"bogus-{i}", NOW) is None
    assert 2 <= len(stats) <= 1 + 5
    mono.t = 1.0
    assert source.get(mint.es.kid, NOW) is not None
    assert len(stats) <= 1 + 5 + 1


def test_jwks_file_bad_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        JWKSFile(tmp_path / "j.json", check_interval=0.01, unknown_kid_check_interval=0.1)


def test_jwks_file_missing_or_invalid_fails_closed(
    tmp_path: Path, mint: Minter, clock: Clock
) -> None:
    path = tmp_path / "jwks.json"
    mono = Clock(0.0)
    source = JWKSFile(path, clock=mono)
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=source, now=clock, cache_size=0)
    with pytest.raises(InvalidToken) as info:
        v.verify(mint())
    assert info.value.code == "key_source_unavailable"
    path.write_text("{not json")
    mono.t += source.check_interval
    with pytest.raises(InvalidToken) as info:
        v.verify(mint())
    assert info.value.code == "key_source_unavailable"
    write_jwks(path, [mint.es.jwk, {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}], 3000)
    mono.t += source.unknown_kid_check_interval  # no usable set: looked at again soon
    assert v.verify(mint())["sub"] == "pairwise-subject-1"
    assert source.rejected == [("h", source.rejected[0][1])]
    path.unlink()  # the file disappears: fail closed once it is looked at again
    mono.t += source.check_interval
    with pytest.raises(InvalidToken) as info:
        v.verify(mint())
    assert info.value.code == "key_source_unavailable"


# --- RemoteJWKS ----------------------------------------------------------------------


def remote_verifier(server: JWKSServer, clock: Clock, **kwargs: Any) -> Verifier:
    source = RemoteJWKS(server.url, **kwargs)
    return Verifier(issuer=ISSUER, audience=AUDIENCE, keys=source, now=clock, cache_size=0)


def code(v: Verifier, token: str) -> str:
    with pytest.raises(InvalidToken) as info:
        v.verify(token)
    return info.value.code


@pytest.mark.parametrize(
    ("cache_control", "ttl"),
    [
        ("max-age=300", 300),
        ("public, max-age=120, must-revalidate", 120),
        ("max-age=5", 60),  # clamped to min_ttl
        ("max-age=999999", 86400),  # clamped to max_ttl
        ("no-store", 60),
        (None, 300),  # default_ttl
        ("max-age=abc", 300),
    ],
)
def test_remote_honours_cache_control(
    server: JWKSServer, mint: Minter, clock: Clock, cache_control: str | None, ttl: int
) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    server.cache_control = cache_control
    v = remote_verifier(server, clock, refresh_ahead=0)  # in-line refreshes only, at expiry
    token = mint()
    v.verify(token)
    assert server.hits == 1
    clock.t = NOW + ttl - 1
    token = mint(good_claims_at(clock.t))
    v.verify(token)
    assert server.hits == 1  # still fresh
    clock.t = NOW + ttl
    v.verify(mint(good_claims_at(clock.t)))
    assert server.hits == 2  # refreshed at expiry


def good_claims_at(t: float) -> dict[str, Any]:
    return good_claims(now=int(t))


def test_unknown_kid_refetch_is_rate_limited(
    server: JWKSServer, mint: Minter, clock: Clock
) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    v = remote_verifier(server, clock, unknown_kid_refetch_interval=30)
    v.verify(mint())
    assert server.hits == 1
    for i in range(50):  # a flood of bogus kids
        assert code(v, mint(kid=f"bogus-{i}")) == "unknown_key"
    assert server.hits == 2  # one refetch for the whole flood
    # rotation: the issuer publishes a new key; within the interval it is not fetched yet
    server.doc = {"keys": [mint.es.jwk, mint.ed.jwk]}
    clock.t = NOW + 29
    assert code(v, mint(key=mint.ed)) == "unknown_key"
    assert server.hits == 2
    clock.t = NOW + 30
    assert v.verify(mint(key=mint.ed))["sub"] == "pairwise-subject-1"
    assert server.hits == 3


def test_concurrent_fetches_are_coalesced(server: JWKSServer, mint: Minter, clock: Clock) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    server.gate.clear()  # hold the first request until all threads are waiting
    v = remote_verifier(server, clock)
    token = mint()
    results: list[str] = []

    def work() -> None:
        results.append(v.verify(token)["jti"])

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    while server.hits == 0:
        threading.Event().wait(0.001)
    server.gate.set()
    for t in threads:
        t.join(10)
    assert results == ["jti-0001"] * 16
    assert server.hits == 1


@pytest.mark.parametrize("mode", ["error", "500", "garbage", "truncated", "notjwks", "stopped"])
def test_outage_keeps_last_good_keys_then_fails_closed(
    server: JWKSServer, mint: Minter, clock: Clock, mode: str
) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    server.cache_control = "max-age=300"
    v = remote_verifier(server, clock, stale_for=3600, unknown_kid_refetch_interval=30)
    v.verify(mint())
    if mode == "stopped":
        server.close()  # connection refused from now on
    server.mode = mode
    clock.t = NOW + 300  # due for refresh; the refresh fails
    assert v.verify(mint(good_claims_at(clock.t)))["jti"] == "jti-0001"
    assert server.hits == (1 if mode == "stopped" else 2)
    clock.t = NOW + 310  # within the retry back-off: no new request
    v.verify(mint(good_claims_at(clock.t)))
    assert server.hits == (1 if mode == "stopped" else 2)
    clock.t = NOW + 300 + 3599  # last second of staleness
    v.verify(mint(good_claims_at(clock.t)))
    assert server.hits == (1 if mode == "stopped" else 3)
    clock.t = NOW + 300 + 3600
    assert code(v, mint(good_claims_at(clock.t))) == "key_source_unavailable"
    if mode == "stopped":
        return
    server.mode = "ok"  # the issuer comes back: after the back-off, keys work again
    clock.t += 30
    assert v.verify(mint(good_claims_at(clock.t)))["jti"] == "jti-0001"


def test_conditional_refresh_with_etag(server: JWKSServer, mint: Minter, clock: Clock) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    server.etags = True
    v = remote_verifier(server, clock)
    v.verify(mint())
    clock.t = NOW + 300
    v.verify(mint(good_claims_at(clock.t)))
    assert (server.hits, server.not_modified) == (2, 1)
    clock.t = NOW + 600  # the 304 renewed the TTL from NOW + 300
    server.doc = {"keys": [mint.ed.jwk]}  # changed document: a full response again
    assert code(v, mint(good_claims_at(clock.t))) == "unknown_key"
    assert (server.hits, server.not_modified) == (3, 1)


def test_never_fetched_fails_closed(server: JWKSServer, mint: Minter, clock: Clock) -> None:
    server.mode = "error"
    v = remote_verifier(server, clock)
    assert code(v, mint()) == "key_source_unavailable"
    assert server.hits == 1
    assert code(v, mint()) == "key_source_unavailable"
    assert server.hits == 1  # back-off, no hammering


def test_remote_rejects_bad_keys_and_reports(
    server: JWKSServer, mint: Minter, clock: Clock
) -> None:
    server.doc = {"keys": [mint.es.jwk, {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}
    source = RemoteJWKS(server.url)
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=source, now=clock)
    v.verify(mint())
    assert [kid for kid, _ in source.rejected] == ["h"]


async def test_verify_async_fetches_in_a_thread(
    server: JWKSServer, mint: Minter, clock: Clock
) -> None:
    server.doc = {"keys": [mint.es.jwk, mint.ed.jwk]}
    v = remote_verifier(server, clock)
    loop_thread = threading.get_ident()
    fetch_threads: list[int] = []
    source = v.keys
    assert isinstance(source, RemoteJWKS)
    original = source._download

    def spy() -> tuple[bytes, str | None]:
        fetch_threads.append(threading.get_ident())
        return original()

    source._download = spy  # type: ignore[method-assign]
    claims = await asyncio.gather(v.verify_async(mint()), v.verify_async(mint(key=mint.ed)))
    assert [c["jti"] for c in claims] == ["jti-0001", "jti-0001"]
    assert fetch_threads
    assert loop_thread not in fetch_threads
    assert server.hits == 1
    with pytest.raises(InvalidToken) as info:
        await v.verify_async(mint(kid="bogus"))
    assert info.value.code == "unknown_key"


def test_remote_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="URL"):
        RemoteJWKS("file:///etc/passwd")
    with pytest.raises(ValueError, match="ttl"):
        RemoteJWKS("https://x", min_ttl=100, default_ttl=50)


def test_concurrent_unknown_kid_refetch_is_coalesced(
    server: JWKSServer, mint: Minter, clock: Clock
) -> None:
    server.doc = {"keys": [mint.es.jwk]}
    v = remote_verifier(server, clock)
    v.verify(mint())
    assert server.hits == 1
    server.doc = {"keys": [mint.es.jwk, mint.ed.jwk]}  # rotation published
    server.gate.clear()
    token = mint(key=mint.ed)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(v.verify(token)["jti"])) for _ in range(12)
    ]
    for t in threads:
        t.start()
    while server.hits < 2:
        threading.Event().wait(0.001)
    server.gate.set()
    for t in threads:
        t.join(10)
    assert results == ["jti-0001"] * 12
    assert server.hits == 2  # one refetch served every thread


async def test_verify_async_static_and_cached(
    mint: Minter, jwks: dict[str, Any], clock: Clock
) -> None:
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock)
    token = mint()
    assert await v.verify_async(token) == good_claims()
    assert await v.verify_async(token) == good_claims()  # cache hit
    clock.t = NOW + 700
    with pytest.raises(InvalidToken) as info:
        await v.verify_async(token)
    assert info.value.code == "expired"
