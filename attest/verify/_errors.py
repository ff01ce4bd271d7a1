"""The verifier's exception tree: one root, one subclass per stable reason code."""

from __future__ import annotations

__all__ = [
    "REASON_CODES",
    "BadSignature",
    "BindingRequired",
    "DPoPKeyMismatch",
    "DPoPReplay",
    "ExpiredToken",
    "ForbiddenHeader",
    "InsufficientAssurance",
    "InvalidClaim",
    "InvalidDPoPProof",
    "InvalidToken",
    "IssuedInFuture",
    "KeySourceUnavailable",
    "LifetimeTooLong",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "PolicyNotAllowed",
    "RevokedToken",
    "StatusUnavailable",
    "SuspendedToken",
    "TokenTooLarge",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "WrongAudience",
    "WrongIssuer",
    "WrongType",
]


class InvalidToken(Exception):
    """A token was refused. ``code`` is a stable, machine-readable reason."""

    code: str = "invalid_token"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.code)

    @property
    def message(self) -> str:
        """The human-readable explanation (never contains key material)."""
        return str(self.args[0])


class MalformedToken(InvalidToken):
    """Not a compact JWS of three base64url segments holding UTF-8 JSON objects."""

    code = "malformed"


class TokenTooLarge(InvalidToken):
    """Longer than the size cap; refused before any decoding."""

    code = "too_large"


class WrongType(InvalidToken):
    """The ``typ`` header is not exactly ``elig+jwt``."""

    code = "wrong_type"


class UnsupportedAlgorithm(InvalidToken):
    """``alg`` is not ES256/EdDSA, or is not the algorithm of the key named by ``kid``."""

    code = "unsupported_algorithm"


class UnknownKey(InvalidToken):
    """No ``kid`` header, or no admitted key with that ``kid`` in the key set."""

    code = "unknown_key"


class BadSignature(InvalidToken):
    """The signature does not verify with the key named by ``kid``."""

    code = "bad_signature"


class ExpiredToken(InvalidToken):
    """``exp`` is in the past (beyond the leeway)."""

    code = "expired"


class NotYetValid(InvalidToken):
    """``nbf`` is in the future (beyond the leeway)."""

    code = "not_yet_valid"


class IssuedInFuture(InvalidToken):
    """``iat`` is in the future (beyond the leeway)."""

    code = "issued_in_future"


class WrongIssuer(InvalidToken):
    """``iss`` is not exactly the configured issuer."""

    code = "wrong_issuer"


class WrongAudience(InvalidToken):
    """``aud`` is a string other than the configured audience."""

    code = "wrong_audience"


class MissingClaim(InvalidToken):
    """A required claim is absent."""

    code = "missing_claim"


class InvalidClaim(InvalidToken):
    """A claim has the wrong type or an impossible value."""

    code = "invalid_claim"


class LifetimeTooLong(InvalidToken):
    """``exp - iat`` exceeds the 3600 s hard cap."""

    code = "lifetime_too_long"


class ForbiddenHeader(InvalidToken):
    """A header that could supply a key (``jwk``, ``jku``, ``x5u``, ``x5c``, ...) or ``crit``."""

    code = "forbidden_header"


class PolicyNotAllowed(InvalidToken):
    """The token's policy is not one of the verifier's allowed ``policies``."""

    code = "policy_not_allowed"


class InsufficientAssurance(InvalidToken):
    """The token's assurance is below the verifier's ``min_assurance``."""

    code = "insufficient_assurance"


class RevokedToken(InvalidToken):
    """The status-list hook reports the token's status list entry as revoked."""

    code = "revoked"


class SuspendedToken(RevokedToken):
    """The token's status list entry is SUSPENDED (2): refused, but not for good (its
    audience may be suspended); a subclass of RevokedToken, with a code of its own."""

    code = "suspended"


class BindingRequired(InvalidToken):
    """The token carries ``cnf`` and no holder proof (DPoP) was presented."""

    code = "binding_required"


class InvalidDPoPProof(InvalidToken):
    """The DPoP proof (RFC 9449) is malformed, badly signed, or does not fit the request."""

    code = "invalid_dpop_proof"


class DPoPKeyMismatch(InvalidToken):
    """The DPoP proof is signed by a key other than the one the token is bound to."""

    code = "dpop_key_mismatch"


class DPoPReplay(InvalidToken):
    """The DPoP proof's ``jti`` was already seen for this holder key within the window."""

    code = "dpop_replay"


class StatusUnavailable(InvalidToken):
    """The status-list hook could not say whether the token is revoked (fail closed)."""

    code = "status_unavailable"


class KeySourceUnavailable(InvalidToken):
    """No usable key set: never loaded, unreadable, or stale beyond ``stale_for``."""

    code = "key_source_unavailable"


REASON_CODES: frozenset[str] = frozenset(
    cls.code
    for cls in (
        MalformedToken,
        TokenTooLarge,
        WrongType,
        UnsupportedAlgorithm,
        UnknownKey,
        BadSignature,
        ExpiredToken,
        NotYetValid,
        IssuedInFuture,
        WrongIssuer,
        WrongAudience,
        MissingClaim,
        InvalidClaim,
        LifetimeTooLong,
        ForbiddenHeader,
        PolicyNotAllowed,
        InsufficientAssurance,
        RevokedToken,
        SuspendedToken,
        BindingRequired,
        InvalidDPoPProof,
        DPoPKeyMismatch,
        DPoPReplay,
        StatusUnavailable,
        KeySourceUnavailable,
    )
)
"""Every code a verifier can raise; stable across releases (only additions)."""
