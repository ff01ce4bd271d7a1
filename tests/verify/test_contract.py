"""The token contract module: one definition of the rules, and holder-key admission."""

from __future__ import annotations

import base64
import warnings
from typing import Any

import pytest
from attest_testing.verify import b64url, new_ed25519, new_es256
from joserfc.jwk import ECKey, OKPKey

import attest.settings
from attest.keys import jwk as service_jwk
from attest.verify import contract
from attest.verify.contract import HolderKeyError, holder_jwk_thumbprint

ED25519_IDENTITY = "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"  # the neutral point, order 1
_P = 2**255 - 19


def _public(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k not in ("kid", "use", "alg")}


@pytest.mark.parametrize("make", [new_es256, new_ed25519], ids=["p256", "ed25519"])
def test_good_key_thumbprint_equals_joserfc(make: Any) -> None:
    key = make()
    jwk = _public(key.jwk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags EdDSA as deprecated for Ed25519
        expected = (ECKey if jwk["kty"] == "EC" else OKPKey).import_key(jwk).thumbprint()
    assert holder_jwk_thumbprint(jwk) == expected
    # kid, use "sig" and the key's own alg are allowed and do not change the thumbprint
    assert holder_jwk_thumbprint(key.jwk) == expected
    assert contract.jwk_thumbprint(jwk) == expected
    assert service_jwk.thumbprint(jwk) == expected


def _refused(jwk: object) -> str:
    with pytest.raises(HolderKeyError) as info:
        holder_jwk_thumbprint(jwk)
    assert isinstance(info.value, ValueError)  # callers may catch ValueError
    return str(info.value)


def test_ed25519_identity_point_is_refused() -> None:
    message = _refused({"kty": "OKP", "crv": "Ed25519", "x": ED25519_IDENTITY})
    assert "small-order" in message


def test_ed25519_small_order_point_of_order_two_is_refused() -> None:
    # y = p - 1 is the point (0, -1), of order 2
    x = b64url((_P - 1).to_bytes(32, "little"))
    assert "small-order" in _refused({"kty": "OKP", "crv": "Ed25519", "x": x})


@pytest.mark.parametrize(
    "raw",
    [
        (_P + 1).to_bytes(32, "little"),  # y = p + 1: the identity, encoded with y >= p
        (1 | 1 << 255).to_bytes(32, "little"),  # y = 1 (x = 0) with the sign bit set
    ],
    ids=["y-not-reduced", "negative-zero"],
)
def test_non_canonical_ed25519_encoding_is_refused(raw: bytes) -> None:
    message = _refused({"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)})
    assert "non-canonical" in message


def test_non_canonical_base64url_is_refused() -> None:
    jwk = _public(new_ed25519().jwk)
    # 32 bytes are 43 characters; the last one carries 2 unused low bits: flip one of them
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    flipped = jwk["x"][:-1] + alphabet[alphabet.index(jwk["x"][-1]) ^ 1]
    assert "canonical" in _refused({**jwk, "x": flipped})
    assert "base64url" in _refused({**jwk, "x": jwk["x"] + "="})


def test_off_curve_p256_point_is_refused() -> None:
    jwk = _public(new_es256().jwk)
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "="), "big")
    jwk["y"] = b64url(((y + 1) % 2**256).to_bytes(32, "big"))
    assert "not on the P-256 curve" in _refused(jwk)


@pytest.mark.parametrize("member", ["d", "k", "p", "q", "dp", "dq", "qi"])
def test_private_members_are_refused(member: str) -> None:
    jwk = {**_public(new_es256().jwk), member: b64url(b"\x01" * 32)}
    message = _refused(jwk)
    assert "private" in message
    assert repr(member) in message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"kty": "RSA"}, "RSA"),
        ({"kty": "oct"}, "symmetric"),
        ({"crv": "P-384"}, "P-384"),
        ({"crv": "secp256k1"}, "secp256k1"),
        ({"use": "enc"}, "'enc'"),
        ({"key_ops": ["sign"]}, "key_ops"),
        ({"alg": "EdDSA"}, "EdDSA"),
        ({"x": None}, "x is not"),
    ],
)
def test_other_types_curves_and_uses_are_refused(change: dict[str, Any], words: str) -> None:
    assert words in _refused({**_public(new_es256().jwk), **change})


def test_x25519_and_unknown_kty_are_refused() -> None:
    ed = _public(new_ed25519().jwk)
    assert "X25519" in _refused({**ed, "crv": "X25519"})
    assert "XYZ" in _refused({"kty": "XYZ"})


@pytest.mark.parametrize("value", [None, "jwk", ["kty", "EC"], 3])
def test_not_an_object_is_refused(value: object) -> None:
    assert "JSON object" in _refused(value)


def test_the_rules_are_defined_once() -> None:
    assert contract.TOKEN_TYPE == "elig+jwt"
    assert contract.ALGORITHMS == ("ES256", "EdDSA")
    assert attest.settings.HARD_MAX_TOKEN_LIFETIME is contract.HARD_MAX_TOKEN_LIFETIME == 3600
    assert contract.ASSURANCE_LEVELS == ("IAL1", "IAL2", "IAL3")
    assert [contract.assurance_rank(level) for level in contract.ASSURANCE_LEVELS] == [1, 2, 3]
    for bad in ("ial2", "IAL4", "", None):
        with pytest.raises(ValueError, match="unknown assurance level"):
            contract.assurance_rank(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        contract.ASSURANCE_RANK["IAL4"] = 4  # type: ignore[index]
