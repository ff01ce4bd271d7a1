"""Holder binding: DPoP proofs (RFC 9449 4.3), one test per check, each asserting its code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from attest_testing.verify import (
    AUDIENCE,
    DROP,
    ISSUER,
    NOW,
    Clock,
    Minter,
    SigningKey,
    b64url,
    good_claims,
    make_proof,
    new_ed25519,
    new_es256,
    public_jwk,
    thumbprint,
)
from hypothesis import given
from hypothesis import strategies as st

from attest.verify import InvalidToken, MemoryReplayCache, StaticJWKS, Verifier

URL = "https://gateway.example/v1/models/fable-5:generate"


@pytest.fixture(scope="module")
def holder() -> SigningKey:
    return new_es256()


@pytest.fixture(scope="module")
def ed_holder() -> SigningKey:
    return new_ed25519()


def bound_token(mint: Minter, holder: SigningKey, **claims: Any) -> str:
    return mint(good_claims(cnf={"jkt": thumbprint(public_jwk(holder))}, **claims))


def code(v: Verifier, token: str, proof: object, method: str = "POST", url: str = URL) -> str:
    with pytest.raises(InvalidToken) as info:
        v.verify(token, dpop=proof, method=method, url=url)  # type: ignore[arg-type]
    return info.value.code


@pytest.mark.parametrize("holder_kind", ["es", "ed"])
def test_valid_proof_is_accepted(
    mint: Minter, verifier: Verifier, holder: SigningKey, ed_holder: SigningKey, holder_kind: str
) -> None:
    key = holder if holder_kind == "es" else ed_holder
    token = bound_token(mint, key)
    claims = verifier.verify(token, dpop=make_proof(key, token), method="POST", url=URL)
    assert claims["cnf"] == {"jkt": thumbprint(public_jwk(key))}


def test_bound_token_without_proof_is_binding_required(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    with pytest.raises(InvalidToken) as info:
        verifier.verify(bound_token(mint, holder))
    assert info.value.code == "binding_required"


def test_unbound_token_ignores_a_proof(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    token = mint()
    assert verifier.verify(token, dpop="junk", method="GET", url=URL) == good_claims()


def test_replayed_proof_is_refused(mint: Minter, verifier: Verifier, holder: SigningKey) -> None:
    token = bound_token(mint, holder)
    proof = make_proof(holder, token)
    verifier.verify(token, dpop=proof, method="POST", url=URL)
    assert code(verifier, token, proof) == "dpop_replay"
    # a fresh jti is fine again
    verifier.verify(token, dpop=make_proof(holder, token), method="POST", url=URL)


def test_replay_cache_is_keyed_by_holder_and_jti(mint: Minter, verifier: Verifier) -> None:
    a, b = new_es256(), new_ed25519()
    ta, tb = bound_token(mint, a), bound_token(mint, b)
    verifier.verify(ta, dpop=make_proof(a, ta, jti="same"), method="POST", url=URL)
    verifier.verify(tb, dpop=make_proof(b, tb, jti="same"), method="POST", url=URL)
    assert code(verifier, ta, make_proof(a, ta, jti="same")) == "dpop_replay"


def test_proof_from_another_key_is_refused(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    token = bound_token(mint, holder)
    thief = new_es256()
    assert code(verifier, token, make_proof(thief, token)) == "dpop_key_mismatch"
    # holder's jwk in the header but signed by the thief: the signature check catches it
    forged = make_proof(holder, token, signer=thief)
    assert code(verifier, token, forged) == "invalid_dpop_proof"


def test_a_bound_token_cached_still_needs_each_proof(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    token = bound_token(mint, holder)
    verifier.verify(token, dpop=make_proof(holder, token), method="POST", url=URL)
    assert token in verifier._cache
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    assert info.value.code == "binding_required"
    assert code(verifier, token, make_proof(new_es256(), token)) == "dpop_key_mismatch"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"typ": "JWT"}, "typ"),
        ({"typ": DROP}, "typ missing"),
        ({"typ": "elig+jwt"}, "the token's typ"),
        ({"alg": "none"}, "alg none"),
        ({"alg": "HS256"}, "MAC alg"),
        ({"alg": "EdDSA"}, "alg of another key type"),
        ({"alg": DROP}, "alg missing"),
        ({"jwk": DROP}, "no jwk"),
        ({"jwk": "key"}, "jwk not an object"),
        ({"jwk": {"kty": "oct", "k": b64url(b"0" * 32)}}, "symmetric jwk"),
        ({"jwk": {"kty": "RSA", "n": b64url(b"\x01" * 256), "e": "AQAB"}}, "RSA jwk"),
        ({"jwk": {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}}, "other curve"),
        ({"crit": ["exp"]}, "crit"),
    ],
)
def test_bad_proof_headers(
    mint: Minter, verifier: Verifier, holder: SigningKey, header: dict[str, Any], reason: str
) -> None:
    token = bound_token(mint, holder)
    assert code(verifier, token, make_proof(holder, token, header=header)) == "invalid_dpop_proof"


def test_private_jwk_in_proof_is_refused(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    token = bound_token(mint, holder)
    d = holder.private.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    header = {"jwk": {**public_jwk(holder), "d": b64url(d)}}
    assert code(verifier, token, make_proof(holder, token, header=header)) == "invalid_dpop_proof"


def test_off_curve_jwk_is_refused(mint: Minter, verifier: Verifier, holder: SigningKey) -> None:
    token = bound_token(mint, holder)
    jwk = public_jwk(holder)
    header = {"jwk": {**jwk, "x": jwk["y"]}}
    assert code(verifier, token, make_proof(holder, token, header=header)) == "invalid_dpop_proof"


@pytest.mark.parametrize(
    "overrides",
    [
        {"jti": DROP},
        {"jti": ""},
        {"jti": 7},
        {"jti": "j" * 257},
        {"htm": DROP},
        {"htm": "GET"},
        {"htm": "post"},  # methods are case-sensitive
        {"htu": DROP},
        {"htu": "https://gateway.example/v1/models/other"},
        {"htu": "https://evil.example/v1/models/fable-5:generate"},
        {"htu": "http://gateway.example/v1/models/fable-5:generate"},
        {"htu": "https://gateway.example:8443/v1/models/fable-5:generate"},
        {"htu": "https://gateway.example/v1/models/fable-5:generate/"},
        {"htu": 5},
        {"htu": "not a url"},
        {"iat": DROP},
        {"iat": str(NOW)},
        {"iat": float(NOW)},
        {"iat": True},
        {"iat": NOW + 6},  # beyond the 5 s leeway
        {"iat": NOW - 66},  # older than dpop_max_age (60) + leeway (5)
        {"ath": DROP},
        {"ath": "x"},
        {"ath": 1},
    ],
)
def test_bad_proof_claims(
    mint: Minter, verifier: Verifier, holder: SigningKey, overrides: dict[str, Any]
) -> None:
    token = bound_token(mint, holder)
    assert code(verifier, token, make_proof(holder, token, **overrides)) == "invalid_dpop_proof"


def test_proof_for_another_token_is_refused(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    token = bound_token(mint, holder)
    other = bound_token(mint, holder, jti="another")
    assert code(verifier, token, make_proof(holder, other)) == "invalid_dpop_proof"


@pytest.mark.parametrize(
    "htu",
    [
        URL + "?q=1",
        URL + "#frag",
        "HTTPS://Gateway.Example:443/v1/models/fable-5:generate",
        "https://gateway.example/v1/models/fable-5%3Agenerate",  # ':' is not unreserved
    ],
)
def test_htu_comparison_ignores_query_fragment_and_normalises(
    mint: Minter, verifier: Verifier, holder: SigningKey, htu: str
) -> None:
    token = bound_token(mint, holder)
    if "%3A" in htu:  # a percent-encoded reserved character is a different URI
        assert code(verifier, token, make_proof(holder, token, htu=htu)) == "invalid_dpop_proof"
        return
    verifier.verify(token, dpop=make_proof(holder, token, htu=htu), method="POST", url=URL)
    verifier.verify(token, dpop=make_proof(holder, token), method="POST", url=URL + "?other=2#x")


def test_percent_encoded_unreserved_characters_match(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    token = bound_token(mint, holder)
    htu = "https://gateway.example/v1/models/%66able-5:generate"
    verifier.verify(token, dpop=make_proof(holder, token, htu=htu), method="POST", url=URL)


@pytest.mark.parametrize(
    "proof",
    [
        None,
        5,
        "",
        "a.b",
        "a.b.c.d",
        "é.b.c",
        "eyJ.e30.AA",
        "x" * 4097,
    ],
)
def test_malformed_proofs(
    mint: Minter, verifier: Verifier, holder: SigningKey, proof: object
) -> None:
    token = bound_token(mint, holder)
    if proof is None:
        with pytest.raises(InvalidToken) as info:
            verifier.verify(token)
        assert info.value.code == "binding_required"
        return
    assert code(verifier, token, proof) == "invalid_dpop_proof"


def test_duplicate_members_and_non_object_payload(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    token = bound_token(mint, holder)
    body = json.dumps({"jti": "a", "htm": "POST", "htu": URL, "iat": NOW}).encode()
    dup = body[:-1] + b', "jti": "b"}'
    assert code(verifier, token, make_proof(holder, token, claims=dup)) == "invalid_dpop_proof"
    assert code(verifier, token, make_proof(holder, token, claims=b"[]")) == "invalid_dpop_proof"


def test_signature_of_wrong_length(mint: Minter, verifier: Verifier, holder: SigningKey) -> None:
    token = bound_token(mint, holder)
    proof = make_proof(holder, token)
    head, body, _ = proof.split(".")
    assert code(verifier, token, f"{head}.{body}.{b64url(b'0' * 63)}") == "invalid_dpop_proof"


@given(offset=st.integers(min_value=-200, max_value=200))
def test_iat_window_boundaries(mint: Minter, jwks: dict[str, Any], offset: int) -> None:
    holder = _HOLDER
    clock = Clock()
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=StaticJWKS(jwks), now=clock, leeway=5)
    token = bound_token(mint, holder)
    proof = make_proof(holder, token, iat=NOW + offset)
    ok = -(60 + 5) <= offset <= 5
    if ok:
        v.verify(token, dpop=proof, method="POST", url=URL)
    else:
        assert code(v, token, proof) == "invalid_dpop_proof"


_HOLDER = new_es256()


def test_memory_replay_cache_bounds_and_expiry() -> None:
    cache = MemoryReplayCache(max_entries=2)
    assert cache.add(("k", "1"), expires_at=100, now=0)
    assert not cache.add(("k", "1"), expires_at=100, now=50)
    assert cache.add(("k", "2"), expires_at=150, now=50)
    with pytest.raises(InvalidToken) as info:  # full of live entries: refuse, never evict
        cache.add(("k", "3"), expires_at=160, now=60)
    assert info.value.code == "invalid_dpop_proof"
    assert cache.add(("k", "3"), expires_at=200, now=100)  # ("k","1") expired and purged
    assert cache.add(("k", "1"), expires_at=200, now=150)  # and may be recorded anew
    assert len(cache) == 2
    with pytest.raises(ValueError, match="max_entries"):
        MemoryReplayCache(max_entries=0)


class _SharedStore:
    """A stand-in for a shared store (a dict), to show the interface is pluggable."""

    def __init__(self, fail: bool = False) -> None:
        self.data: dict[tuple[str, str], float] = {}
        self.fail = fail

    def add(self, key: tuple[str, str], expires_at: float, now: float) -> bool:
        if self.fail:
            raise ConnectionError("store down")
        if key in self.data and self.data[key] > now:
            return False
        self.data[key] = expires_at
        return True


def test_pluggable_replay_cache_and_fail_closed(
    mint: Minter, jwks: dict[str, Any], holder: SigningKey
) -> None:
    store = _SharedStore()
    clock = Clock()
    a = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, replay_cache=store)
    b = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, replay_cache=store)
    token = bound_token(mint, holder)
    proof = make_proof(holder, token)
    a.verify(token, dpop=proof, method="POST", url=URL)
    assert code(b, token, proof) == "dpop_replay"  # another process sees the same jti
    (key,) = store.data
    assert key[0] == thumbprint(public_jwk(holder))
    assert store.data[key] == NOW + 60 + 5
    down = Verifier(
        issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, replay_cache=_SharedStore(True)
    )
    assert code(down, token, make_proof(holder, token)) == "invalid_dpop_proof"


async def test_verify_async_checks_proofs(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    token = bound_token(mint, holder)
    proof = make_proof(holder, token, method="GET")
    claims = await verifier.verify_async(token, dpop=proof, method="GET", url=URL)
    assert claims["cnf"]["jkt"] == thumbprint(public_jwk(holder))
    with pytest.raises(InvalidToken) as info:
        await verifier.verify_async(token, dpop=proof, method="GET", url=URL)
    assert info.value.code == "dpop_replay"
    with pytest.raises(InvalidToken) as info:
        await verifier.verify_async(token)
    assert info.value.code == "binding_required"


def test_caller_mistakes_are_value_errors(
    mint: Minter, verifier: Verifier, holder: SigningKey
) -> None:
    token = bound_token(mint, holder)
    proof = make_proof(holder, token)
    with pytest.raises(ValueError, match="method and url"):
        verifier.verify(token, dpop=proof)
    with pytest.raises(ValueError, match="absolute"):
        verifier.verify(token, dpop=proof, method="POST", url="/v1/models")
    with pytest.raises(ValueError, match="dpop_max_age"):
        Verifier(issuer=ISSUER, audience=AUDIENCE, keys={"keys": []}, dpop_max_age=0)
