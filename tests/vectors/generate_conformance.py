"""Write attest.verify's conformance vectors: tokens and DPoP proofs with expected outcomes.

    PYTHONPATH=tests .venv/bin/python tests/vectors/generate_conformance.py [OUTPUT]

(``PYTHONPATH=tests`` makes the test support package, attest_testing, importable, as
pytest's ``pythonpath`` setting does for the suite.)

OUTPUT defaults to attest/verify/vectors/conformance.json, which ``attest verify --selftest``
runs and tests/verify/test_vectors.py checks (valid vectors cross-checked with joserfc).
Keys are generated afresh on each run; the public keys are written into the file, the
private ones are discarded. Every vector names the rule it exercises.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import zlib
from pathlib import Path
from typing import Any

from attest_testing.verify import (
    AUDIENCE,
    DROP,
    ISSUER,
    NOW,
    Minter,
    b64url,
    good_claims,
    make_proof,
    new_ed25519,
    new_es256,
    public_jwk,
    thumbprint,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "attest" / "verify" / "vectors" / "conformance.json"
URL = "https://gateway.example/v1/models/fable-5/generate"
STATUS_URI = "https://attest.example/v1/status-lists/1"


STATUS_URI_2BIT = "https://attest.example/v1/status-lists/2"


def _status_list() -> dict[str, Any]:
    # one bit per token: index 3 revoked (Token Status List 4.1, LSB first); and a list of
    # two bits per token whose index 1 is SUSPENDED (2) and index 2 INVALID (1)
    return {
        STATUS_URI: {"bits": 1, "lst": b64url(zlib.compress(bytes([0b00001000])))},
        STATUS_URI_2BIT: {"bits": 2, "lst": b64url(zlib.compress(bytes([0b00011000])))},
    }


def build() -> dict[str, Any]:
    es, ed, other = new_es256(), new_ed25519(), new_es256()
    mint = Minter(es, ed)
    holder, ed_holder, thief = new_es256(), new_ed25519(), new_es256()
    vectors: list[dict[str, Any]] = []

    def add(name: str, rule: str, token: str, expect: str, **extra: Any) -> None:
        vectors.append({"name": name, "rule": rule, "token": token, "expect": expect, **extra})

    def valid(name: str, rule: str, claims: dict[str, Any], **kwargs: Any) -> None:
        add(name, rule, mint(claims, **kwargs), "valid", claims=claims)

    # --- accepted ------------------------------------------------------------------------
    valid("es256", "ES256 token (RFC 7518 3.4)", good_claims())
    valid("eddsa", "EdDSA Ed25519 token (RFC 8037)", good_claims(), key=ed)
    valid(
        "exp-edge",
        "exp one second past now - leeway",
        good_claims(exp=NOW - 4, iat=NOW - 600, nbf=NOW - 600),
    )
    valid("nbf-edge", "nbf exactly now + leeway", good_claims(nbf=NOW + 5))
    valid("lifetime-cap", "exp - iat exactly 3600 s", good_claims(exp=NOW + 3600))
    valid(
        "status-unchecked",
        "a status reference without a hook is shape-checked only",
        good_claims(status={"status_list": {"idx": 0, "uri": STATUS_URI}}),
    )
    for name, key in (("dpop-es256", holder), ("dpop-eddsa", ed_holder)):
        claims = good_claims(cnf={"jkt": thumbprint(public_jwk(key))})
        token = mint(claims)
        add(
            name,
            "bound token with a valid DPoP proof (RFC 9449 4.3)",
            token,
            "valid",
            claims=claims,
            dpop=make_proof(key, token, url=URL),
            method="POST",
            url=URL,
        )

    # --- structure and size (RFC 7515 7.1, DESIGN "Verifier") ----------------------------
    good = mint()
    head, payload, sig = good.split(".")
    add("two-segments", "compact JWS has three segments", f"{head}.{payload}", "malformed")
    add("padded", "base64url without padding", f"{head}.{payload}.{sig}=", "malformed")
    add(
        "non-canonical-b64",
        "no stray trailing bits",
        f"{head}.{payload}.{sig[:-1]}B" if sig[-1] != "B" else f"{head}.{payload}.{sig[:-1]}C",
        "malformed",
    )
    add("non-ascii", "ASCII only", f"{head}.{payload}é.{sig}", "malformed")
    add("header-not-json", "header is UTF-8 JSON", mint(header=b"not json"), "malformed")
    add("header-array", "header is a JSON object", mint(header=b"[]"), "malformed")
    add(
        "duplicate-member",
        "no duplicate JSON members (RFC 7515 5.2)",
        mint(json.dumps(good_claims()).encode()[:-1] + b', "aud": "model:fable-5"}'),
        "malformed",
    )
    add("payload-not-object", "payload is a JSON object", mint(b'"claims"'), "malformed")
    add("kid-not-string", "kid is a string", mint(kid=5), "malformed")
    add("too-large", "size capped before decoding", mint(good_claims(pad="x" * 9000)), "too_large")

    # --- header (RFC 8725) -------------------------------------------------------------
    add("typ-jwt", "typ is elig+jwt (RFC 8725 3.11)", mint(typ="JWT"), "wrong_type")
    add("typ-missing", "typ is required", mint(typ=DROP), "wrong_type")
    unsigned = mint(alg="none", signature=b"")
    add("alg-none", "alg none, empty signature (RFC 8725 2.1)", unsigned, "malformed")
    add("alg-none-signed", "alg none with a signature", mint(alg="none"), "unsupported_algorithm")

    def hs256_with_public_key(signing_input: bytes) -> bytes:
        secret = json.dumps(es.jwk).encode()
        return hmac.new(secret, signing_input, hashlib.sha256).digest()

    add(
        "alg-confusion-hs256",
        "HMAC with the public key as secret (CVE-2022-29217 class)",
        mint(alg="HS256", signature=hs256_with_public_key),
        "unsupported_algorithm",
    )
    add("alg-rs256", "RS256 not accepted", mint(alg="RS256"), "unsupported_algorithm")
    add(
        "alg-key-mismatch",
        "the key decides the algorithm (RFC 8725 3.1)",
        mint(alg="EdDSA", key=es),
        "unsupported_algorithm",
    )
    add("kid-missing", "kid selects the key", mint(kid=DROP), "unknown_key")
    add("kid-unknown", "no key with this kid", mint(kid="not-a-key"), "unknown_key")
    for member, value in (
        ("jwk", public_jwk(other)),
        ("jku", "https://evil.example/jwks"),
        ("x5c", ["MIIB"]),
        ("crit", ["exp"]),
    ):
        add(
            f"header-{member}",
            f"{member} header refused (RFC 8725 3.10)",
            mint(**{member: value}),
            "forbidden_header",
        )
    # DESIGN.md "Verifier": the header holds exactly alg, typ and kid (what attest issues).
    for member, value in (
        ("cty", "JWT"),
        ("zip", "DEF"),
        ("b64", False),
        ("x-extra", 1),
    ):
        add(
            f"header-{member}",
            f"{member} header refused (only alg, typ and kid)",
            mint(**{member: value}),
            "forbidden_header",
        )

    # --- signature (RFC 7515 5.2 step 8) ---------------------------------------------------
    flipped = bytearray(base64.urlsafe_b64decode(sig + "=="))
    flipped[10] ^= 1
    add(
        "signature-flipped",
        "one bit changed",
        f"{head}.{payload}.{b64url(bytes(flipped))}",
        "bad_signature",
    )
    add("signature-short", "64-byte signature", mint(signature=b"\x01" * 63), "bad_signature")
    add(
        "signature-zero",
        "r = s = 0 (CVE-2022-21449)",
        mint(signature=b"\x00" * 64),
        "bad_signature",
    )
    add(
        "signature-other-key",
        "signed by a key that is not the kid's",
        mint(key=other, kid=es.kid),
        "bad_signature",
    )
    add(
        "payload-swapped",
        "payload of another token",
        f"{head}.{mint(good_claims(sub='other')).split('.')[1]}.{sig}",
        "bad_signature",
    )

    # --- claims (RFC 7519 4.1, DESIGN token v1) --------------------------------------------
    def claim_case(name: str, rule: str, expect: str, **overrides: Any) -> None:
        claims = good_claims(**overrides)
        claims = {k: v for k, v in claims.items() if v is not DROP}
        add(name, rule, mint(claims), expect)

    claim_case(
        "expired", "exp <= now - leeway", "expired", exp=NOW - 5, iat=NOW - 600, nbf=NOW - 600
    )
    claim_case("not-yet-valid", "nbf > now + leeway", "not_yet_valid", nbf=NOW + 6)
    claim_case("issued-in-future", "iat > now + leeway", "issued_in_future", iat=NOW + 6, nbf=NOW)
    claim_case("issuer-prefix", "iss exact, not a prefix", "wrong_issuer", iss=ISSUER + ".evil")
    claim_case("issuer-slash", "iss exact, no normalisation", "wrong_issuer", iss=ISSUER + "/")
    claim_case("audience-other", "aud exact", "wrong_audience", aud="model:other")
    claim_case("audience-array", "aud is one string", "invalid_claim", aud=[AUDIENCE])
    claim_case("jti-missing", "required claims", "missing_claim", jti=DROP)
    claim_case("eligibility-missing", "required claims", "missing_claim", eligibility=DROP)
    claim_case("exp-float", "NumericDate as a JSON integer", "invalid_claim", exp=NOW + 600.5)
    claim_case("exp-bool", "true is not a date", "invalid_claim", exp=True)
    claim_case("exp-huge", "dates within bounds", "invalid_claim", exp=2**40)
    claim_case(
        "exp-before-iat", "exp after iat", "invalid_claim", exp=NOW - 1, iat=NOW, nbf=NOW - 700
    )
    claim_case("sub-empty", "non-empty sub", "invalid_claim", sub="")
    claim_case("iss-number", "iss is a string", "invalid_claim", iss=5)
    claim_case(
        "assurance-unknown",
        "assurance level",
        "invalid_claim",
        eligibility={**good_claims()["eligibility"], "assurance": "IAL9"},
    )
    claim_case("cnf-not-object", "cnf is an object", "invalid_claim", cnf="thumb")
    claim_case(
        "status-bad-idx",
        "status idx >= 0",
        "invalid_claim",
        status={"status_list": {"idx": -1, "uri": STATUS_URI}},
    )
    claim_case("lifetime-over-cap", "exp - iat <= 3600", "lifetime_too_long", exp=NOW + 3601)

    # --- verifier policy -----------------------------------------------------------------
    add(
        "policy-not-allowed",
        "policies=",
        mint(),
        "policy_not_allowed",
        options={"policies": ["another-policy"]},
    )
    add(
        "assurance-below",
        "min_assurance=",
        mint(),
        "insufficient_assurance",
        options={"min_assurance": "IAL3"},
    )
    for idx, expect in ((2, "valid"), (3, "revoked"), (99, "status_unavailable")):
        claims = good_claims(status={"status_list": {"idx": idx, "uri": STATUS_URI}})
        extra: dict[str, Any] = {"claims": claims} if expect == "valid" else {}
        add(
            f"status-{idx}",
            "status-list hook",
            mint(claims),
            expect,
            options={"status_lists": _status_list()},
            **extra,
        )

    for idx, expect in ((0, "valid"), (1, "suspended"), (2, "revoked")):
        claims = good_claims(status={"status_list": {"idx": idx, "uri": STATUS_URI_2BIT}})
        extra = {"claims": claims} if expect == "valid" else {}
        add(
            f"status-2bit-{idx}",
            "status-list hook, 2-bit list (0 VALID, 1 INVALID, 2 SUSPENDED)",
            mint(claims),
            expect,
            options={"status_lists": _status_list()},
            **extra,
        )

    # --- holder binding (RFC 9449) ---------------------------------------------------------
    bound_claims = good_claims(cnf={"jkt": thumbprint(public_jwk(holder))})
    bound = mint(bound_claims)

    def proof_case(name: str, rule: str, expect: str, proof: str, **extra: Any) -> None:
        add(name, rule, bound, expect, dpop=proof, method="POST", url=URL, **extra)

    add("bound-no-proof", "a bound token needs a proof", bound, "binding_required")
    proof_case(
        "dpop-other-key",
        "proof key = cnf.jkt",
        "dpop_key_mismatch",
        make_proof(thief, bound, url=URL),
    )
    proof_case(
        "dpop-forged",
        "proof signature",
        "invalid_dpop_proof",
        make_proof(holder, bound, url=URL, signer=thief),
    )
    proof_case(
        "dpop-typ",
        "typ dpop+jwt",
        "invalid_dpop_proof",
        make_proof(holder, bound, url=URL, header={"typ": "JWT"}),
    )
    proof_case(
        "dpop-htm",
        "htm matches",
        "invalid_dpop_proof",
        make_proof(holder, bound, url=URL, method="GET"),
    )
    proof_case(
        "dpop-htu",
        "htu matches",
        "invalid_dpop_proof",
        make_proof(holder, bound, url="https://gateway.example/other"),
    )
    proof_case(
        "dpop-old",
        "iat window",
        "invalid_dpop_proof",
        make_proof(holder, bound, url=URL, iat=NOW - 120),
    )
    proof_case(
        "dpop-ath",
        "ath = hash of the token",
        "invalid_dpop_proof",
        make_proof(holder, mint(), url=URL),
    )
    proof_case(
        "dpop-replay", "jti used once", "dpop_replay", make_proof(holder, bound, url=URL), repeat=2
    )
    proof_case(
        "dpop-query-ignored",
        "htu without query and fragment",
        "valid",
        make_proof(holder, bound, url=URL + "?a=1#f"),
        claims=bound_claims,
    )

    return {
        "description": "attest.verify conformance vectors (tests/vectors/generate_conformance.py)",
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "now": NOW,
        "leeway": 5,
        "jwks": {"keys": [es.jwk, ed.jwk]},
        "vectors": vectors,
    }


def main(argv: list[str]) -> None:
    output = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main(sys.argv)
