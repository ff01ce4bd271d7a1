"""From evidence records to the facts a policy is evaluated on. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from attest.evidence.models import Evidence
from attest.policy.engine import Fact

__all__ = ["facts_from_evidence"]


def facts_from_evidence(evidence: Iterable[Evidence]) -> list[Fact]:
    """One fact per attribute value of each verified evidence record."""
    facts: list[Fact] = []
    for item in evidence:
        if item.status != "verified" or item.verified_at is None or item.reverify_at is None:
            continue
        for attribute, value in sorted(item.attributes.items()):
            values = value if isinstance(value, list) else [value]
            facts.extend(
                Fact(
                    attribute=attribute,
                    value=str(one),
                    assurance=item.assurance,
                    verified_at=item.verified_at,
                    reverify_at=item.reverify_at,
                    evidence_id=str(item.id),
                )
                for one in values
            )
    return facts
