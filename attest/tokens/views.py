"""The attestation record as auditors read it: GET /v1/audit/attestations/{jti} shows it,
and a receipt (attest.log) carries exactly it. Pure: a model in, plain data out."""

from __future__ import annotations

from typing import Any

from attest.tokens.models import Attestation

__all__ = ["attestation_record"]


def attestation_record(found: Attestation) -> dict[str, Any]:
    """The attestation with its policy document and public key (tests/log pin the receipt's
    copy to this)."""
    a = found.record
    return {
        "jti": a.jti,
        "audience": a.audience,
        "subject_id": str(a.subject_id),
        "sub": a.sub,
        "policy": {
            "name": a.policy_name,
            "version": a.policy_version,
            "digest": a.policy_digest,
            "document": found.policy_document,
        },
        "assurance": a.assurance,
        "evidence_ids": [str(e) for e in a.evidence_ids],
        "kid": a.kid,
        "alg": found.alg,
        "public_jwk": {**found.public_jwk, "kid": a.kid, "alg": found.alg},
        "token_sha256": a.token_sha256,
        "cnf_jkt": a.cnf_jkt,
        "issued_at": a.issued_at.isoformat(),
        "expires_at": a.expires_at.isoformat(),
        "requested_by": str(a.requested_by),
        "signature": a.signature,
    }
