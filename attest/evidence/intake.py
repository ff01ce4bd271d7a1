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
from attest.evidence.service import (
    PLANNED_TYPES,
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
]

#: A TD1 MRZ is 3 x 30 characters, a TD3 2 x 44; this leaves room for line breaks and blanks.
MAX_MRZ_LENGTH = 200


class SubmitEvidence(Body):
    type: str
    document_type: str | None = None
    attributes: dict[str, Any] = {}  # noqa: RUF012 - msgspec copies mutable defaults
    assurance: Literal["IAL1", "IAL2", "IAL3"] = "IAL1"
    #: document_mrz: the machine-readable zone, lines separated by line breaks.
    mrz: Annotated[str, msgspec.Meta(max_length=MAX_MRZ_LENGTH)] | None = None


@dataclass(frozen=True, slots=True)
class Assessed:
    """What a submission becomes, before the document-reuse check."""

    outcome: Outcome
    attributes: dict[str, Any]
    document_hash: str | None
    reason_codes: list[str]


def _unsupported(data: SubmitEvidence) -> None:
    supported = {"field": "$.type", "message": f"supported: {', '.join(SUPPORTED_TYPES)}"}
    if data.type in PLANNED_TYPES:
        raise UnprocessableInput(
            f"Evidence type '{data.type}' is not supported by this release yet.",
            errors=[supported],
        )
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
    validity = timedelta(days=settings.validity_days_for(data.type))
    four_eyes_min = settings.four_eyes_min_for(tenant)
    if data.type == "document_mrz":
        document = assess_document_mrz(
            mrz=data.mrz,
            attributes=data.attributes,
            document_type=data.document_type,
            assurance=data.assurance,
            now=now,
            validity=validity,
            four_eyes_min=four_eyes_min,
            hash_key=document_hash_key(settings.document_hash_secret, pairwise_key),
        )
        return Assessed(
            document.outcome, document.attributes, document.document_hash, document.reason_codes
        )
    if data.mrz is not None:
        raise UnprocessableInput(
            "The evidence is malformed.",
            errors=[{"field": "$.mrz", "message": "only for document_mrz"}],
        )
    outcome = assess_manual_review(
        document_type=data.document_type,
        attributes=data.attributes,
        assurance=data.assurance,
        now=now,
        validity=validity,
        four_eyes_min=four_eyes_min,
    )
    return Assessed(outcome, dict(data.attributes), None, [])


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
        "assurance": data.assurance,
        "attributes": sorted(assessed.attributes),
        "reasons": len(assessed.outcome.reasons),
    }
    if assessed.reason_codes:
        event["reason_codes"] = assessed.reason_codes
    return event
