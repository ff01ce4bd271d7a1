"""Hypothesis: only InvalidToken escapes for any input; leeway boundaries are exact."""

from __future__ import annotations

import json
from typing import Any

import pytest
from attest_testing.verify import AUDIENCE, ISSUER, NOW, Clock, Minter, good_claims
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.verify import REASON_CODES, InvalidToken, Verifier

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(v: Verifier, token: Any) -> str:
    """ "ok" or the reason code; any other exception fails the test."""
    try:
        v.verify(token)
    except InvalidToken as exc:
        code = exc.code
    else:
        return "ok"
    assert code in REASON_CODES
    return code


@pytest.fixture(scope="module")
def sverifier(jwks: dict[str, Any]) -> Verifier:
    """A verifier for Hypothesis tests (module scope: no per-example state to reset)."""
    return Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=Clock(NOW))


def verifier_at(jwks: dict[str, Any], t: float, leeway: int) -> Verifier:
    return Verifier(
        issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=Clock(t), leeway=leeway, cache_size=0
    )


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text(sverifier: Verifier, text: str) -> None:
    assert outcome(sverifier, text) != "ok"


@FUZZ
@given(st.lists(st.text(alphabet="ABCabc019-_=+/.", max_size=40), min_size=1, max_size=5))
def test_arbitrary_segments(sverifier: Verifier, parts: list[str]) -> None:
    assert outcome(sverifier, ".".join(parts)) != "ok"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@FUZZ
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "crit", "jwk", "zip"]), json_values
    ),
    claims=st.dictionaries(
        st.sampled_from(["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "eligibility", "cnf"]),
        json_values,
    ),
)
def test_signed_arbitrary_json(
    sverifier: Verifier, mint: Minter, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    """Validly signed tokens with arbitrary header and claim values never crash."""
    merged_header = {**mint.header(mint.es), **header}
    merged_claims = {**good_claims(), **claims}
    raw_header = json.dumps(merged_header).encode()
    raw_claims = json.dumps(merged_claims).encode()
    outcome(sverifier, mint(raw_claims, header=raw_header))


@FUZZ
@given(
    segment=st.integers(0, 2),
    position=st.integers(0, 10_000),
    replacement=st.characters(codec="ascii") | st.binary(max_size=3).map(lambda b: b.hex()),
)
def test_mutated_valid_token(
    sverifier: Verifier, mint: Minter, segment: int, position: int, replacement: str
) -> None:
    original = mint()
    parts = original.split(".")
    target = parts[segment]
    i = position % (len(target) + 1)
    parts[segment] = target[:i] + replacement + target[i + 1 :]
    token = ".".join(parts)
    result = outcome(sverifier, token)
    # only a no-op mutation (a character replaced by itself) may still verify
    assert (result == "ok") == (token == original)


def _exact(text: str) -> dict[str, Any] | None:
    """The payload as an exact decoder reads it; None when a member is duplicated."""

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({name for name, _ in pairs}) != len(pairs):
            raise KeyError("duplicate")
        return dict(pairs)

    try:
        result: dict[str, Any] = json.loads(text, object_pairs_hook=pairs_hook)
    except KeyError:
        return None
    return result


_NAMES = st.sampled_from(
    ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "policy", "assurance", "jkt", "x"]
)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(0, 2**31) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAMES, inner, max_size=3),
    max_leaves=6,
)


_OPTIONAL_CLAIMS = {
    "cnf": st.fixed_dictionaries({"jkt": st.text(min_size=1, max_size=6)}),
    "status": st.fixed_dictionaries(
        {
            "status_list": st.fixed_dictionaries(
                {"idx": st.integers(0, 9), "uri": st.text(min_size=1, max_size=6)}
            )
        }
    ),
    "note": _VALUES,
}


@FUZZ
@given(
    extra=st.fixed_dictionaries({}, optional=_OPTIONAL_CLAIMS),
    inserts=st.lists(
        st.tuples(
            st.sampled_from(["", "eligibility", "cnf", "status_list"]),
            _NAMES,
            _VALUES,
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    ),
    spaced=st.booleans(),
)
def test_duplicate_members_always_refused_as_malformed(
    sverifier: Verifier,
    mint: Minter,
    extra: dict[str, Any],
    inserts: list[tuple[str, str, Any, bool]],
    spaced: bool,
) -> None:
    """Members spliced into a valid payload (often duplicates, with quotes and escapes in
    strings): a duplicate is always ``malformed``; otherwise the claims are returned as an
    exact decoder reads them, or a claim rule refuses them (never ``malformed``)."""
    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(good_claims(**extra), separators=separators)
    for where, name, value, ascii_only in inserts:
        member = json.dumps({name: value}, separators=separators, ensure_ascii=ascii_only)[1:-1]
        anchor = f'"{where}"{separators[1]}{{' if where else "{"
        text = text.replace(anchor, anchor + member + separators[0], 1)
    expected = _exact(text)
    token = mint(text.encode())
    if expected is None:
        assert outcome(sverifier, token) == "malformed"
        return
    code = outcome(sverifier, token)
    assert code != "malformed"
    if code == "ok":
        assert sverifier.verify(token) == expected


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(-20, 20), leeway=st.integers(0, 30))
def test_exp_boundary(mint: Minter, jwks: dict[str, Any], offset: int, leeway: int) -> None:
    clock = Clock(NOW + 600 + offset)  # exp = NOW + 600
    v = Verifier(
        issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, leeway=leeway, cache_size=0
    )
    expected = "ok" if clock.t - leeway < NOW + 600 else "expired"
    assert outcome(v, mint()) == expected


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(-20, 20), leeway=st.integers(0, 30), frac=st.floats(0, 0.999))
def test_nbf_and_iat_boundaries(
    mint: Minter, jwks: dict[str, Any], offset: int, leeway: int, frac: float
) -> None:
    clock = Clock(NOW + offset + frac)
    v = Verifier(
        issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, leeway=leeway, cache_size=0
    )
    nbf_only = mint(good_claims(iat=NOW - 100, nbf=NOW, exp=NOW + 400))
    assert outcome(v, nbf_only) == ("ok" if clock.t + leeway >= NOW else "not_yet_valid")
    iat_only = mint(good_claims(iat=NOW, nbf=NOW - 100, exp=NOW + 400))
    assert outcome(v, iat_only) == ("ok" if clock.t + leeway >= NOW else "issued_in_future")


@settings(max_examples=100, deadline=None)
@given(advance=st.integers(0, 1200))
def test_cached_and_uncached_agree(mint: Minter, jwks: dict[str, Any], advance: int) -> None:
    clock = Clock(NOW)
    cached = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock)
    uncached = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, cache_size=0)
    token = mint()
    cached.verify(token)
    clock.t = NOW + advance
    assert outcome(cached, token) == outcome(uncached, token)
