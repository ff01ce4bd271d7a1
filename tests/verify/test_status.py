"""The status-list hook: revoked entries refuse, errors fail closed, cached tokens re-checked."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from attest_testing.verify import AUDIENCE, ISSUER, Clock, Minter, b64url, good_claims

from attest.verify import InvalidToken, LocalStatusList, Verifier

URI = "https://attest.example/v1/status-lists/1"


def lst(values: list[int], bits: int) -> str:
    """Pack ``values`` ``bits`` wide, least significant first (Token Status List 4.1)."""
    packed = bytearray((len(values) * bits + 7) // 8)
    for i, value in enumerate(values):
        packed[i * bits // 8] |= value << (i * bits % 8)
    return b64url(zlib.compress(bytes(packed)))


def status_claims(idx: int, uri: str = URI) -> dict[str, Any]:
    return good_claims(status={"status_list": {"idx": idx, "uri": uri}})


def code(v: Verifier, token: str) -> str:
    with pytest.raises(InvalidToken) as info:
        v.verify(token)
    return info.value.code


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_local_list_decodes_every_width(bits: int) -> None:
    values = [0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1]
    if bits > 1:
        values[3] = 2  # SUSPENDED counts as not VALID
    hook = LocalStatusList({URI: (bits, lst(values, bits))})
    assert [hook.is_revoked(URI, i) for i in range(len(values))] == [v != 0 for v in values]


def test_revoked_token_is_refused(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    hook = LocalStatusList({URI: (1, lst([0, 1, 0], 1))})
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, status=hook)
    assert v.verify(mint(status_claims(0)))["status"]["status_list"]["idx"] == 0
    assert code(v, mint(status_claims(1))) == "revoked"


def test_revocation_reaches_cached_tokens(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    hook = LocalStatusList({URI: (1, lst([0, 0], 1))})
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, status=hook)
    token = mint(status_claims(1))
    v.verify(token)
    assert token in v._cache
    hook.update(URI, 1, lst([0, 1], 1))
    assert code(v, token) == "revoked"


@pytest.mark.parametrize(
    "claims", [status_claims(99), status_claims(0, uri="https://elsewhere.example/list")]
)
def test_unknown_list_or_index_fails_closed(
    mint: Minter, jwks: dict[str, Any], clock: Clock, claims: dict[str, Any]
) -> None:
    hook = LocalStatusList({URI: (1, lst([0], 1))})
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, status=hook)
    assert code(v, mint(claims)) == "status_unavailable"


class _Hook:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, int]] = []

    def is_revoked(self, uri: str, idx: int) -> bool:
        self.calls.append((uri, idx))
        if isinstance(self.answer, BaseException):
            raise self.answer
        result: bool = self.answer
        return result


def test_hook_contract(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    def verifier(hook: _Hook) -> Verifier:
        return Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock, status=hook)

    ok = _Hook(False)
    verifier(ok).verify(mint(status_claims(7)))
    assert ok.calls == [(URI, 7)]
    # a token without a status claim does not consult the hook
    verifier(ok).verify(mint())
    assert len(ok.calls) == 1
    # only an explicit False accepts; errors fail closed
    assert code(verifier(_Hook(None)), mint(status_claims(7))) == "revoked"
    assert code(verifier(_Hook(OSError("down"))), mint(status_claims(7))) == "status_unavailable"
    assert code(verifier(_Hook(InvalidToken())), mint(status_claims(7))) == "invalid_token"
    # no hook configured: the reference is checked for shape only
    plain = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, now=clock)
    assert plain.verify(mint(status_claims(7)))["status"]["status_list"]["idx"] == 7


def test_bad_lists_are_refused() -> None:
    hook = LocalStatusList()
    with pytest.raises(ValueError, match="bits"):
        hook.update(URI, 3, lst([0], 1))
    with pytest.raises(ValueError, match="zlib"):
        hook.update(URI, 1, b64url(b"not zlib"))
    with pytest.raises(ValueError, match="zlib"):
        hook.update(URI, 1, "not base64!")
    bomb = b64url(zlib.compress(b"\x00" * ((1 << 24) + 1)))
    with pytest.raises(ValueError, match="too large"):
        hook.update(URI, 1, bomb)
