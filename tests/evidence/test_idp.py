"""idp_assertion checks as pure functions: signature, claims, verified_claims, provider file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from attest_testing.idp import ISSUER, TestIdp

from attest.evidence.idp import (
    ProviderConfigError,
    TrustedProvider,
    check_assertion,
    header_reasons,
    load_providers,
    read_header,
)
from attest.verify import StaticJWKS

AUDIENCE = "https://attest.example"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def idp() -> TestIdp:
    return TestIdp()


def provider_for(idp: TestIdp, **changes: Any) -> TrustedProvider:
    values: dict[str, Any] = {
        "tenant": "acme",
        "issuer": idp.issuer,
        "keys": StaticJWKS(idp.jwks),
        "trust_frameworks": {"de_aml": "IAL2", "eidas/high": "IAL3", "eidas": "IAL1"},
        "max_age": timedelta(days=365),
    }
    values.update(changes)
    return TrustedProvider(**values)


def check(token: str, provider: TrustedProvider, now: datetime = NOW) -> list[str]:
    parsed = read_header(token)
    assert parsed is not None
    header, _ = parsed
    problem = header_reasons(header, provider.typ)
    if problem is not None:
        return [problem.code]
    key = provider.keys.get(header["kid"], now.timestamp())
    result = check_assertion(header, token, provider, key, audience=AUDIENCE, now=now)
    return [reason.code for reason in result.reasons]


def test_a_valid_assertion(idp: TestIdp) -> None:
    token = idp.sign(idp.claims(audience=AUDIENCE, now=NOW, nationalities=["DEU", "FRA", "D"]))
    header, _ = read_header(token) or ({}, {})
    provider = provider_for(idp)
    key = provider.keys.get(header["kid"], NOW.timestamp())
    result = check_assertion(header, token, provider, key, audience=AUDIENCE, now=NOW)
    assert result.valid, result.reasons
    assert result.assurance == "IAL2"
    assert result.citizenship == ["DE", "FR"]
    assert result.issuer == ISSUER
    assert result.verified_at == NOW - timedelta(days=10)
    assert result.expires_at == NOW + timedelta(seconds=300)


def test_framework_with_assurance_level_maps_first(idp: TestIdp) -> None:
    claims = idp.claims(audience=AUDIENCE, now=NOW, framework="eidas")
    claims["verified_claims"]["verification"]["assurance_level"] = "high"
    token = idp.sign(claims)
    header, _ = read_header(token) or ({}, {})
    provider = provider_for(idp)
    key = provider.keys.get(idp.kid, NOW.timestamp())
    assert (
        check_assertion(header, token, provider, key, audience=AUDIENCE, now=NOW).assurance
        == "IAL3"
    )
    claims["verified_claims"]["verification"]["assurance_level"] = "low"
    token = idp.sign(claims)
    assert (
        check_assertion(header, token, provider, key, audience=AUDIENCE, now=NOW).assurance
        == "IAL1"
    )


def test_untrusted_key(idp: TestIdp) -> None:
    stranger = TestIdp(kid=idp.kid)  # same kid, different key
    assert check(stranger.sign(stranger.claims(audience=AUDIENCE, now=NOW)), provider_for(idp)) == [
        "untrusted_key"
    ]
    unknown = TestIdp(kid="other")
    assert check(unknown.sign(unknown.claims(audience=AUDIENCE, now=NOW)), provider_for(idp)) == [
        "untrusted_key"
    ]


def test_unmapped_framework(idp: TestIdp) -> None:
    token = idp.sign(idp.claims(audience=AUDIENCE, now=NOW, framework="uk_tfida"))
    assert check(token, provider_for(idp)) == ["trust_framework_unmapped"]


@pytest.mark.parametrize(
    ("offset", "codes"),
    [
        (timedelta(seconds=0), []),
        (timedelta(seconds=300 + 59), []),  # within the 60 s leeway
        (timedelta(seconds=300 + 60), ["expired"]),
        (timedelta(seconds=-61), ["issued_in_future"]),
    ],
)
def test_expiry_uses_the_injected_clock(idp: TestIdp, offset: timedelta, codes: list[str]) -> None:
    token = idp.sign(idp.claims(audience=AUDIENCE, now=NOW))
    assert check(token, provider_for(idp), NOW + offset) == codes


@pytest.mark.parametrize(
    "audience", ["https://attest.example/", "https://other.example", ["https://attest.example"]]
)
def test_wrong_audience(idp: TestIdp, audience: Any) -> None:
    assert check(idp.sign(idp.claims(audience=audience, now=NOW)), provider_for(idp)) == [
        "wrong_audience"
    ]


def test_verification_age_and_time(idp: TestIdp) -> None:
    old = idp.claims(audience=AUDIENCE, now=NOW, verified=NOW - timedelta(days=366))
    assert check(idp.sign(old), provider_for(idp)) == ["verification_too_old"]
    future = idp.claims(audience=AUDIENCE, now=NOW, verified=NOW + timedelta(hours=1))
    assert check(idp.sign(future), provider_for(idp)) == ["invalid_claim"]


@pytest.mark.parametrize(
    ("change", "codes"),
    [
        ({"verified_claims": None}, ["missing_claim"]),
        ({"jti": ""}, ["missing_claim"]),
        ({"exp": "soon"}, ["invalid_claim"]),
        ({"iss": "https://idp.example/"}, ["wrong_issuer"]),
    ],
)
def test_claims(idp: TestIdp, change: dict[str, Any], codes: list[str]) -> None:
    claims = {**idp.claims(audience=AUDIENCE, now=NOW), **change}
    assert check(idp.sign(claims), provider_for(idp)) == codes


@pytest.mark.parametrize("nationalities", [["UTO"], ["XXA"], ["de"], [5], []])
def test_nationalities_must_name_a_state(idp: TestIdp, nationalities: list[Any]) -> None:
    claims = idp.claims(audience=AUDIENCE, now=NOW)
    claims["verified_claims"]["claims"]["nationalities"] = nationalities
    assert check(idp.sign(claims), provider_for(idp)) == ["no_citizenship"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"typ": "elig+jwt"}, "wrong_type"),
        ({"typ": None}, "wrong_type"),
        ({"jku": "https://evil.example/jwks"}, "forbidden_header"),
        ({"crit": ["exp"]}, "forbidden_header"),
        ({"kid": None}, "untrusted_key"),
        ({"kid": 7}, "untrusted_key"),
    ],
)
def test_headers(idp: TestIdp, headers: dict[str, Any], code: str) -> None:
    header = {
        k: v
        for k, v in {"kid": idp.kid, "typ": "JWT", "alg": "ES256", **headers}.items()
        if v is not None
    }
    token = raw_token(header, idp.claims(audience=AUDIENCE, now=NOW))
    assert check(token, provider_for(idp)) == [code]


def raw_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"sig") -> str:
    """A JWS built by hand, for headers and algorithms that PyJWT refuses to produce."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join(
        [part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature)]
    )


def test_the_key_decides_the_algorithm(idp: TestIdp) -> None:
    claims = idp.claims(audience=AUDIENCE, now=NOW)
    # Algorithm confusion: HS256 "signed" with the public key as the HMAC secret.
    header = {"kid": idp.kid, "typ": "JWT", "alg": "HS256"}
    signing_input = raw_token(header, claims).rsplit(".", 1)[0].encode()
    secret = json.dumps(idp.jwks["keys"][0]).encode()
    forged = raw_token(header, claims, hmac.new(secret, signing_input, hashlib.sha256).digest())
    assert check(forged, provider_for(idp)) == ["unsupported_algorithm"]
    for alg in ("none", "EdDSA", "RS256"):
        token = raw_token({"kid": idp.kid, "typ": "JWT", "alg": alg}, claims)
        assert check(token, provider_for(idp)) == ["unsupported_algorithm"]
    # The right algorithm with a garbage signature.
    token = raw_token({"kid": idp.kid, "typ": "JWT", "alg": "ES256"}, claims, b"\0" * 64)
    assert check(token, provider_for(idp)) == ["untrusted_key"]


@pytest.mark.parametrize(
    "token", ["", "a.b", "a.b.c.d", "x" * 20_000, "e30.e30.@@", "WyJ4Il0.e30.AA"]
)
def test_not_a_jws(token: str) -> None:
    assert read_header(token) is None


def _write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_provider_file(tmp_path: Path, idp: TestIdp) -> None:
    (tmp_path / "idp.jwks").write_text(json.dumps(idp.jwks), encoding="utf-8")
    entry = {
        "tenant": "acme",
        "issuer": ISSUER,
        "jwks_file": "idp.jwks",
        "trust_frameworks": {"de_aml": "IAL2"},
        "max_age_days": 30,
    }
    providers = load_providers(_write(tmp_path, {"providers": [entry]}))
    provider = providers[("acme", ISSUER)]
    assert provider.max_age == timedelta(days=30)
    assert provider.keys.get(idp.kid, NOW.timestamp()) is not None
    assert load_providers(None) == {}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"trust_frameworks": {"x": "IAL4"}}, "trust_frameworks.x"),
        ({"max_age_days": 0}, "max_age_days"),
        ({"jwks_url": "http://idp.example/jwks"}, "exactly one of"),
        ({"jwks_file": None, "jwks_url": "http://idp.example/jwks"}, "https://"),
        ({"issuer": ""}, "issuer"),
        ({"colour": "red"}, "unknown member"),
    ],
)
def test_bad_provider_files_name_the_path(
    tmp_path: Path, change: dict[str, Any], fragment: str
) -> None:
    entry: dict[str, Any] = {
        "tenant": "acme",
        "issuer": ISSUER,
        "jwks_file": "idp.jwks",
        "trust_frameworks": {"de_aml": "IAL2"},
        "max_age_days": 30,
        **change,
    }
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(ProviderConfigError, match=r"\$\.providers\[0\]") as caught:
        load_providers(_write(tmp_path, {"providers": [entry]}))
    assert fragment in str(caught.value)


def test_unreadable_provider_file(tmp_path: Path) -> None:
    with pytest.raises(ProviderConfigError, match="cannot read"):
        load_providers(str(tmp_path / "missing.json"))
    with pytest.raises(ProviderConfigError, match="providers"):
        load_providers(_write(tmp_path, {"idps": []}))
