"""Claim checks of an eligibility token (RFC 7519 4.1, DESIGN.md "Eligibility token (v1)").

:class:`ClaimChecks` is a base class of :class:`~attest.verify.Verifier` rather than a set of
free functions on purpose: the checks run on every uncached token, and as methods reading the
verifier's own attributes they cost exactly what they cost when they lived in the verifier
(no extra call layer, no arguments to pass; see bench/bench_verify.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _errors as e
from .contract import ASSURANCE_LEVELS, ASSURANCE_RANK
from .contract import HARD_MAX_TOKEN_LIFETIME as MAX_LIFETIME

__all__ = ["N_REQUIRED", "REQUIRED_CLAIMS", "ClaimChecks"]

# A plain dict copy of the contract's read-only mapping: one lookup per token, at dict speed.
_ASSURANCE_RANK = dict(ASSURANCE_RANK)
REQUIRED_CLAIMS = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti", "eligibility")
N_REQUIRED = len(REQUIRED_CLAIMS)
_MAX_NUMERIC_DATE = 2**40


def _nonempty_str(container: Mapping[str, Any], name: str, where: str = "") -> str:
    value = container.get(name)
    if not isinstance(value, str) or not value:
        raise e.InvalidClaim(f"{where}{name} must be a non-empty string")
    return value


class ClaimChecks:
    """The claim checks; the verifier supplies the configuration they read."""

    issuer: str
    audience: str
    leeway: float
    policies: frozenset[str] | None
    _min_rank: int

    # One flat sequence of checks, one per rule, on purpose (a call per rule costs on every
    # request): hence more statements than the linter's default.
    def _check_claims(self, claims: dict[str, Any], now: float) -> int:  # noqa: PLR0915
        """Check the claims; returns how many strings they hold at least (see the caller)."""
        # RFC 7519 4.1 / DESIGN token v1: every claim of the contract is required.
        try:
            iss, sub, aud = claims["iss"], claims["sub"], claims["aud"]
            iat, nbf, exp = claims["iat"], claims["nbf"], claims["exp"]
            jti, eligibility = claims["jti"], claims["eligibility"]
        except KeyError:
            missing = next(name for name in REQUIRED_CLAIMS if name not in claims)
            raise e.MissingClaim(f"missing claim {missing}") from None
        # RFC 7519 4.1.4-4.1.6: NumericDate, narrowed to JSON integers in (0, 2**40); type()
        # rather than isinstance() so that true/false (bool) are refused.
        if not (
            type(exp) is int
            and type(nbf) is int
            and type(iat) is int
            and 0 < exp < _MAX_NUMERIC_DATE
            and 0 < nbf < _MAX_NUMERIC_DATE
            and 0 < iat < _MAX_NUMERIC_DATE
        ):
            raise e.InvalidClaim("exp, nbf and iat must be positive JSON integers")
        # RFC 7519 4.1.1 / RFC 8725 3.8: iss compared as an exact string, no normalisation.
        if iss != self.issuer:
            if not isinstance(iss, str):
                raise e.InvalidClaim("iss must be a string")
            raise e.WrongIssuer("iss is not the configured issuer")
        # RFC 7519 4.1.3 / RFC 8725 3.9: v1 tokens carry one audience string; an array (even
        # one holding ours) is not the v1 format and is refused as invalid_claim.
        if aud != self.audience:
            if not isinstance(aud, str):
                raise e.InvalidClaim("aud must be a single string")
            raise e.WrongAudience("aud is not the configured audience")
        leeway = self.leeway
        # RFC 7519 4.1.4: reject when exp <= now - leeway.
        if exp <= now - leeway:
            raise e.ExpiredToken("token expired")
        # RFC 7519 4.1.5: reject when nbf > now + leeway.
        if nbf > now + leeway:
            raise e.NotYetValid("token not valid yet")
        # RFC 7519 4.1.6: an iat in the future means a bad clock or a forged token.
        if iat > now + leeway:
            raise e.IssuedInFuture("token issued in the future")
        # DESIGN token v1: exp after iat, lifetime at most 3600 s.
        if exp <= iat:
            raise e.InvalidClaim("exp must be after iat")
        if exp - iat > MAX_LIFETIME:
            raise e.LifetimeTooLong(f"exp - iat exceeds {MAX_LIFETIME} s")
        # RFC 7519 4.1.2 / 4.1.7: sub and jti are non-empty strings.
        if type(sub) is not str or not sub or type(jti) is not str or not jti:
            raise e.InvalidClaim("sub and jti must be non-empty strings")
        # DESIGN token v1 "eligibility": policy, policy_version, policy_digest, assurance.
        if type(eligibility) is not dict:
            raise e.InvalidClaim("eligibility must be an object")
        try:
            policy, version = eligibility["policy"], eligibility["policy_version"]
            digest, assurance = eligibility["policy_digest"], eligibility["assurance"]
        except KeyError:
            raise e.InvalidClaim("eligibility needs policy, policy_version, policy_digest "
                                 "and assurance") from None  # fmt: skip
        if type(policy) is not str or not policy:
            raise e.InvalidClaim("eligibility.policy must be a non-empty string")
        if type(version) is not int or version < 0:
            raise e.InvalidClaim("eligibility.policy_version must be an integer >= 0")
        if type(digest) is not str or not digest:
            raise e.InvalidClaim("eligibility.policy_digest must be a non-empty string")
        rank = _ASSURANCE_RANK.get(assurance) if type(assurance) is str else None
        if rank is None:
            raise e.InvalidClaim(f"eligibility.assurance must be one of {ASSURANCE_LEVELS}")
        # Optional verifier policy: allowed policy names and a minimum assurance.
        if self.policies is not None and policy not in self.policies:
            raise e.PolicyNotAllowed("policy not allowed by this verifier")
        if rank < self._min_rank:
            raise e.InsufficientAssurance("assurance below this verifier's minimum")
        # member names, plus the values checked to be strings: iss, aud, sub, jti, policy,
        # policy_digest and assurance
        strings = len(claims) + len(eligibility) + 7
        if len(claims) > N_REQUIRED:  # optional claims present
            strings += self._check_optional(claims)
        return strings

    def _check_optional(self, claims: dict[str, Any]) -> int:
        """Check the optional claims; returns the strings in them it counted (names, values)."""
        strings = 0
        # IETF OAuth Token Status List: optional reference; its check is a later issue.
        if "status" in claims:
            status = claims["status"]
            ref = status.get("status_list") if isinstance(status, dict) else None
            idx = ref.get("idx") if isinstance(ref, dict) else None
            if type(idx) is not int or idx < 0:
                raise e.InvalidClaim("status.status_list.idx must be an integer >= 0")
            _nonempty_str(ref, "uri", "status.status_list.")  # type: ignore[arg-type]
            strings += len(status) + len(ref) + 1  # type: ignore[arg-type]  # + the uri
        # RFC 7800 3.1 / RFC 9449 6.1: cnf.jkt is the holder key's thumbprint; the proof itself
        # is checked in _check_binding, on every call.
        if "cnf" in claims:
            cnf = claims["cnf"]
            if not isinstance(cnf, dict):
                raise e.InvalidClaim("cnf must be an object")
            _nonempty_str(cnf, "jkt", "cnf.")
            strings += len(cnf) + 1  # + the jkt value
        return strings
