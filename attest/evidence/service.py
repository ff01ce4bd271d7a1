"""Evidence rules: what a submission becomes, four-eyes approval, attributes from evidence.

No SQL and no HTTP here: the functions take plain values and return plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from attest.errors import UnprocessableInput
from attest.evidence.attributes import (
    ASSURANCE_LEVELS,
    DOCUMENT_TYPES,
    assurance_rank,
    consistency_reasons,
    validate_claimed_attributes,
)
from attest.policy.engine import Fact

__all__ = [
    "Outcome",
    "assess_manual_review",
    "current_attributes",
    "facts_from_evidence",
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


def facts_from_evidence(rows: Iterable[Any]) -> list[Fact]:
    """One fact per attribute value of each verified evidence record."""
    facts: list[Fact] = []
    for row in rows:
        if row["status"] != "verified":
            continue
        for attribute, value in sorted(row["attributes"].items()):
            values = value if isinstance(value, list) else [value]
            facts.extend(
                Fact(
                    attribute=attribute,
                    value=str(item),
                    assurance=row["assurance"],
                    verified_at=row["verified_at"],
                    reverify_at=row["reverify_at"],
                    evidence_id=str(row["id"]),
                )
                for item in values
            )
    return facts


def current_attributes(facts: Iterable[Fact], now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Attribute values that count now (evidence not past its re-verification date)."""
    view: dict[str, list[dict[str, Any]]] = {}
    for fact in facts:
        if fact.reverify_at <= now:
            continue
        view.setdefault(fact.attribute, []).append(
            {
                "value": fact.value,
                "assurance": fact.assurance,
                "evidence_id": fact.evidence_id,
                "verified_at": fact.verified_at.isoformat(),
                "reverify_at": fact.reverify_at.isoformat(),
            }
        )
    return view
