"""Impact preview: how a draft policy would change who is eligible. Pure: no I/O.

Evaluating every subject one by one is too slow for a population (about 30 us per
evaluation in Python). But a decision depends on a subject's facts only through each
fact's attribute, value, assurance, whether it is current (``now < reverify_at``) and which
of the documents' ``max_evidence_age_days`` limits its verification time satisfies. So the
database reduces every subject to a *signature* of exactly those properties (see
``policy/repository.py`` FACT_SIGNATURES), subjects with one signature are counted
together, and each distinct signature is evaluated once per document, on representative
facts that compare with ``now`` and every age limit exactly as the real facts do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from attest.policy.engine import Fact, evaluate

__all__ = ["Group", "Tally", "age_limits", "representative_facts", "tally"]

#: Separators of a signature (attribute names and values are validated vocabulary).
FACT_SEPARATOR = ";"
FIELD_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class Group:
    """Subjects with one signature: revoked or not, and their facts' decisive properties."""

    revoked: bool
    signature: str
    subjects: int


@dataclass(slots=True)
class Tally:
    subjects: int = 0
    eligible_now: int = 0
    eligible_after: int = 0
    gain: int = 0
    lose: int = 0
    lose_by_reason: dict[str, int] = field(default_factory=dict)


def age_limits(*documents: Mapping[str, Any] | None) -> list[int]:
    """Every distinct ``max_evidence_age_days`` in the documents, ascending."""
    found: set[int] = set()

    def walk(node: object) -> None:
        if isinstance(node, Mapping):
            value = node.get("max_evidence_age_days")
            if isinstance(value, int) and not isinstance(value, bool):
                found.add(value)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for document in documents:
        walk(document)
    return sorted(found)


def representative_facts(signature: str, now: datetime, limits: list[int]) -> list[Fact]:
    """Facts that a policy judges exactly as it judges the facts behind ``signature``.

    A fact satisfying the ``k`` largest of the ``n`` age limits is given the age of the
    smallest limit it satisfies (none: one day past the largest), so every comparison
    ``verified_at >= now - limit`` comes out the same; a current fact is re-verified a day
    from now, an expired one a second ago.
    """
    facts = []
    for number, item in enumerate(s for s in signature.split(FACT_SEPARATOR) if s):
        pair, assurance, current, satisfied = item.split(FIELD_SEPARATOR)
        attribute, _, value = pair.partition("=")
        k = int(satisfied)
        n = len(limits)
        if k >= n:
            age = timedelta()
        elif k == 0:
            age = timedelta(days=limits[-1] + 1)
        else:
            age = timedelta(days=limits[n - k])
        current_until = now + timedelta(days=1) if current == "1" else now - timedelta(seconds=1)
        facts.append(
            Fact(
                attribute=attribute,
                value=value,
                assurance=assurance,
                verified_at=now - age,
                reverify_at=current_until,
                evidence_id=f"signature-{number}",
            )
        )
    return facts


def tally(
    groups: Iterable[Group],
    current: Mapping[str, Any] | None,
    draft: Mapping[str, Any],
    *,
    now: datetime,
    limits: list[int],
) -> Tally:
    """Who is eligible under the current document (None: nobody) and under the draft."""
    result = Tally()
    for group in groups:
        facts = representative_facts(group.signature, now, limits)
        before = (
            current is not None
            and evaluate(current, facts, now=now, revoked=group.revoked).eligible
        )
        after_decision = evaluate(draft, facts, now=now, revoked=group.revoked)
        after = after_decision.eligible
        result.subjects += group.subjects
        result.eligible_now += group.subjects if before else 0
        result.eligible_after += group.subjects if after else 0
        if after and not before:
            result.gain += group.subjects
        if before and not after:
            result.lose += group.subjects
            for code in sorted({r.code for r in after_decision.reasons}):
                result.lose_by_reason[code] = result.lose_by_reason.get(code, 0) + group.subjects
    return result
