"""Signing keys as the service sees them, and the results of the lifecycle operations.

A :class:`SigningKey` is one ``signing_keys`` row (public half and lifecycle state; the
private key is in the keystore, named by ``keystore_ref``). The repository makes them;
nothing above it sees a database row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from attest.keys.keystore import Algorithm

__all__ = [
    "JwksDocument",
    "KeyState",
    "Plan",
    "Revocation",
    "Rotation",
    "SigningKey",
]

KeyState = Literal["pending", "active", "retiring", "retired", "compromised"]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A signing key's public half, where its private half lives, and its lifecycle times."""

    kid: str
    alg: Algorithm
    state: KeyState
    public_jwk: dict[str, str]
    keystore_ref: str
    created_at: datetime
    activated_at: datetime | None
    retiring_at: datetime | None
    retired_at: datetime | None
    compromised_at: datetime | None
    #: A pending key may sign from this time (publication + pre-publication period).
    activate_after: datetime | None
    #: A retiring key may leave the JWKS from this time (retiring + retiring window).
    retire_after: datetime | None

    def jwk(self) -> dict[str, Any]:
        """The key as published in the JWKS (RFC 7517 4: kid, alg, use)."""
        return {**self.public_jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True, slots=True)
class JwksDocument:
    """The JWKS as served: the exact bytes, their ETag, and the published (kid, state)s
    they were made from (a different set means a different document)."""

    body: bytes
    etag: str
    published: tuple[tuple[str, str], ...]
    #: ``Cache-Control`` and ``ETag``, made once with the bytes (never mutate it).
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the scheduled check found due (see ``lifecycle.plan``)."""

    activate: str | None
    retire: tuple[str, ...]
    create_pending: bool

    @property
    def empty(self) -> bool:
        return self.activate is None and not self.retire and not self.create_pending


@dataclass(frozen=True, slots=True)
class Rotation:
    kid: str
    alg: str
    activate_after: datetime
    created: bool


@dataclass(frozen=True, slots=True)
class Revocation:
    kid: str
    previous_state: str
    compromised_at: datetime
    replacement: str | None
    replacement_alg: str | None
    prepublication_skipped: bool
