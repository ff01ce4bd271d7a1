"""Token rejections shaped like attacks: each asserts the exact reason code (RFC 8725)."""

from __future__ import annotations

import base64
import hashlib
import hmac
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
    b64url,
    good_claims,
    new_es256,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attest.verify import InvalidToken, Verifier


def code_of(verifier: Verifier, token: str) -> str:
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    return info.value.code


def test_valid_es256_and_eddsa_tokens_verify(verifier: Verifier, mint: Minter) -> None:
    for key in (mint.es, mint.ed):
        claims = verifier.verify(mint(key=key))
        assert claims == good_claims()


# --- algorithm attacks (RFC 8725 2.1, 3.1) -------------------------------------------


def test_alg_none_is_refused(verifier: Verifier, mint: Minter) -> None:
    token = mint(alg="none", signature=b"")
    # an empty signature segment is not even a 3-segment compact JWS by our grammar
    assert code_of(verifier, token) == "malformed"
    token = mint(alg="none", signature=b"\x00")
    assert code_of(verifier, token) == "unsupported_algorithm"
    assert code_of(verifier, mint(alg="None")) == "unsupported_algorithm"


def test_hs256_with_public_key_as_hmac_secret(verifier: Verifier, mint: Minter) -> None:
    """CVE-2017-11424 / CVE-2022-29217 style key confusion: HMAC keyed by the public key."""
    secret = json.dumps(mint.es.jwk).encode()

    def hmac_sign(signing_input: bytes) -> bytes:
        return hmac.new(secret, signing_input, hashlib.sha256).digest()

    assert code_of(verifier, mint(alg="HS256", signature=hmac_sign)) == "unsupported_algorithm"


@pytest.mark.parametrize("alg", ["RS256", "ES384", "ES512", "PS256", "Ed25519", "es256", 7, None])
def test_other_algorithms_refused(verifier: Verifier, mint: Minter, alg: object) -> None:
    assert code_of(verifier, mint(alg=alg)) == "unsupported_algorithm"


def test_missing_alg_refused(verifier: Verifier, mint: Minter) -> None:
    assert code_of(verifier, mint(alg=DROP)) == "unsupported_algorithm"


def test_algorithm_confusion_es256_against_eddsa_key(verifier: Verifier, mint: Minter) -> None:
    """The token's alg is ES256 and it names the Ed25519 key: the key decides, refuse."""
    token = mint(key=mint.es, kid=mint.ed.kid)  # ES256 signature, EdDSA key's kid
    assert code_of(verifier, token) == "unsupported_algorithm"
    token = mint(key=mint.ed, kid=mint.es.kid)  # EdDSA signature, ES256 key's kid
    assert code_of(verifier, token) == "unsupported_algorithm"


def test_same_kid_different_key_type_is_refused(mint: Minter, clock: Clock) -> None:
    """A key set where the kid resolves to an EdDSA key; an ES256 token with that kid fails."""
    ed_jwk = {**mint.ed.jwk, "kid": "shared"}
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, keys={"keys": [ed_jwk]}, now=clock)
    assert code_of(v, mint(key=mint.es, kid="shared")) == "unsupported_algorithm"
    assert v.verify(mint(key=mint.ed, kid="shared"))["sub"] == "pairwise-subject-1"


# --- typ (RFC 8725 3.11) -------------------------------------------------------------


@pytest.mark.parametrize("typ", [DROP, "JWT", "jwt", "ELIG+JWT", "application/elig+jwt", "", 1])
def test_wrong_typ(verifier: Verifier, mint: Minter, typ: object) -> None:
    assert code_of(verifier, mint(typ=typ)) == "wrong_type"


# --- header-supplied keys and crit (RFC 8725 3.10, RFC 7515 4.1.11) --------------------


@pytest.mark.parametrize("name", ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"])
def test_forbidden_headers(verifier: Verifier, mint: Minter, name: str) -> None:
    values: dict[str, Any] = {
        "jwk": mint.es.jwk,
        "jku": "https://attest.example.evil/jwks.json",
        "x5u": "https://attest.example.evil/cert.pem",
        "x5c": ["MIIB"],
        "x5t": "abc",
        "x5t#S256": "abc",
        "crit": ["exp"],
    }
    header = {**mint.header(mint.es), name: values[name]}
    assert code_of(verifier, mint(header=header)) == "forbidden_header"


def test_attacker_jwk_header_is_not_used(verifier: Verifier, mint: Minter) -> None:
    """Signed by an attacker key embedded in the header (CVE-2018-0114 style)."""
    attacker = new_es256()
    header = {"alg": "ES256", "typ": "elig+jwt", "kid": attacker.kid, "jwk": attacker.jwk}
    assert code_of(verifier, mint(key=attacker, header=header)) == "forbidden_header"
    header.pop("jwk")
    assert code_of(verifier, mint(key=attacker, header=header)) == "unknown_key"


# --- kid -----------------------------------------------------------------------------


def test_unknown_and_missing_kid(verifier: Verifier, mint: Minter) -> None:
    assert code_of(verifier, mint(kid="no-such-key")) == "unknown_key"
    assert code_of(verifier, mint(kid=DROP)) == "unknown_key"
    assert code_of(verifier, mint(kid=123)) == "malformed"


# --- signature -----------------------------------------------------------------------


def test_tampered_payload(verifier: Verifier, mint: Minter) -> None:
    token = mint()
    head, _, sig = token.split(".")
    forged = b64url(json.dumps(good_claims(sub="someone-else")).encode())
    assert code_of(verifier, f"{head}.{forged}.{sig}") == "bad_signature"


@pytest.mark.parametrize("keyname", ["es", "ed"])
def test_signature_of_wrong_length_or_bits(verifier: Verifier, mint: Minter, keyname: str) -> None:
    key = getattr(mint, keyname)
    assert code_of(verifier, mint(key=key, signature=b"\x01" * 63)) == "bad_signature"
    assert code_of(verifier, mint(key=key, signature=b"\x01" * 65)) == "bad_signature"
    assert code_of(verifier, mint(key=key, signature=b"\x00" * 64)) == "bad_signature"
    assert code_of(verifier, mint(key=key, signature=b"\xff" * 64)) == "bad_signature"
    token = mint(key=key)
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[10] ^= 1
    assert code_of(verifier, f"{head}.{payload}.{b64url(bytes(raw))}") == "bad_signature"


def test_es256_der_signature_refused(verifier: Verifier, mint: Minter) -> None:
    def der(signing_input: bytes) -> bytes:
        assert isinstance(mint.es.private, ec.EllipticCurvePrivateKey)
        return mint.es.private.sign(signing_input, ec.ECDSA(hashes.SHA256()))

    assert code_of(verifier, mint(signature=der)) == "bad_signature"


# --- structure (RFC 7515 7.1, 5.2) ---------------------------------------------------


def test_truncated_and_non_base64_tokens(verifier: Verifier, mint: Minter) -> None:
    token = mint()
    for bad in (
        token[: token.rindex(".")],
        token[: token.rindex(".") + 1],
        token[: len(token) // 2],
        token + ".",
        token + ".AAAA",
        "",
        "...",
        token.replace(".", "!", 1),
        token + "=",
        token[:-1] + "*",
        " " + token,
        token + "\n",
        token[:-2] + "é",
    ):
        assert code_of(verifier, bad) == "malformed", bad


def test_truncated_signature_is_bad(verifier: Verifier, mint: Minter) -> None:
    head, payload, sig = mint().split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    assert code_of(verifier, f"{head}.{payload}.{b64url(raw[:60])}") == "bad_signature"
    assert code_of(verifier, mint()[:-4]) in {"malformed", "bad_signature"}


def test_non_canonical_base64_refused(verifier: Verifier, mint: Minter) -> None:
    token = mint()
    head, payload, sig = token.split(".")
    # ES256 signature: 64 bytes -> 86 chars with 4 spare bits in the last char
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(sig[-1]) ^ 1]
    assert code_of(verifier, f"{head}.{payload}.{sig[:-1]}{last}") == "malformed"
    assert code_of(verifier, f"{head}.{payload}.{sig}AAA") == "malformed"  # len % 4 == 1


def test_non_string_token(verifier: Verifier) -> None:
    for value in (None, b"a.b.c", 1, ["a"]):
        assert code_of(verifier, value) == "malformed"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"alg":"ES256","alg":"ES256","typ":"elig+jwt","kid":"K"}',
        b"[1,2]",
        b'"elig+jwt"',
        b"not json",
        b'{"alg":"ES256"',
        b"\xff\xfe{}",
        '{"alg":"ES256","typ":"elig+jwt"}'.encode("utf-16"),
        b'{"alg":NaN}',
        b"[" * 3000 + b"]" * 3000,
    ],
)
def test_malformed_header(verifier: Verifier, mint: Minter, raw: bytes) -> None:
    assert code_of(verifier, mint(header=raw.replace(b"K", mint.es.kid.encode()))) in {
        "malformed",
        "too_large",
    }


def test_duplicate_member_in_header_and_payload(verifier: Verifier, mint: Minter) -> None:
    kid = mint.es.kid
    raw = f'{{"alg":"ES256","typ":"JWT","typ":"elig+jwt","kid":"{kid}"}}'.encode()
    assert code_of(verifier, mint(header=raw)) == "malformed"
    claims = json.dumps(good_claims())
    dup = claims[:-1] + ', "aud": "model:other"}'
    assert code_of(verifier, mint(dup.encode())) == "malformed"
    nested = claims.replace('"assurance": "IAL2"', '"assurance": "IAL1", "assurance": "IAL2"')
    assert code_of(verifier, mint(nested.encode())) == "malformed"


def _compact(claims: dict[str, Any]) -> str:
    return json.dumps(claims, separators=(",", ":"))


# The verifier parses payloads without a per-object duplicate hook and rules duplicates out
# by counting quotes against the strings the claim checks saw (Verifier._verify).
# Each payload below has a duplicate member arranged to defeat a naive count: it must be
# refused as malformed, before any claim rule gets to report something else.
_GOOD = _compact(good_claims())
_DUPLICATES = {
    # the duplicate's first value is a number, and a string elsewhere became a number, so
    # the text holds as many strings as a valid token: the claim check fails first
    "count-balanced": _GOOD.replace('"sub":', '"sub":1,"sub":').replace(
        '"jti":"jti-0001"', '"jti":7'
    ),
    # last value wins in a plain parse: a wrong issuer would be reported, not the duplicate
    "then-wrong-issuer": _GOOD.replace('"iss":', '"iss":"x","iss":"https://other.example","i":'),
    "same-value-twice": _GOOD.replace('"iat":', f'"iat":{NOW},"iat":'),
    "in-eligibility": _GOOD.replace('"policy_version":3', '"policy_version":2,"policy_version":3'),
    "in-cnf": _compact(good_claims(cnf={"jkt": "a"}))[:-2] + ',"jkt":"b"}}',
    # a duplicate that adds one string only: caught only if cnf's strings are not overcounted
    "in-cnf-beside-jkt": _compact(good_claims(cnf={"jkt": "a", "n": 1}))[:-2] + ',"n":2}}',
    "in-status-list": _compact(good_claims(status={"status_list": {"idx": 1, "uri": "u"}})).replace(
        '"idx":1', '"idx":0,"idx":1'
    ),
    "in-status": _compact(
        good_claims(status={"status_list": {"idx": 1, "uri": "u"}, "n": 1})
    ).replace('"n":1', '"n":0,"n":1'),
    "in-unknown-claim": _compact(good_claims(extra={"a": 1})).replace('"a":1', '"a":1,"a":2'),
    "with-escaped-quotes": _GOOD.replace('"sub":"pairwise-subject-1"', '"sub":"a\\"b","sub":"c"'),
    "with-escaped-names": _GOOD.replace('"jti":', '"\\u006ati":"x","jti":'),
    "with-spaces": _GOOD.replace('"aud":', '"aud" : "x" , "aud" :'),
}


@pytest.mark.parametrize("payload", _DUPLICATES.values(), ids=_DUPLICATES.keys())
def test_duplicate_members_are_found_whatever_the_quote_count(
    verifier: Verifier, mint: Minter, payload: str
) -> None:
    with pytest.raises(ValueError, match="duplicate"):  # the payloads really hold one
        json.loads(payload, object_pairs_hook=_refuse_duplicates)
    assert code_of(verifier, mint(payload.encode())) == "malformed"


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


@pytest.mark.parametrize(
    "claims",
    [
        good_claims(sub='quote " and backslash \\ inside'),
        good_claims(note="\u0022 is a quote", tags=["a", "b", {"c": "d"}]),
        good_claims(sub="\u00e9l\u00e8ve \U0001f600"),
    ],
)
def test_payloads_with_escapes_and_extra_strings_verify_unchanged(
    verifier: Verifier, mint: Minter, claims: dict[str, Any]
) -> None:
    assert verifier.verify(mint(claims)) == claims
    spaced = json.dumps(claims, indent=2, ensure_ascii=False).encode()
    assert verifier.verify(mint(spaced)) == claims


@pytest.mark.parametrize(
    "raw", [b"[]", b"null", b"not json", b"\xc3\x28", b'{"exp":Infinity}', b"{}{}"]
)
def test_malformed_payload_with_valid_signature(
    verifier: Verifier, mint: Minter, raw: bytes
) -> None:
    assert code_of(verifier, mint(raw)) == "malformed"


def test_over_size_token_refused_before_decoding(verifier: Verifier, mint: Minter) -> None:
    claims = good_claims(padding="x" * 9000)
    assert code_of(verifier, mint(claims)) == "too_large"
    assert code_of(verifier, "a" * 8193) == "too_large"
    assert code_of(verifier, "é" * 9000) == "too_large"
    # just under the cap still verifies
    base = len(mint(good_claims(padding="")))
    fits = mint(good_claims(padding="x" * ((8192 - base) * 3 // 4)))
    assert len(fits) <= 8192
    assert verifier.verify(fits)["padding"]


# --- claims --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "eligibility"])
def test_missing_required_claim(verifier: Verifier, mint: Minter, name: str) -> None:
    claims = good_claims()
    del claims[name]
    assert code_of(verifier, mint(claims)) == "missing_claim"


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": float(NOW + 600)},
        {"exp": NOW + 600.5},
        {"exp": str(NOW + 600)},
        {"exp": None},
        {"iat": True},
        {"nbf": False},
        {"nbf": [NOW]},
        {"iat": 0},
        {"iat": -1},
        {"exp": 2**40},
        {"exp": 10**30},
        {"iat": NOW + 700},  # exp <= iat (iat future caught first? no: leeway check order)
        {"iss": ["https://attest.example"]},
        {"iss": None},
        {"aud": [AUDIENCE]},
        {"aud": [AUDIENCE, "model:other"]},
        {"aud": None},
        {"sub": ""},
        {"sub": 42},
        {"jti": ""},
        {"jti": None},
        {"eligibility": "IAL2"},
        {"eligibility": []},
        {"cnf": "thumb"},
        {"cnf": {"jkt": 5}},
        {"cnf": {}},
        {"status": {"status_list": {"idx": -1, "uri": "https://x"}}},
        {"status": {"status_list": {"idx": 1}}},
        {"status": []},
    ],
)
def test_invalid_claim_types(verifier: Verifier, mint: Minter, overrides: dict[str, Any]) -> None:
    expected = "issued_in_future" if "iat" in overrides and overrides["iat"] == NOW + 700 else None
    assert code_of(verifier, mint(good_claims(**overrides))) == (expected or "invalid_claim")


def test_exp_not_after_iat(verifier: Verifier, mint: Minter) -> None:
    assert code_of(verifier, mint(good_claims(iat=NOW, exp=NOW))) == "invalid_claim"
    claims = good_claims(iat=NOW - 10, nbf=NOW - 10, exp=NOW - 10 + 0)
    assert code_of(verifier, mint(claims)) == "expired"
    # exp after now but not after iat: iat in the future within leeway
    claims = good_claims(iat=NOW + 4, nbf=NOW, exp=NOW + 3)
    assert code_of(verifier, mint(claims)) == "invalid_claim"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("policy", ""),
        ("policy", None),
        ("policy_version", "3"),
        ("policy_version", True),
        ("policy_version", 3.0),
        ("policy_version", -1),
        ("policy_digest", 7),
        ("policy_digest", ""),
        ("assurance", "IAL4"),
        ("assurance", "ial2"),
        ("assurance", None),
    ],
)
def test_invalid_eligibility(verifier: Verifier, mint: Minter, field: str, value: object) -> None:
    eligibility = {**good_claims()["eligibility"], field: value}
    assert code_of(verifier, mint(good_claims(eligibility=eligibility))) == "invalid_claim"
    del eligibility[field]
    assert code_of(verifier, mint(good_claims(eligibility=eligibility))) == "invalid_claim"


@pytest.mark.parametrize(
    "iss",
    [
        "https://attest.example.evil",
        "https://attest.exampl",
        "https://attest.example/",
        "HTTPS://attest.example",
        "https://ATTEST.example",
        "https://attest.example:443",
        " https://attest.example",
        "https://attest.example\u0000",
        "",
    ],
)
def test_issuer_look_alikes(verifier: Verifier, mint: Minter, iss: str) -> None:
    assert code_of(verifier, mint(good_claims(iss=iss))) == "wrong_issuer"


@pytest.mark.parametrize(
    "aud", ["model:fable-5 ", "model:fable", "model:fable-50", "", "MODEL:fable-5"]
)
def test_wrong_audience(verifier: Verifier, mint: Minter, aud: str) -> None:
    assert code_of(verifier, mint(good_claims(aud=aud))) == "wrong_audience"


def test_audience_list_is_invalid_claim(verifier: Verifier, mint: Minter) -> None:
    assert code_of(verifier, mint(good_claims(aud=[AUDIENCE]))) == "invalid_claim"


def test_lifetime_cap(verifier: Verifier, mint: Minter) -> None:
    ok = good_claims(iat=NOW, nbf=NOW, exp=NOW + 3600)
    assert verifier.verify(mint(ok))["exp"] == NOW + 3600
    too_long = good_claims(iat=NOW, nbf=NOW, exp=NOW + 3601)
    assert code_of(verifier, mint(too_long)) == "lifetime_too_long"


def test_expired_and_not_yet_valid(verifier: Verifier, mint: Minter, clock: Clock) -> None:
    assert code_of(verifier, mint(good_claims(iat=NOW - 700, nbf=NOW - 700, exp=NOW - 100))) == (
        "expired"
    )
    assert code_of(verifier, mint(good_claims(nbf=NOW + 60))) == "not_yet_valid"
    assert code_of(verifier, mint(good_claims(iat=NOW + 60, nbf=NOW))) == "issued_in_future"


def test_bound_token_requires_binding(verifier: Verifier, mint: Minter) -> None:
    assert code_of(verifier, mint(good_claims(cnf={"jkt": "abc"}))) == "binding_required"


def test_optional_status_claim_accepted(verifier: Verifier, mint: Minter) -> None:
    claims = good_claims(status={"status_list": {"idx": 7, "uri": "https://attest.example/s/1"}})
    assert verifier.verify(mint(claims))["status"]["status_list"]["idx"] == 7


def test_policy_and_assurance_options(mint: Minter, jwks: dict[str, Any], clock: Clock) -> None:
    v = Verifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        keys=jwks,
        now=clock,
        policies={"us-persons"},
        min_assurance="IAL3",
    )
    assert code_of(v, mint()) == "policy_not_allowed"
    eligibility = {**good_claims()["eligibility"], "policy": "us-persons"}
    assert code_of(v, mint(good_claims(eligibility=eligibility))) == "insufficient_assurance"
    eligibility["assurance"] = "IAL3"
    assert v.verify(mint(good_claims(eligibility=eligibility)))["eligibility"] == eligibility


def test_constructor_refuses_bad_settings(jwks: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="issuer"):
        Verifier(issuer="", audience=AUDIENCE, keys=jwks)
    with pytest.raises(ValueError, match="audience"):
        Verifier(issuer=ISSUER, audience="", keys=jwks)
    with pytest.raises(ValueError, match="leeway"):
        Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, leeway=-1)
    with pytest.raises(ValueError, match="cache_size"):
        Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, cache_size=-1)
    with pytest.raises(ValueError, match="min_assurance"):
        Verifier(issuer=ISSUER, audience=AUDIENCE, keys=jwks, min_assurance="IAL9")


def test_signed_but_non_canonical_payload_segment_is_malformed(
    verifier: Verifier, mint: Minter
) -> None:
    # The issuer's key signs the odd spelling, so only the payload decoding can refuse it.
    head, payload, _ = mint().split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(payload) % 4 in (2, 3)
    spare = alphabet[alphabet.index(payload[-1]) ^ 1]  # sets a bit that must be zero
    variants = [
        payload[:-1] + spare,
        payload + "=" * (-len(payload) % 4),
        payload + "A" * (5 - len(payload) % 4),  # length 1 mod 4
        "+" + payload[1:],
        "/" + payload[1:],
        payload[:10] + "!" + payload[11:],
    ]
    for variant in variants:
        signing_input = f"{head}.{variant}"
        token = f"{signing_input}.{b64url(mint.es.sign(signing_input.encode()))}"
        assert code_of(verifier, token) == "malformed", variant
    ok = f"{head}.{payload}"
    assert verifier.verify(f"{ok}.{b64url(mint.es.sign(ok.encode()))}")["jti"] == "jti-0001"
