"""Evidence rules: what a submission becomes, four-eyes approval, re-verification dates,
document reuse, the attributes evidence establishes.

Pure: no SQL, no HTTP, no clock; the functions take plain values and return plain values.
Each rule is written here once; the evidence service applies them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from attest.errors import FourEyesViolation, UnprocessableInput
from attest.evidence.attributes import (
    ASSURANCE_LEVELS,
    DOCUMENT_TYPES,
    assurance_rank,
    consistency_reasons,
    validate_claimed_attributes,
)
from attest.evidence.models import Evidence

__all__ = [
    "SUPPORTED_TYPES",
    "Outcome",
    "approval_reverify_at",
    "assess_manual_review",
    "check_four_eyes",
    "current_attributes",
    "document_conflicts",
    "needs_second_reviewer",
]

#: Evidence types the service verifies.
SUPPORTED_TYPES = ("manual_review", "document_mrz", "idp_assertion")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # "verified" | "pending_approval" | "rejected"
    reasons: list[str]
    verified_at: datetime | None
    reverify_at: datetime | None


def needs_second_reviewer(assurance: str, four_eyes_min: str) -> bool:
    if four_eyes_min == "never":
        return False
    return assurance_rank(assurance) >= assurance_rank(four_eyes_min)


def assess_manual_review(
    *,
    document_type: str | None,
    attributes: Mapping[str, Any],
    assurance: str,
    now: datetime,
    validity: timedelta,
    four_eyes_min: str,
) -> Outcome:
    """Decide what a manual review submission becomes. Malformed input raises."""
    problems: list[dict[str, str]] = []
    if document_type is None:
        problems.append({"field": "$.document_type", "message": "required for manual_review"})
    elif document_type not in DOCUMENT_TYPES:
        problems.append(
            {"field": "$.document_type", "message": f"must be one of {', '.join(DOCUMENT_TYPES)}"}
        )
    if assurance not in ASSURANCE_LEVELS:
        problems.append({"field": "$.assurance", "message": "must be IAL1, IAL2 or IAL3"})
    if not attributes:
        problems.append({"field": "$.attributes", "message": "at least one attribute is required"})
    problems.extend(
        {"field": path, "message": message}
        for path, message in validate_claimed_attributes(attributes)
    )
    if problems:
        raise UnprocessableInput("The evidence is malformed.", errors=problems)
    assert document_type is not None  # noqa: S101 - checked above, narrows the type
    reasons = consistency_reasons(attributes, document_type)
    if reasons:
        return Outcome("rejected", reasons, None, None)
    if needs_second_reviewer(assurance, four_eyes_min):
        return Outcome("pending_approval", [], None, None)
    return Outcome("verified", [], now, now + validity)


def check_four_eyes(evidence: Evidence, approver: uuid.UUID, *, related: bool) -> None:
    """A second, different reviewer approves: never the client that submitted it, nor one
    ``related`` to it (one created the other or rotated its key, directly or through other
    clients, in either direction: one credential holder holds both)."""
    if evidence.submitted_by == approver:
        raise FourEyesViolation(
            "The client that submitted this evidence cannot approve it; "
            "a second, different reviewer must."
        )
    if related:
        raise FourEyesViolation(
            "The approving client is related to the submitting client: one created the "
            "other or rotated its key, directly or through other clients, so one credential "
            "holder may hold both; an unrelated reviewer must approve.",
            reason="related_client",
        )


def approval_reverify_at(evidence: Evidence, now: datetime, validity: timedelta) -> datetime:
    """When approved evidence must be verified again: one validity period from now, but
    never past a date set at submission (a document's expiry)."""
    reverify_at = now + validity
    if evidence.reverify_at is not None:
        reverify_at = min(reverify_at, evidence.reverify_at)
    return reverify_at


def document_conflicts(
    claims: Sequence[tuple[uuid.UUID, str | None]], holders: Mapping[str, set[uuid.UUID]]
) -> list[bool]:
    """One document backs live evidence of at most one subject of a tenant.

    ``claims`` are (subject, document hash) in submission order; ``holders`` the subjects
    whose live evidence already uses each document. A claim conflicts when another subject
    holds the document, or an earlier claim here gave it to another subject.
    """
    owners = {digest: set(subjects) for digest, subjects in holders.items()}
    conflicts = []
    for subject_id, digest in claims:
        if digest is None:
            conflicts.append(False)
            continue
        taken = owners.setdefault(digest, set())
        conflict = bool(taken - {subject_id})
        if not conflict:
            taken.add(subject_id)
        conflicts.append(conflict)
    return conflicts


def current_attributes(
    evidence: Iterable[Evidence], now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Attribute values that count now: from verified evidence not past its
    re-verification date, one entry per value."""
    view: dict[str, list[dict[str, Any]]] = {}
    for item in evidence:
        if item.status != "verified" or item.verified_at is None or item.reverify_at is None:
            continue
        if item.reverify_at <= now:
            continue
        for attribute, value in sorted(item.attributes.items()):
            for one in value if isinstance(value, list) else [value]:
                view.setdefault(attribute, []).append(
                    {
                        "value": str(one),
                        "assurance": item.assurance,
                        "evidence_id": str(item.id),
                        "verified_at": item.verified_at.isoformat(),
                        "reverify_at": item.reverify_at.isoformat(),
                    }
                )
    return view
