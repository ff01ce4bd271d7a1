"""The verified-token cache never accepts what a full verification would refuse."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from attest_testing.verify import AUDIENCE, ISSUER, NOW, Clock, Minter, good_claims, new_es256

from attest.verify import InvalidToken, JWKSFile, StaticJWKS, Verifier


class CountingSource(StaticJWKS):
    """A StaticJWKS that counts signature-path key lookups."""

    def __init__(self, doc: dict[str, Any]) -> None:
        super().__init__(doc)
        self.calls = 0

    def get(self, kid: str, now: float, *, fetch: bool = True) -> Any:
        self.calls += 1
        return super().get(kid, now, fetch=fetch)


def make(keys: Any, clock: Clock, **kwargs: Any) -> Verifier:
    return Verifier(issuer=ISSUER, audience=AUDIENCE, keys=keys, now=clock, **kwargs)


def test_hit_skips_signature_verification(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    source = StaticJWKS(jwks)
    key = source.get(mint.es.kid, NOW)
    assert key is not None
    calls = 0
    original = key.verify

    def spy(signature: bytes, signing_input: bytes) -> None:
        nonlocal calls
        calls += 1
        original(signature, signing_input)

    object.__setattr__(key, "verify", spy)  # a frozen dataclass: patch for the test only
    v = make(source, clock)
    token = mint()
    assert v.verify(token)["jti"] == "jti-0001"
    assert calls == 1
    assert v.verify(token)["jti"] == "jti-0001"
    assert calls == 1  # served from the cache
    v.verify(mint(good_claims(jti="other")))
    assert calls == 2


def test_cached_claims_cannot_be_mutated(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    v = make(jwks, clock)
    token = mint()
    first = v.verify(token)
    first["aud"] = "model:other"
    first["eligibility"]["assurance"] = "IAL3"
    second = v.verify(token)
    second["eligibility"]["policy"] = "x"
    assert v.verify(token) == good_claims()


@pytest.mark.parametrize(
    "extra",
    [
        {"cnf_like": {"a": 1}},
        {"deep": {"list": [1, {"k": "v"}]}},
        {"top_list": [1, 2]},
        {"deep_dict": {"inner": {"k": "v"}}},
    ],
)
def test_cached_claims_of_any_shape_cannot_be_mutated(
    mint: Minter, jwks: dict[str, Any], clock: Clock, extra: dict[str, Any]
) -> None:
    v = make(jwks, clock)
    expected = good_claims(**extra)
    token = mint(expected)
    first = v.verify(token)
    assert first == expected
    for _ in range(2):  # the first verify's result and a hit's result
        name = next(iter(extra))
        value = first[name]
        if isinstance(value, dict):
            inner = next(iter(value))
            if isinstance(value[inner], (dict, list)):
                value[inner].clear()
            value[inner] = "changed"
        else:
            value.append(3)
        first["eligibility"]["assurance"] = "IAL3"
        assert v.verify(token) == expected
        first = v.verify(token)


def test_expired_cached_token_rejected(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    v = make(jwks, clock, leeway=5)
    token = mint()  # exp = NOW + 600
    v.verify(token)
    clock.t = NOW + 600 + 4
    assert v.verify(token)["jti"] == "jti-0001"  # within leeway
    clock.t = NOW + 600 + 5
    with pytest.raises(InvalidToken) as info:
        v.verify(token)
    assert info.value.code == "expired"


def test_cached_token_rejected_when_clock_goes_back(
    mint: Minter, jwks: dict[str, Any], clock: Clock
) -> None:
    v = make(jwks, clock)
    token = mint()
    v.verify(token)
    clock.t = NOW - 100
    with pytest.raises(InvalidToken) as info:
        v.verify(token)
    assert info.value.code == "not_yet_valid"


def test_key_removed_from_file_rejects_cached_token(
    tmp_path: Path, mint: Minter, clock: Clock
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [mint.es.jwk, mint.ed.jwk]}))
    mono = Clock(0.0)
    source = JWKSFile(path, clock=mono)
    v = make(source, clock)
    token = mint()
    v.verify(token)
    path.write_text(json.dumps({"keys": [mint.ed.jwk]}))
    os.utime(path, ns=(10**18, 10**18))
    assert v.verify(token)["jti"] == "jti-0001"  # the file is looked at once per interval
    mono.t += source.check_interval
    with pytest.raises(InvalidToken) as info:
        v.verify(token)
    assert info.value.code == "unknown_key"


def test_key_replaced_under_same_kid_rejects_cached_token(
    tmp_path: Path, mint: Minter, clock: Clock
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [mint.es.jwk]}))
    mono = Clock(0.0)
    source = JWKSFile(path, clock=mono)
    v = make(source, clock)
    token = mint()
    v.verify(token)
    impostor = {**new_es256().jwk, "kid": mint.es.kid}
    path.write_text(json.dumps({"keys": [impostor]}))
    os.utime(path, ns=(10**18, 10**18))
    mono.t += source.check_interval
    with pytest.raises(InvalidToken) as info:
        v.verify(token)
    assert info.value.code == "bad_signature"


def test_cache_is_bounded_lru(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    source = CountingSource(jwks)
    v = make(source, clock, cache_size=2)
    a, b, c = (mint(good_claims(jti=j)) for j in "abc")
    v.verify(a)
    v.verify(b)
    v.verify(a)  # a is now most recent
    v.verify(c)  # evicts b
    assert len(v._cache) == 2
    assert set(v._cache) == {a, c}


def test_cache_size_zero_disables(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    v = make(jwks, clock, cache_size=0)
    token = mint()
    v.verify(token)
    v.verify(token)
    assert len(v._cache) == 0


def test_refused_tokens_are_not_cached(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    v = make(jwks, clock)
    foreign = mint(good_claims(aud="model:other"))
    for _ in range(2):
        with pytest.raises(InvalidToken) as info:
            v.verify(foreign)
        assert info.value.code == "wrong_audience"
    assert len(v._cache) == 0


def test_cached_bound_token_still_needs_a_proof_every_time(
    mint: Minter, jwks: dict[str, Any], clock: Clock
) -> None:
    # The token itself is valid and cached; the binding check runs on every call, hit or not.
    v = make(jwks, clock)
    bound = mint(good_claims(cnf={"jkt": "abc"}))
    for _ in range(3):
        with pytest.raises(InvalidToken) as info:
            v.verify(bound)
        assert info.value.code == "binding_required"
    assert len(v._cache) == 1
