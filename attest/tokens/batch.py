"""What a group-commit batch decided, in order, and the rows it records: the requests
(:class:`Ask`), their outcomes, the audit events in the order of the decisions, and the
eligible requests' tokens, signed here (attest/tokens/issuance.py decides)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from attest.clients.models import Client
from attest.db import Conn
from attest.errors import AttestError
from attest.keys.keyring import Keyring
from attest.keys.keystore import Signer
from attest.policy.models import Audience, Eligibility
from attest.status.models import StatusRef
from attest.status.service import list_uri
from attest.subjects.models import Subject
from attest.tokens.batcher import Failed
from attest.tokens.claims import (
    ATTESTATION_TYPE,
    TOKEN_TYPE,
    build_claims,
    new_jti,
    pairwise_sub,
    token_sha256,
)
from attest.tokens.models import IssuedToken, IssueRequest

__all__ = ["Ask", "BatchSigner", "Decided", "Denied", "Outcome", "Pending", "sign_batch"]


@dataclass(frozen=True, slots=True)
class Ask:
    """One token request, as its batch decides it."""

    client: Client
    request: IssueRequest
    cnf_jkt: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class Denied:
    """A refusal recorded in the transaction; raised once it committed."""

    error: AttestError


Outcome = IssuedToken | Denied | Failed


class BatchSigner:
    """The active signer, for a batch's transaction: the batch reads the active key's id
    with its decision reads and hands it over (:meth:`read`); the signer is loaded only
    when the batch issues a token (a batch of denials never asks)."""

    def __init__(self, keyring: Keyring, conn: Conn) -> None:
        self._keyring = keyring
        self._conn = conn
        self._kid: str | None = None
        self._signer: Signer | None = None

    def read(self, kid: str | None) -> None:
        """The active key's id, as the batch's transaction read it (None: no key is)."""
        self._kid = kid
        self._signer = None

    async def signer(self) -> Signer:
        if self._signer is None:
            self._signer = await self._keyring.signer_for(self._conn, self._kid)
        return self._signer


@dataclass(slots=True)
class Pending:
    """An eligible request waiting for its status entry and signature."""

    index: int
    event: int
    ask: Ask
    subject: Subject
    audience: Audience
    eligibility: Eligibility


@dataclass(slots=True)
class Decided:
    """The batch's decisions in order: outcomes, events, signals, tokens to sign."""

    outcomes: list[Outcome | None]
    events: list[dict[str, Any]] = field(default_factory=list)
    signals: list[tuple[str, str]] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    # What the batch issued so far: clients per subject, holder keys per (subject, audience).
    clients: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)
    keys: dict[tuple[uuid.UUID, str], set[str]] = field(default_factory=dict)

    def event(self, ask: Ask, subject: Subject, event_type: str, data: dict[str, Any]) -> int:
        self.events.append(
            {
                "n": len(self.events),
                "event_id": str(uuid.uuid4()),
                "type": event_type,
                "occurred_at": ask.now.isoformat(),
                "actor": str(ask.client.id),
                "tenant": subject.tenant,
                "subject_id": str(subject.id),
                "data": data,
            }
        )
        return len(self.events) - 1


def sign_batch(
    decided: Decided,
    signer: Signer,
    entries: list[StatusRef],
    *,
    issuer: str,
    pairwise_key: bytes,
) -> list[dict[str, Any]]:
    """Sign each pending token and its attestation (``entries``: their status-list entries,
    in order); fill in their outcomes and token.issued events; their rows for the batch's
    recording statement."""
    rows = []
    for pending, entry in zip(decided.pending, entries, strict=True):
        ask, subject, audience = pending.ask, pending.subject, pending.audience
        decision = pending.eligibility.decision
        assert decision.assurance is not None  # noqa: S101 - an eligible decision has one
        jti = new_jti()
        sub = pairwise_sub(pairwise_key, str(subject.id), audience.audience)
        claims = build_claims(
            issuer=issuer,
            sub=sub,
            audience=audience.audience,
            now=ask.now,
            lifetime=audience.token_lifetime,
            jti=jti,
            decision=decision,
            cnf_jkt=ask.cnf_jkt,
            status_idx=entry.idx,
            status_uri=list_uri(issuer, entry.list_id),
        )
        token = signer.sign_jwt(claims, TOKEN_TYPE)
        digest = token_sha256(token)
        evidence_ids = [str(e) for e in pending.eligibility.evidence_ids]
        signed = {
            "jti": jti,
            "subject_id": str(subject.id),
            "audience": audience.audience,
            "sub": sub,
            "policy": {
                "name": decision.policy,
                "version": decision.policy_version,
                "digest": decision.policy_digest,
            },
            "assurance": decision.assurance,
            "evidence_ids": evidence_ids,
            "kid": signer.kid,
            "token_sha256": digest,
            "cnf_jkt": ask.cnf_jkt,
            "iat": claims["iat"],
            "exp": claims["exp"],
            "status": claims["status"]["status_list"],
        }
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        rows.append(
            {
                "jti": jti,
                "subject_id": str(subject.id),
                "tenant": subject.tenant,
                "audience": audience.audience,
                "sub": sub,
                "policy_name": decision.policy,
                "policy_version": decision.policy_version,
                "policy_digest": decision.policy_digest,
                "assurance": decision.assurance,
                "evidence_ids": evidence_ids,
                "kid": signer.kid,
                "token_sha256": digest,
                "cnf_jkt": ask.cnf_jkt,
                "issued_at": datetime.fromtimestamp(claims["iat"], UTC).isoformat(),
                "expires_at": expires_at.isoformat(),
                "requested_by": str(ask.client.id),
                "signature": signer.sign_jwt(signed, ATTESTATION_TYPE),
                "list_id": entry.list_id,
                "idx": entry.idx,
            }
        )
        decided.events[pending.event]["data"] = {
            "jti": jti,
            "audience": audience.audience,
            "policy": decision.policy,
            "policy_version": decision.policy_version,
            "policy_digest": decision.policy_digest,
            "assurance": decision.assurance,
            "kid": signer.kid,
            "token_sha256": digest,
            "bound": ask.cnf_jkt is not None,
        }
        decided.outcomes[pending.index] = IssuedToken(token, jti, expires_at)
    return rows
