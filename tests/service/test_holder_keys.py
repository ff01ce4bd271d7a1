"""The issuer admits holder keys with the verifier's own check (attest.verify.contract):
a key anyone can sign for never gets into ``cnf.jkt``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from attest_testing.service import assert_problem, token_for

# Ed25519 points of small order: a signature by "anyone" verifies under plain
# cryptography, so binding a token to one would bind it to nobody.
SMALL_ORDER_ED25519 = [
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # the identity point
    "7P_______________________________________38",  # y = p - 1 (order 2)
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # y = 0 (order 4)
]


@pytest.mark.parametrize("x", SMALL_ORDER_ED25519)
def test_a_small_order_ed25519_holder_key_is_refused(
    operator: httpx.Client, eligible_subject: dict[str, Any], x: str
) -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x}
    response = token_for(operator, eligible_subject["id"], "model:fable-5", holder_jwk=jwk)
    body = assert_problem(response, 400, "invalid-holder-key")
    assert body["errors"][0]["field"] == "$.holder_jwk"
