"""The header holds exactly alg, typ and kid (DESIGN.md "Verifier"); any other member is refused."""

from __future__ import annotations

from typing import Any

import pytest
from attest_testing.verify import Minter

from attest.verify import InvalidToken, Verifier


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cty", "JWT"),  # RFC 7515 4.1.10: a nested JWT would be read differently
        ("zip", "DEF"),  # RFC 7516 4.1.3: compression belongs to JWE only
        ("b64", False),  # RFC 7797: an unencoded payload
        ("b64", True),  # even the default value: the member is not ours
        ("x-unknown", 1),
        ("ALG", "ES256"),  # member names are case-sensitive (RFC 7515 4)
        ("", ""),
    ],
)
@pytest.mark.parametrize("keyname", ["es", "ed"])
def test_other_header_members_are_forbidden(
    verifier: Verifier, mint: Minter, keyname: str, name: str, value: Any
) -> None:
    key = getattr(mint, keyname)
    good = mint.header(key)
    assert verifier.verify(mint(key=key, header=good))["jti"]
    with pytest.raises(InvalidToken) as info:
        verifier.verify(mint(key=key, header={**good, name: value}))
    assert info.value.code == "forbidden_header"


def test_the_refusal_names_the_member(verifier: Verifier, mint: Minter) -> None:
    with pytest.raises(InvalidToken, match="'cty'"):
        verifier.verify(mint(header={**mint.header(mint.es), "cty": "JWT"}))
