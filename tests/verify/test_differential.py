"""Differential test: attest.verify against PyJWT configured as strictly as PyJWT allows.

attest.verify parses the JWS itself (docs/adr/0001-verifier-parses-jws.md), so this test
holds it to an independent implementation. Every conformance vector and a Hypothesis corpus
of valid and mutated tokens (real ES256 and Ed25519 signatures) go through both, and they
must agree on accept/reject, except where attest is stricter by design. Those cases are named
in STRICTER_BY_DESIGN; :func:`stricter_by_design` recognises them in a token from its bytes
alone (never from how the token was made), and a token in one of them must be refused by
attest: PyJWT may accept it, attest never may. A token attest accepts and PyJWT refuses is
always a failure.

Time is fixed (NOW, both libraries, no sleep); the leeway is the same (5 s).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, tzinfo
from typing import Any
from unittest import mock

import jwt
import jwt.api_jwt
from attest_testing.verify import (
    AUDIENCE,
    ISSUER,
    NOW,
    SigningKey,
    b64url,
    good_claims,
    new_ed25519,
    new_es256,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.verify import InvalidToken, Verifier
from attest.verify._selftest import load_vectors
from attest.verify.contract import (
    ALGORITHMS,
    ASSURANCE_LEVELS,
    HARD_MAX_TOKEN_LIFETIME,
    TOKEN_TYPE,
)

LEEWAY = 5
MAX_TOKEN_CHARS = 8192
REQUIRED = ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "eligibility"]

#: Where attest refuses a token that strict PyJWT accepts, on purpose. Each name is one rule
#: of DESIGN.md that PyJWT does not have (or cannot be configured to have).
STRICTER_BY_DESIGN = {
    # DESIGN "Verifier": the token's size is capped before any decoding (8192 characters);
    # PyJWT decodes a token of any size.
    "size_cap",
    # RFC 7515 2 / DESIGN: a token has one spelling: unpadded base64url, no stray trailing
    # bits, ASCII only. PyJWT pads and decodes with the lenient base64 decoder (which also
    # drops characters outside the alphabet), so padded or non-canonical segments pass.
    "non_canonical_base64url",
    # DESIGN: the header holds exactly alg, typ and kid. PyJWT ignores cty, zip, jwk, jku,
    # x5c, x5u, x5t and unknown members (it uses none of them, but accepts the token).
    "header_members",
    # RFC 7515 5.2 / DESIGN: no duplicate member names in header or payload (RFC 8259 4 lets
    # a parser pick one; attest refuses, PyJWT's json.loads keeps the last).
    "duplicate_members",
    # RFC 8259: NaN, Infinity and -Infinity are not JSON; Python's json.loads accepts them.
    "json_constants",
    # RFC 7515 5.2 step 3: header and payload are UTF-8. json.loads on bytes also accepts a
    # byte order mark, UTF-16/32 and lone surrogates.
    "json_encoding",
    # DESIGN token v1: iat, nbf and exp are JSON integers in (0, 2**40). PyJWT takes int() of
    # any number or numeric string (1.5, "1700000600", 10**30).
    "numeric_date",
    # DESIGN token v1: exp after iat and exp - iat at most 3600 s (HARD_MAX_TOKEN_LIFETIME).
    # PyJWT does not relate exp to iat.
    "lifetime",
    # RFC 7519 4.1.2 / 4.1.7 as attest issues them: sub and jti are non-empty strings;
    # PyJWT checks only that they are strings.
    "empty_sub_or_jti",
    # DESIGN token v1: the eligibility claim's members and types (policy, policy_version,
    # policy_digest, assurance in IAL1..IAL3); PyJWT only requires that the claim exists.
    "eligibility",
    # DESIGN token v1: an optional status claim must be a well-formed status_list reference.
    "status",
    # RFC 7800 / RFC 9449: a token with cnf is bound to a holder key and is refused without
    # a DPoP proof (binding_required); PyJWT has no notion of holder binding.
    "cnf",
}
# Not in the list because PyJWT can be made as strict: typ (checked by hand below), an aud
# array (strict_aud=True), iss exact (issuer=), the algorithm from the key (algorithms=).

_B64URL = re.compile(r"[A-Za-z0-9_-]*")

ES, ED = new_es256(), new_ed25519()
JWKS: dict[str, Any] = {"keys": [ES.jwk, ED.jwk]}
_ALG_OF_KTY = {"EC": "ES256", "OKP": "EdDSA"}


class _FrozenDatetime(datetime):
    """PyJWT reads the clock with datetime.now(tz=timezone.utc); this one answers NOW."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _FrozenDatetime:
        return cls.fromtimestamp(NOW, tz)


def attest_accepts(verifier: Verifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except InvalidToken:
        return False
    return True


def pyjwt_accepts(token: str, jwks: dict[str, Any]) -> bool:
    """PyJWT's jwt.decode as strictly as it is configurable, plus typ and kid by hand."""
    keys = {k["kid"]: k for k in jwks["keys"]}
    try:
        header = jwt.get_unverified_header(token)
        # PyJWT does not check typ (RFC 8725 3.11): done here, exact.
        if header.get("typ") != TOKEN_TYPE:
            return False
        # The key named by kid, and the algorithm from the key (never from the token).
        kid = header.get("kid")
        jwk = keys.get(kid) if isinstance(kid, str) else None
        if jwk is None:
            return False
        with mock.patch.object(jwt.api_jwt, "datetime", _FrozenDatetime):
            jwt.decode(
                token,
                jwt.PyJWK(jwk).key,
                algorithms=[_ALG_OF_KTY[jwk["kty"]]],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY,
                options={
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_iat": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "verify_sub": True,
                    "verify_jti": True,
                    "strict_aud": True,
                    "enforce_minimum_key_length": True,
                    "require": REQUIRED,
                },
            )
    # PyJWT raises its own errors for bad tokens, and on some garbage a ValueError or
    # TypeError leaks from its parsing: either way it refused the token.
    except Exception:
        return False
    return True


# --- recognising the stricter-by-design cases from a token's bytes ----------------------


def _canonical_b64url(segment: str) -> bool:
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        return False
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return b64url(raw) == segment


def _lenient_b64(segment: str) -> bytes | None:
    # What PyJWT does: pad, then the non-validating decoder.
    try:
        return base64.urlsafe_b64decode(segment.encode() + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None


def _json_reasons(raw: bytes, reasons: set[str]) -> object:
    """Parse like PyJWT (json.loads on bytes), noting what attest's parser refuses."""
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):
            reasons.add("json_encoding")
    except UnicodeDecodeError:
        reasons.add("json_encoding")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({name for name, _ in items}) != len(items):
            reasons.add("duplicate_members")
        return dict(items)

    def constant(name: str) -> float:
        reasons.add("json_constants")
        return float(name.replace("Infinity", "inf"))

    try:
        return json.loads(raw, object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, RecursionError):
        return None


def _date_ok(value: object) -> bool:
    return type(value) is int and 0 < value < 2**40


def _nonempty(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _claim_reasons(claims: dict[str, Any], reasons: set[str]) -> None:
    dates = [claims.get(n) for n in ("iat", "nbf", "exp")]
    if any(n in claims and not _date_ok(claims[n]) for n in ("iat", "nbf", "exp")):
        reasons.add("numeric_date")
    elif all(_date_ok(d) for d in dates):
        iat, _, exp = dates
        if exp <= iat or exp - iat > HARD_MAX_TOKEN_LIFETIME:  # type: ignore[operator]
            reasons.add("lifetime")
    if claims.get("sub") == "" or claims.get("jti") == "":
        reasons.add("empty_sub_or_jti")
    if "eligibility" in claims:
        elig = claims["eligibility"]
        if not (
            type(elig) is dict
            and _nonempty(elig.get("policy"))
            and type(elig.get("policy_version")) is int
            and elig["policy_version"] >= 0
            and _nonempty(elig.get("policy_digest"))
            and type(elig.get("assurance")) is str
            and elig["assurance"] in ASSURANCE_LEVELS
        ):
            reasons.add("eligibility")
    if "status" in claims:
        status = claims["status"]
        ref = status.get("status_list") if isinstance(status, dict) else None
        idx = ref.get("idx") if isinstance(ref, dict) else None
        if not (type(idx) is int and idx >= 0 and _nonempty(ref.get("uri"))):  # type: ignore[union-attr]
            reasons.add("status")
    if "cnf" in claims:
        reasons.add("cnf")


def stricter_by_design(token: str) -> set[str]:
    """Which STRICTER_BY_DESIGN cases the token is in (empty: the libraries must agree)."""
    reasons: set[str] = set()
    if len(token) > MAX_TOKEN_CHARS:
        reasons.add("size_cap")
    if not token.isascii():
        reasons.add("non_canonical_base64url")
        return reasons
    segments = token.split(".")
    if len(segments) != 3:
        return reasons  # not a compact JWS to either library
    if not all(_canonical_b64url(s) for s in segments):
        reasons.add("non_canonical_base64url")
    raw_header, raw_payload = _lenient_b64(segments[0]), _lenient_b64(segments[1])
    header = _json_reasons(raw_header, reasons) if raw_header is not None else None
    if isinstance(header, dict) and set(header) - {"alg", "typ", "kid"}:
        reasons.add("header_members")
    claims = _json_reasons(raw_payload, reasons) if raw_payload is not None else None
    if isinstance(claims, dict):
        _claim_reasons(claims, reasons)
    assert reasons <= STRICTER_BY_DESIGN
    return reasons


def check_agreement(verifier: Verifier, token: str, jwks: dict[str, Any]) -> tuple[bool, bool]:
    ours, theirs = attest_accepts(verifier, token), pyjwt_accepts(token, jwks)
    reasons = stricter_by_design(token)
    if reasons:
        # attest is stricter here by design: it must refuse; PyJWT may accept.
        assert not ours, (reasons, token)
    else:
        assert ours == theirs, ("attest" if ours else "PyJWT", "alone accepts", token)
    return ours, theirs


def _verifier(jwks: dict[str, Any], issuer: str = ISSUER, audience: str = AUDIENCE) -> Verifier:
    return Verifier(
        issuer=issuer,
        audience=audience,
        keys=jwks,
        leeway=LEEWAY,
        cache_size=0,
        now=lambda: float(NOW),
    )


# --- the conformance vectors ---------------------------------------------------------------


def test_every_conformance_vector_agrees_with_pyjwt() -> None:
    document = load_vectors()
    assert (document["now"], document["leeway"]) == (NOW, LEEWAY)
    # One plain verifier for all (no status hook, policies, minimum assurance or DPoP proof):
    # those verifier options have no PyJWT counterpart and are tested in test_vectors.py.
    verifier = _verifier(document["jwks"], document["issuer"], document["audience"])
    disagreements = {}
    both_accept = 0
    for vector in document["vectors"]:
        ours, theirs = check_agreement(verifier, vector["token"], document["jwks"])
        both_accept += ours and theirs
        if ours != theirs:
            disagreements[vector["name"]] = sorted(stricter_by_design(vector["token"]))
    assert both_accept >= 8
    # The vectors exercise these stricter-by-design rules against PyJWT (attest refuses,
    # PyJWT accepts); bound tokens are refused here since no DPoP proof is passed.
    assert disagreements["duplicate-member"] == ["duplicate_members"]
    assert disagreements["too-large"] == ["size_cap"]
    assert disagreements["header-jwk"] == disagreements["header-cty"] == ["header_members"]
    assert disagreements["exp-float"] == disagreements["exp-huge"] == ["numeric_date"]
    assert disagreements["exp-before-iat"] == disagreements["lifetime-over-cap"] == ["lifetime"]
    assert disagreements["sub-empty"] == ["empty_sub_or_jti"]
    assert disagreements["assurance-unknown"] == ["eligibility"]
    assert disagreements["status-bad-idx"] == ["status"]
    assert disagreements["bound-no-proof"] == disagreements["dpop-es256"] == ["cnf"]


# --- a Hypothesis corpus of valid and mutated tokens -------------------------------------

_DATES = st.one_of(
    st.sampled_from([-3601, -600, -6, -5, -4, 0, 4, 5, 6, 600, 3600, 3601]).map(lambda d: NOW + d),
    st.sampled_from([0, -1, 2**40, 10**20, True, None, "1700000600", 1_700_000_600.0]),
    st.floats(allow_nan=False, allow_infinity=False, min_value=NOW - 10, max_value=NOW + 700),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
_GOOD_ELIGIBILITY = good_claims()["eligibility"]
_CLAIM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "iss": st.sampled_from([ISSUER, ISSUER + "/", ISSUER.upper(), "", None, 1, [ISSUER]]),
    "aud": st.sampled_from([AUDIENCE, [AUDIENCE], [AUDIENCE, "x"], "model:other", "", None]),
    "sub": st.sampled_from(["pairwise-2", "", None, 1, ["x"]]),
    "jti": st.sampled_from(["jti-2", "", None, 7, {}]),
    "iat": _DATES,
    "nbf": _DATES,
    "exp": _DATES,
    "eligibility": st.one_of(
        st.sampled_from([None, "IAL2", [], {}]),
        st.tuples(
            st.sampled_from(sorted(_GOOD_ELIGIBILITY)),
            st.sampled_from([None, "", "IAL3", "ial2", -1, 0, 4, True, 1.0, "x" * 64]),
        ).map(lambda kv: {**_GOOD_ELIGIBILITY, kv[0]: kv[1]}),
    ),
    "status": st.sampled_from(
        [
            {"status_list": {"idx": 3, "uri": "https://attest.example/v1/status-lists/1"}},
            {"status_list": {"idx": -1, "uri": "https://attest.example/v1/status-lists/1"}},
            {"status_list": {"idx": True, "uri": "https://attest.example/v1/status-lists/1"}},
            {"status_list": {"idx": 3, "uri": ""}},
            {"status_list": "x"},
            [],
        ]
    ),
    "cnf": st.sampled_from([{"jkt": "abc"}, {"jkt": ""}, "x"]),
    "extra": _JSON,
}
_HEADER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "alg": st.sampled_from([*ALGORITHMS, "none", "HS256", "RS256", "es256", None, 1]),
    "typ": st.sampled_from([TOKEN_TYPE, "JWT", "ELIG+JWT", "application/elig+jwt", "", None]),
    "kid": st.sampled_from([ES.kid, ED.kid, "unknown", "", None, 1, [ES.kid]]),
    "cty": st.sampled_from(["JWT", "elig+jwt"]),
    "zip": st.just("DEF"),
    "b64": st.booleans(),
    "crit": st.sampled_from([["exp"], ["b64"], [], "b64"]),
    "jwk": st.just({k: v for k, v in ES.jwk.items() if k != "kid"}),
    "jku": st.just("https://attest.example.evil/jwks.json"),
    "x5c": st.just(["MIIB"]),
    "x-extra": _JSON,
}
_TEXT_EDITS = ["duplicate", "whitespace", "bom", "nan", "array"]
_SEGMENT_EDITS = ["pad", "trailing_bits", "std_alphabet", "stray_char"]
_SIGNATURE_EDITS = ["flip", "truncate", "extend", "zero", "pad", "trailing_bits", "other_key"]


def _edit_text(text: str, edit: str) -> str:
    if edit == "duplicate":  # the first member again, same value: only the duplicate is wrong
        members = list(json.loads(text).items())
        if not members:
            return text
        name, value = members[0]
        return f"{text[:-1]}, {json.dumps(name)}: {json.dumps(value)}}}"
    if edit == "whitespace":
        return f" \n{text}\t"
    if edit == "bom":
        return "\ufeff" + text
    if edit == "nan":
        return text[:-1] + ', "n": NaN}' if text.endswith("}") else text
    return f"[{text}]"  # array


def _edit_segment(segment: str, edit: str) -> str:
    if edit == "pad":
        return segment + "=" * (-len(segment) % 4 or 4)
    if edit == "trailing_bits":
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        if len(segment) % 4 in (2, 3):
            return segment[:-1] + alphabet[alphabet.index(segment[-1]) ^ 1]
        return segment
    if edit == "std_alphabet":
        return segment.replace("-", "+").replace("_", "/")
    return segment[:1] + "!" + segment[1:]  # stray_char


def _edit_signature(sig: bytes, edit: str, signing_input: bytes, key: SigningKey) -> str:
    if edit == "flip":
        return b64url(bytes([sig[0] ^ 1]) + sig[1:])
    if edit == "truncate":
        return b64url(sig[:-1])
    if edit == "extend":
        return b64url(sig + b"\x00")
    if edit == "zero":
        return b64url(bytes(len(sig)))
    if edit == "other_key":  # a valid signature by another key of the same type, same kid
        other = new_es256() if key.alg == "ES256" else new_ed25519()
        return b64url(other.sign(signing_input))
    return _edit_segment(b64url(sig), edit)


@st.composite
def tokens(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from([ES, ED]))
    header: dict[str, Any] = {"alg": key.alg, "typ": TOKEN_TYPE, "kid": key.kid}
    claims = good_claims(jti=f"jti-{draw(st.integers(0, 99))}")
    # Mostly few mutations, so that valid tokens and single-rule failures are common.
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        name = draw(st.sampled_from(sorted(_HEADER_VALUES)))
        if name in header and draw(st.booleans()):
            del header[name]
        else:
            header[name] = draw(_HEADER_VALUES[name])
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        name = draw(st.sampled_from(sorted(_CLAIM_VALUES)))
        if name in claims and draw(st.booleans()):
            del claims[name]
        else:
            claims[name] = draw(_CLAIM_VALUES[name])
    if draw(st.integers(0, 40)) == 0:
        claims["padding"] = "x" * MAX_TOKEN_CHARS  # over the size cap once encoded
    texts = [json.dumps(header), json.dumps(claims)]
    if draw(st.integers(0, 3)) == 0:
        which = draw(st.sampled_from([0, 1]))
        texts[which] = _edit_text(texts[which], draw(st.sampled_from(_TEXT_EDITS)))
    segments = [b64url(text.encode("utf-8")) for text in texts]
    if draw(st.integers(0, 5)) == 0:  # before signing: the signature covers the edited text
        which = draw(st.sampled_from([0, 1]))
        segments[which] = _edit_segment(segments[which], draw(st.sampled_from(_SEGMENT_EDITS)))
    signing_input = ".".join(segments).encode("ascii")
    signature = key.sign(signing_input)
    if draw(st.integers(0, 4)) == 0:
        sig = _edit_signature(
            signature, draw(st.sampled_from(_SIGNATURE_EDITS)), signing_input, key
        )
    else:
        sig = b64url(signature)
    return f"{signing_input.decode()}.{sig}"


_VERIFIER = _verifier(JWKS)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=tokens())
def test_a_corpus_of_mutated_tokens_agrees_with_pyjwt(token: str) -> None:
    check_agreement(_VERIFIER, token, JWKS)


def test_the_unmutated_tokens_are_accepted_by_both() -> None:
    for key in (ES, ED):
        header = b64url(json.dumps({"alg": key.alg, "typ": TOKEN_TYPE, "kid": key.kid}).encode())
        payload = b64url(json.dumps(good_claims()).encode())
        signing_input = f"{header}.{payload}"
        token = f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"
        assert check_agreement(_VERIFIER, token, JWKS) == (True, True)


def test_each_stricter_rule_is_one_pyjwt_really_lacks() -> None:
    """For each listed case, a token PyJWT accepts and attest refuses (the list is not padding)."""
    key = ES

    def token(header_text: str, payload_text: str, sig_edit: str | None = None) -> str:
        signing_input = f"{b64url(header_text.encode())}.{b64url(payload_text.encode())}"
        sig = key.sign(signing_input.encode())
        encoded = b64url(sig) if sig_edit is None else _edit_segment(b64url(sig), sig_edit)
        return f"{signing_input}.{encoded}"

    head = json.dumps({"alg": "ES256", "typ": TOKEN_TYPE, "kid": key.kid})
    body = good_claims()

    def with_claims(**changes: Any) -> str:
        return token(head, json.dumps({**body, **changes}))

    examples = {
        "size_cap": with_claims(padding="x" * MAX_TOKEN_CHARS),
        "non_canonical_base64url": token(head, json.dumps(body), "pad"),
        "header_members": token(json.dumps({**json.loads(head), "cty": "JWT"}), json.dumps(body)),
        "duplicate_members": token(head, json.dumps(body)[:-1] + ', "sub": "other"}'),
        "json_constants": token(head, json.dumps(body)[:-1] + ', "n": NaN}'),
        "json_encoding": token(head, "\ufeff" + json.dumps(body)),
        "numeric_date": with_claims(exp=NOW + 600.5),
        "lifetime": with_claims(exp=NOW + HARD_MAX_TOKEN_LIFETIME + 1),
        "empty_sub_or_jti": with_claims(jti=""),
        "eligibility": with_claims(eligibility={**_GOOD_ELIGIBILITY, "assurance": "IAL9"}),
        "status": with_claims(status={"status_list": {"idx": -1, "uri": "u"}}),
        "cnf": with_claims(cnf={"jkt": "abc"}),
    }
    assert set(examples) == STRICTER_BY_DESIGN
    for name, example in examples.items():
        assert name in stricter_by_design(example), name
        assert (attest_accepts(_VERIFIER, example), pyjwt_accepts(example, JWKS)) == (
            False,
            True,
        ), name
