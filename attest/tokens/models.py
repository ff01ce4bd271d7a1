"""Issued tokens and the signed attestation records behind them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "Attestation",
    "HolderKey",
    "IssueRequest",
    "IssuedEntry",
    "IssuedToken",
    "NewAttestation",
    "Revoked",
]


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """What a backend asks for: a subject (by id or external_ref) and an audience."""

    audience: str
    subject_id: str | None = None
    external_ref: str | None = None
    tenant: str | None = None
    holder_jwk: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewAttestation:
    """The record an issuance commits before its token leaves the service."""

    jti: str
    subject_id: uuid.UUID
    tenant: str
    audience: str
    sub: str
    policy_name: str
    policy_version: int
    policy_digest: str
    assurance: str
    evidence_ids: list[uuid.UUID]
    kid: str
    token_sha256: str
    cnf_jkt: str | None
    issued_at: datetime
    expires_at: datetime
    requested_by: uuid.UUID
    signature: str


@dataclass(frozen=True, slots=True)
class Attestation:
    """An attestation as auditors read it: with the policy document that decided and the
    public key that signed."""

    record: NewAttestation
    policy_document: dict[str, Any]
    public_jwk: dict[str, Any]
    alg: str


@dataclass(frozen=True, slots=True)
class Revoked:
    """A token revoked through its status-list entry (``changed``: it was VALID before)."""

    jti: str
    revoked_at: datetime
    changed: bool


@dataclass(frozen=True, slots=True)
class HolderKey:
    """A holder key (cnf.jkt) a subject's tokens were bound to, per audience, in a window."""

    jkt: str
    audience: str
    tokens: int
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class IssuedEntry:
    """One token issued for a subject, as a listing shows it: never the token itself.

    ``status`` is the token's status-list value (0 VALID, 1 INVALID, 2 SUSPENDED).
    """

    jti: str
    tenant: str
    audience: str
    policy_name: str
    policy_version: int
    issued_at: datetime
    expires_at: datetime
    status: int
