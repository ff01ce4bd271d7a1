"""The eligibility token contract (DESIGN.md "Eligibility token (v1)"), written down once.

The service that issues tokens and the verifier that checks them both import these names, so
a rule cannot drift between them: the token type, the accepted algorithms, the lifetime hard
cap, the assurance levels and their order, the RFC 7638 thumbprint, and the admission of a
holder's public key. The module needs only the standard library and ``cryptography`` (like
the rest of :mod:`attest.verify`), so the base install can import it::

    from attest.verify.contract import HolderKeyError, holder_jwk_thumbprint

    try:
        jkt = holder_jwk_thumbprint(request_body["holder_jwk"])  # the token's cnf.jkt
    except HolderKeyError as exc:
        reject(str(exc))  # says what is wrong with the key

Changing a value here changes the token format: see DESIGN.md and CONVENTIONS.md 13 (only
optional claims may be added; a breaking change gets a new ``typ``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ._jwk import admit_holder_key, jwk_thumbprint

__all__ = [
    "ALGORITHMS",
    "ASSURANCE_LEVELS",
    "ASSURANCE_RANK",
    "HARD_MAX_TOKEN_LIFETIME",
    "TOKEN_TYPE",
    "HolderKeyError",
    "assurance_rank",
    "holder_jwk_thumbprint",
    "jwk_thumbprint",
]

#: The ``typ`` header of every eligibility token (RFC 8725 3.11 explicit typing).
TOKEN_TYPE: Final = "elig+jwt"  # noqa: S105 - a media type, not a secret

#: The only JWS algorithms ever issued or accepted, the default first: ES256 (P-256,
#: RFC 7518 3.4) and EdDSA with Ed25519 (RFC 8037). The key decides which one applies.
ALGORITHMS: Final = ("ES256", "EdDSA")

#: Hard cap on a token's lifetime ``exp - iat``, in seconds. No audience may ask for more and
#: the verifier refuses more (``lifetime_too_long``).
HARD_MAX_TOKEN_LIFETIME: Final = 3600

#: Identity assurance levels of NIST SP 800-63A, weakest first (``eligibility.assurance``).
ASSURANCE_LEVELS: Final = ("IAL1", "IAL2", "IAL3")

#: Each level's rank, IAL1 -> 1 ... IAL3 -> 3: a higher rank is a stronger assurance.
ASSURANCE_RANK: Final[Mapping[str, int]] = MappingProxyType(
    {level: rank for rank, level in enumerate(ASSURANCE_LEVELS, start=1)}
)


def assurance_rank(level: str) -> int:
    """The rank of an assurance level: IAL1 -> 1, IAL2 -> 2, IAL3 -> 3.

    Raises ValueError for anything that is not one of :data:`ASSURANCE_LEVELS`, so a typo can
    never compare as "low" or "high" by accident.
    """
    rank = ASSURANCE_RANK.get(level) if isinstance(level, str) else None
    if rank is None:
        raise ValueError(f"unknown assurance level {level!r} (one of {ASSURANCE_LEVELS})")
    return rank


class HolderKeyError(ValueError):
    """A holder key (``holder_jwk``) is refused; the message says what is wrong with it."""


def holder_jwk_thumbprint(jwk: object) -> str:
    """Admit a holder's public key and return its RFC 7638 thumbprint (the token's ``cnf.jkt``).

    The key must be a public EC P-256 or OKP Ed25519 JWK. Refused, with
    :class:`HolderKeyError`: private or symmetric members (``d``, ``k``, ...), any other
    ``kty`` or ``crv``, coordinates that are not canonical unpadded base64url of 32 bytes,
    a P-256 point off the curve, an Ed25519 point of small order, off the curve or
    non-canonically encoded, a ``use`` other than ``sig``, ``key_ops`` without ``verify``,
    and an ``alg`` that is not the key's algorithm. This is the very admission the verifier
    applies to a DPoP proof's key, so a key accepted at issuance is a key the verifier takes.
    """
    try:
        _, thumbprint = admit_holder_key(jwk)
    except (ValueError, TypeError, OverflowError) as exc:
        raise HolderKeyError(f"holder key refused: {exc}") from exc
    return thumbprint
