"""``idp_assertion`` evidence: a signed JWT from a trusted identity provider carrying
OpenID Connect for Identity Assurance 1.0 ``verified_claims``. Pure apart from the key
lookup, which the caller runs (it may fetch a remote key set).

Checked with the strictness of our own tokens (DESIGN.md, CONVENTIONS.md 2-3), in order:

1. Shape (RFC 7515 7.1 compact serialisation); a string that is no JWS is malformed input.
2. Header: no ``crit``/``jwk``/``jku``/``x5u``/``x5c``/``x5t``/``x5t#S256`` (keys come from
   our configuration, never from the token); ``typ`` as configured for the provider
   (RFC 7515 4.1.9, compared case-insensitively); a string ``kid``.
3. Provider: the (unverified) ``iss`` names a provider trusted by the subject's tenant.
4. Key: ``kid`` names a key of that provider's key set; ``alg`` must be that key's algorithm
   (the key decides, never the token); the signature must verify.
5. Claims (RFC 7519 4.1): ``iss`` equals the provider (exact), ``aud`` is exactly our issuer
   (a single string), ``exp``/``iat`` integer NumericDates with ``exp > now - leeway`` and
   ``iat <= now + leeway`` (``nbf``, if present, ``<= now + leeway``),
   ``jti`` and ``sub`` non-empty strings. Time is the injected ``now``.
6. ``verified_claims`` (OIDC4IDA 5): ``verification.trust_framework`` mapped by the
   provider's table to IAL1..IAL3 (``framework/assurance_level`` first, then
   ``framework``); ``verification.time`` not in the future and within the provider's
   maximum age; ``claims.nationalities`` (ICAO/ISO codes) give ``citizenship``.

Replay (the same ``iss`` and ``jti`` twice) needs the database: the caller records each
accepted ``jti`` and rejects a second use.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import jwt

from attest.evidence.attributes import ASSURANCE_LEVELS, ISO_3166_ALPHA2
from attest.evidence.countries import lookup
from attest.verify import JWKSFile, KeySource, RemoteJWKS

__all__ = [
    "MAX_ASSERTION_LENGTH",
    "AssertionResult",
    "IdpReason",
    "ProviderConfigError",
    "TrustedProvider",
    "assess_verified_claims",
    "check_assertion",
    "header_reasons",
    "load_providers",
    "read_header",
]

#: Longest assertion accepted (characters); refused before any decoding.
MAX_ASSERTION_LENGTH: Final = 16_384
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_FORBIDDEN_HEADERS: Final = ("crit", "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256")
_MAX_INT_DATE: Final = 2**40


class ProviderConfigError(ValueError):
    """The trusted-provider file is invalid; the message names the file and JSON path."""


@dataclass(frozen=True, slots=True)
class TrustedProvider:
    """An identity provider a tenant trusts."""

    tenant: str
    issuer: str
    keys: KeySource
    #: ``framework`` or ``framework/assurance_level`` -> IAL1..IAL3.
    trust_frameworks: Mapping[str, str]
    #: Oldest verification (``verified_claims.verification.time``) accepted.
    max_age: timedelta
    #: Expected ``typ`` header.
    typ: str = "JWT"
    #: Clock skew allowed on ``exp``/``iat`` (seconds).
    leeway: int = 60


@dataclass(frozen=True, slots=True)
class IdpReason:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class AssertionResult:
    """A checked assertion. Valid when ``reasons`` is empty; ``jti``/``expires_at`` are set
    once the signature and claims held (then the assertion must be recorded as used)."""

    reasons: list[IdpReason]
    issuer: str | None = None
    jti: str | None = None
    expires_at: datetime | None = None
    assurance: str | None = None
    citizenship: list[str] | None = None
    verified_at: datetime | None = None
    max_age: timedelta | None = None  # the provider's limit on the verification's age

    @property
    def valid(self) -> bool:
        return not self.reasons


def _fail(code: str, message: str, **known: Any) -> AssertionResult:
    return AssertionResult([IdpReason(code, message)], **known)


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))


def read_header(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The unverified header and payload of a compact JWS, or None if it is not one."""
    if len(token) > MAX_ASSERTION_LENGTH or _COMPACT.fullmatch(token) is None:
        return None
    head, body, _ = token.split(".")
    try:
        header, payload = _b64json(head), _b64json(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return header, payload


def _check_times(claims: Mapping[str, Any], now: datetime, leeway: int) -> IdpReason | None:
    stamp = now.timestamp()
    for name in ("exp", "iat"):
        value = claims.get(name)
        # RFC 7519 2 NumericDate; integers only, as for our own tokens.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _MAX_INT_DATE:
            return IdpReason("invalid_claim", f"{name} must be an integer NumericDate.")
    if claims["exp"] <= stamp - leeway:  # RFC 7519 4.1.4
        return IdpReason("expired", "The assertion has expired.")
    if claims["iat"] > stamp + leeway:  # RFC 7519 4.1.6
        return IdpReason("issued_in_future", "The assertion was issued in the future.")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int) or nbf > stamp + leeway):  # 4.1.5
        return IdpReason("not_yet_valid", "The assertion is not valid yet.")
    return None


def check_assertion(
    header: Mapping[str, Any],
    token: str,
    provider: TrustedProvider,
    key: Any,
    *,
    audience: str,
    now: datetime,
) -> AssertionResult:
    """Steps 4 to 6 for ``token`` whose header passed :func:`header_reasons`; ``key`` is
    the provider key set's answer for the header's ``kid`` (None: not a trusted key)."""
    if key is None:
        return _fail("untrusted_key", "The assertion is not signed by a key of the provider.")
    alg = header.get("alg")
    if alg != key.alg:
        return _fail("unsupported_algorithm", f"The key verifies {key.alg} only, not {alg!r}.")
    try:
        # Only the signature is checked here: every claim is checked below, with our clock.
        claims = jwt.decode(
            token,
            key=key.public_key,
            algorithms=[key.alg],  # the key decides (RFC 8725 3.1)
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_jti": False,
                "verify_sub": False,
            },
        )
    except jwt.InvalidSignatureError:
        return _fail("untrusted_key", "The signature does not verify with the provider's key.")
    except jwt.PyJWTError as exc:
        return _fail("malformed", f"The assertion cannot be decoded: {type(exc).__name__}.")
    if claims.get("iss") != provider.issuer:  # RFC 7519 4.1.1, exact comparison
        return _fail("wrong_issuer", "iss is not the provider.")
    if claims.get("aud") != audience:  # RFC 7519 4.1.3: exactly our issuer, one string
        return _fail("wrong_audience", "aud is not this attestation service.")
    timing = _check_times(claims, now, provider.leeway)
    if timing is not None:
        return AssertionResult([timing])
    for name in ("jti", "sub"):  # RFC 7519 4.1.7, 4.1.2
        if not isinstance(claims.get(name), str) or not claims[name]:
            return _fail("missing_claim", f"{name} must be a non-empty string.")
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    known = {"issuer": provider.issuer, "jti": claims["jti"], "expires_at": expires}
    reasons, assurance, citizenship, verified_at = assess_verified_claims(claims, provider, now)
    return AssertionResult(
        reasons,
        assurance=assurance,
        citizenship=citizenship,
        verified_at=verified_at,
        max_age=provider.max_age,
        **known,
    )


def header_reasons(header: Mapping[str, Any], typ: str) -> IdpReason | None:
    """Step 2 (RFC 7515 4.1, RFC 8725 3.10): refuse key-carrying and critical headers."""
    for name in _FORBIDDEN_HEADERS:
        if name in header:
            return IdpReason("forbidden_header", f"The header {name} is not accepted.")
    given = header.get("typ")
    if not isinstance(given, str) or given.lower() != typ.lower():
        return IdpReason("wrong_type", f"typ must be {typ}.")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        return IdpReason("untrusted_key", "The header names no key (kid).")
    return None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _nationalities(claims: Mapping[str, Any]) -> list[str] | None:
    values = claims.get("nationalities")
    if not isinstance(values, list) or not values:
        return None
    found: list[str] = []
    for value in values:
        if not isinstance(value, str):
            return None
        if value in ISO_3166_ALPHA2:
            code: str | None = value
        else:
            # OIDC4IDA 4.1: ICAO 3-letter codes (Doc 9303), so "D" is written "D<<".
            known = lookup(value.ljust(3, "<")) if len(value) <= 3 else None
            code = known.alpha2 if known is not None else None
        if code is None:
            return None
        if code not in found:
            found.append(code)
    return found


def assess_verified_claims(
    claims: Mapping[str, Any], provider: TrustedProvider, now: datetime
) -> tuple[list[IdpReason], str | None, list[str] | None, datetime | None]:
    """Step 6: (reasons, assurance, citizenship, verification time). The trust framework
    only decides the assurance (the provider's mapping); it is not kept."""
    blocks = claims.get("verified_claims")
    if isinstance(blocks, dict):
        blocks = [blocks]
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
        return [IdpReason("missing_claim", "verified_claims is missing.")], None, None, None
    reasons: list[IdpReason] = []
    # OIDC4IDA 5.1: each block pairs one verification with the claims it verified; the
    # first block that names nationalities decides.
    block = next(
        (b for b in blocks if isinstance(b.get("claims"), dict) and "nationalities" in b["claims"]),
        blocks[0],
    )
    verification = block.get("verification")
    if not isinstance(verification, dict):
        return [IdpReason("missing_claim", "verification is missing.")], None, None, None
    framework = verification.get("trust_framework")
    level = verification.get("assurance_level")
    assurance: str | None = None
    if not isinstance(framework, str) or not framework:
        reasons.append(IdpReason("missing_claim", "verification.trust_framework is missing."))
        framework = None
    else:
        key = f"{framework}/{level}" if isinstance(level, str) else None
        assurance = provider.trust_frameworks.get(key or "") or provider.trust_frameworks.get(
            framework
        )
        if assurance is None:
            reasons.append(
                IdpReason(
                    "trust_framework_unmapped",
                    f"The trust framework {framework!r} is not mapped to an assurance level.",
                )
            )
    verified_at = _parse_time(verification.get("time"))
    if verified_at is None:
        reasons.append(IdpReason("missing_claim", "verification.time is missing or invalid."))
    elif verified_at > now + timedelta(seconds=provider.leeway):
        reasons.append(IdpReason("invalid_claim", "verification.time is in the future."))
    elif now - verified_at > provider.max_age:
        reasons.append(
            IdpReason(
                "verification_too_old", "The verification is older than the provider's limit."
            )
        )
    inner = block.get("claims")
    citizenship = _nationalities(inner) if isinstance(inner, dict) else None
    if citizenship is None:
        reasons.append(
            IdpReason(
                "no_citizenship",
                "claims.nationalities is missing or names no state by an ICAO/ISO code.",
            )
        )
    return reasons, assurance, citizenship, verified_at


def _provider(item: Any, where: str, base: Path) -> TrustedProvider:
    def need(name: str, kind: type) -> Any:
        value = item.get(name)
        if not isinstance(value, kind) or (isinstance(value, str) and not value):
            raise ProviderConfigError(f"{where}.{name}: required, a {kind.__name__}")
        return value

    if not isinstance(item, dict):
        raise ProviderConfigError(f"{where}: must be an object")
    allowed = {
        "tenant", "issuer", "jwks_file", "jwks_url", "trust_frameworks", "max_age_days", "typ",
        "leeway",
    }  # fmt: skip
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ProviderConfigError(f"{where}: unknown member {unknown[0]!r}")
    frameworks = need("trust_frameworks", dict)
    for name, level in frameworks.items():
        if level not in ASSURANCE_LEVELS:
            raise ProviderConfigError(
                f"{where}.trust_frameworks.{name}: must be IAL1, IAL2 or IAL3"
            )
    days = need("max_age_days", int)
    if isinstance(days, bool) or not 1 <= days <= 3650:
        raise ProviderConfigError(f"{where}.max_age_days: between 1 and 3650 (days)")
    leeway = item.get("leeway", 60)
    if isinstance(leeway, bool) or not isinstance(leeway, int) or not 0 <= leeway <= 300:
        raise ProviderConfigError(f"{where}.leeway: between 0 and 300 (seconds)")
    if ("jwks_file" in item) == ("jwks_url" in item):
        raise ProviderConfigError(f"{where}: exactly one of jwks_file and jwks_url")
    keys: KeySource
    if "jwks_file" in item:
        keys = JWKSFile(base / need("jwks_file", str))
    else:
        url = need("jwks_url", str)
        if not url.startswith("https://"):
            raise ProviderConfigError(f"{where}.jwks_url: must be an https:// URL")
        keys = RemoteJWKS(url)
    return TrustedProvider(
        tenant=need("tenant", str),
        issuer=need("issuer", str),
        keys=keys,
        trust_frameworks=dict(frameworks),
        max_age=timedelta(days=days),
        typ=item.get("typ", "JWT") if isinstance(item.get("typ", "JWT"), str) else "JWT",
        leeway=leeway,
    )


def load_providers(path: str | None) -> dict[tuple[str, str], TrustedProvider]:
    """Trusted providers by (tenant, issuer) from a JSON file ``{"providers": [...]}``.

    Relative ``jwks_file`` paths are relative to the file. None: no provider is trusted.
    """
    if path is None:
        return {}
    source = Path(path)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProviderConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ProviderConfigError(f"{path}: not JSON: {exc}") from None
    items = document.get("providers") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ProviderConfigError(f"{path}: $.providers must be a list")
    providers: dict[tuple[str, str], TrustedProvider] = {}
    for index, item in enumerate(items):
        where = f"{path}: $.providers[{index}]"
        provider = _provider(item, where, source.parent)
        if (provider.tenant, provider.issuer) in providers:
            raise ProviderConfigError(f"{where}: the tenant already trusts this issuer")
        providers[(provider.tenant, provider.issuer)] = provider
    return providers
