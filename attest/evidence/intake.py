"""One evidence submission, from request body to outcome: shared by the single-subject
endpoint and the batch endpoint. Pure: no SQL, no HTTP; ``now`` and settings come in.

Whether a document already supports another subject needs the database; callers check
:attr:`Assessed.document_hash` against it and then call :func:`document_in_use_outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from attest.errors import UnprocessableInput
from attest.evidence.documents import assess_document_mrz, document_hash_key
from attest.evidence.idp import MAX_ASSERTION_LENGTH, AssertionResult
from attest.evidence.rules import (
    SUPPORTED_TYPES,
    Outcome,
    assess_manual_review,
)
from attest.http.bodies import Body
from attest.settings import Settings

__all__ = [
    "MAX_MRZ_LENGTH",
    "Assessed",
    "SubmitEvidence",
    "assess_submission",
    "audit_data",
    "document_in_use_outcome",
    "idp_outcome",
    "precheck_idp",
]

#: A TD1 MRZ is 3 x 30 characters, a TD3 2 x 44; this leaves room for line breaks and blanks.
MAX_MRZ_LENGTH = 200


class SubmitEvidence(Body):
    type: str
    document_type: str | None = None
    attributes: dict[str, Any] = {}  # noqa: RUF012 - msgspec copies mutable defaults
    #: manual_review and document_mrz: the assurance claimed (default IAL1); for
    #: idp_assertion it is derived from the provider's trust framework and must be omitted.
    assurance: Literal["IAL1", "IAL2", "IAL3"] | None = None
    #: document_mrz: the machine-readable zone, lines separated by line breaks.
    mrz: Annotated[str, msgspec.Meta(max_length=MAX_MRZ_LENGTH)] | None = None
    #: idp_assertion: the identity provider's signed JWT (compact serialisation).
    assertion: Annotated[str, msgspec.Meta(max_length=MAX_ASSERTION_LENGTH)] | None = None


@dataclass(frozen=True, slots=True)
class Assessed:
    """What a submission becomes, before the document-reuse check."""

    outcome: Outcome
    attributes: dict[str, Any]
    document_hash: str | None
    reason_codes: list[str]
    assurance: str = "IAL1"


def _unsupported(data: SubmitEvidence) -> None:
    supported = {"field": "$.type", "message": f"supported: {', '.join(SUPPORTED_TYPES)}"}
    if data.type not in SUPPORTED_TYPES:
        raise UnprocessableInput("Unknown evidence type.", errors=[supported])


def assess_submission(
    data: SubmitEvidence,
    *,
    tenant: str,
    now: datetime,
    settings: Settings,
    pairwise_key: bytes,
) -> Assessed:
    """Decide what ``data`` becomes for a subject of ``tenant``; malformed input raises
    UnprocessableInput with one error per offending field."""
    _unsupported(data)
    if data.type == "idp_assertion":
        raise UnprocessableInput(
            "idp_assertion evidence is submitted per subject.",
            errors=[{"field": "$.type", "message": "use POST /v1/subjects/{id}/evidence"}],
        )
    _only_for(data)
    assurance = data.assurance or "IAL1"
    validity = timedelta(days=settings.validity_days_for(data.type))
    four_eyes_min = settings.four_eyes_min_for(tenant)
    if data.type == "document_mrz":
        document = assess_document_mrz(
            mrz=data.mrz,
            attributes=data.attributes,
            document_type=data.document_type,
            assurance=assurance,
            now=now,
            validity=validity,
            four_eyes_min=four_eyes_min,
            hash_key=document_hash_key(settings.document_hash_secret, pairwise_key),
        )
        return Assessed(
            document.outcome,
            document.attributes,
            document.document_hash,
            document.reason_codes,
            assurance,
        )
    outcome = assess_manual_review(
        document_type=data.document_type,
        attributes=data.attributes,
        assurance=assurance,
        now=now,
        validity=validity,
        four_eyes_min=four_eyes_min,
    )
    return Assessed(outcome, dict(data.attributes), None, [], assurance)


def _only_for(data: SubmitEvidence) -> None:
    """Members that belong to another evidence type are malformed input, not ignored."""
    owners = {"mrz": "document_mrz", "assertion": "idp_assertion"}
    errors = [
        {"field": f"$.{name}", "message": f"only for {owner}"}
        for name, owner in owners.items()
        if getattr(data, name) is not None and data.type != owner
    ]
    if errors:
        raise UnprocessableInput("The evidence is malformed.", errors=errors)


def precheck_idp(data: SubmitEvidence) -> str:
    """The assertion of an idp_assertion submission; members it must not have raise."""
    _only_for(data)
    errors = [
        {"field": f"$.{name}", "message": "derived from the assertion; omit"}
        for name, given in (
            ("attributes", bool(data.attributes)),
            ("document_type", data.document_type is not None),
            ("assurance", data.assurance is not None),
        )
        if given
    ]
    if not data.assertion:
        errors.insert(0, {"field": "$.assertion", "message": "required for idp_assertion"})
    if errors:
        raise UnprocessableInput("The evidence is malformed.", errors=errors)
    assert data.assertion is not None  # noqa: S101 - checked above, narrows the type
    return data.assertion


def idp_outcome(result: AssertionResult, *, now: datetime, validity: timedelta) -> Assessed:
    """What a checked assertion becomes: verified without a second reviewer (the provider
    verified the person), or rejected with one reason per failed check."""
    codes = [reason.code for reason in result.reasons]
    if result.reasons:
        reasons = [f"{r.code}: {r.message}" for r in result.reasons]
        return Assessed(Outcome("rejected", reasons, None, None), {}, None, codes, "IAL1")
    assert result.verified_at is not None  # noqa: S101 - a valid result has these
    assert result.assurance is not None  # noqa: S101
    assert result.citizenship is not None  # noqa: S101
    # The evidence is as old as the provider's verification, and counts until the earlier
    # of our re-verification period and the provider's maximum age.
    reverify_at = min(now + validity, result.verified_at + (result.max_age or validity))
    outcome = Outcome("verified", [], result.verified_at, reverify_at)
    return Assessed(outcome, {"citizenship": result.citizenship}, None, [], result.assurance)


def document_in_use_outcome() -> Assessed:
    """The outcome when the document already supports another subject of the tenant."""
    return Assessed(
        Outcome(
            "rejected",
            ["document_in_use: This document already supports another subject."],
            None,
            None,
        ),
        {},
        None,
        ["document_in_use"],
    )


def audit_data(evidence_id: str, data: SubmitEvidence, assessed: Assessed) -> dict[str, Any]:
    """The audit event data of a submission: attribute names and rule codes, never values
    (nationalities), document numbers, names or birth dates."""
    event: dict[str, Any] = {
        "evidence_id": evidence_id,
        "type": data.type,
        "assurance": assessed.assurance,
        "attributes": sorted(assessed.attributes),
        "reasons": len(assessed.outcome.reasons),
    }
    if assessed.reason_codes:
        event["reason_codes"] = assessed.reason_codes
    return event
