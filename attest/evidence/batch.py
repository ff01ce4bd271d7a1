"""Batch onboarding: judge every item of a batch on its own. Pure: no SQL, no HTTP.

An item is a subject (``external_ref``) with optional evidence. A malformed item is
reported with its JSON path (``$.items[3].evidence[0].attributes``) and never stops the
others. Evidence is only submitted for subjects the batch creates: re-sending a batch (a
retry, or an import resumed after an interruption) changes nothing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import msgspec

from attest.errors import UnprocessableInput
from attest.evidence.intake import Assessed, SubmitEvidence, assess_submission
from attest.evidence.models import NewEvidence
from attest.http.bodies import Body, Ref, TenantName
from attest.settings import Settings

__all__ = [
    "BATCH_PATH",
    "MAX_EVIDENCE_PER_ITEM",
    "BatchItem",
    "BatchItemResult",
    "BatchRequest",
    "PlannedItem",
    "plan_batch",
    "refs_of",
]

#: Where the batch endpoint lives (documented in README and OpenAPI).
BATCH_PATH = "/v1/subjects/batch"
#: Most evidence records one batch item may carry.
MAX_EVIDENCE_PER_ITEM = 5

_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


class BatchItem(Body):
    external_ref: Ref
    evidence: Annotated[list[SubmitEvidence], msgspec.Meta(max_length=MAX_EVIDENCE_PER_ITEM)] = []  # noqa: RUF012 - msgspec copies mutable defaults


class BatchRequest(Body):
    """Items stay raw here so that one malformed item cannot fail the whole request."""

    items: Annotated[list[Any], msgspec.Meta(min_length=1)]
    tenant: TenantName | None = None


@dataclass(slots=True)
class PlannedItem:
    """One item after judging: either ``errors`` or a subject with assessed evidence."""

    index: int
    external_ref: str | None
    errors: list[dict[str, str]] = field(default_factory=list)
    evidence: list[tuple[SubmitEvidence, Assessed]] = field(default_factory=list)
    skipped_evidence: int = 0  # evidence not assessed: the subject already exists

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class BatchItemResult:
    """What became of one item: ``created``, ``existing`` or ``invalid``."""

    item: PlannedItem
    status: str
    subject_id: uuid.UUID | None
    evidence: list[NewEvidence]


def _convert(index: int, raw: Any) -> BatchItem | list[dict[str, str]]:
    prefix = f"$.items[{index}]"
    try:
        return msgspec.convert(raw, BatchItem)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _AT_PATH.search(message)
        if found is None:
            return [{"field": prefix, "message": message}]
        return [{"field": prefix + found["path"], "message": message[: found.start()]}]


def plan_batch(
    raw_items: list[Any],
    *,
    tenant: str,
    now: datetime,
    settings: Settings,
    pairwise_key: bytes,
    may_submit_evidence: bool,
    existing: frozenset[str] = frozenset(),
) -> list[PlannedItem]:
    """Judge each item; an ``external_ref`` seen earlier in the batch is an error.

    Evidence of subjects in ``existing`` is not assessed: it would not be submitted (a
    re-sent batch changes nothing), and skipping it makes a resumed import cheap.
    """
    planned: list[PlannedItem] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_items):
        prefix = f"$.items[{index}]"
        converted = _convert(index, raw)
        if isinstance(converted, list):
            ref = raw.get("external_ref") if isinstance(raw, dict) else None
            planned.append(PlannedItem(index, ref if isinstance(ref, str) else None, converted))
            continue
        item = PlannedItem(index, converted.external_ref)
        planned.append(item)
        if converted.external_ref in seen:
            item.errors.append(
                {"field": f"{prefix}.external_ref", "message": "repeats an earlier item"}
            )
            continue
        seen.add(converted.external_ref)
        if converted.evidence and not may_submit_evidence:
            item.errors.append(
                {"field": f"{prefix}.evidence", "message": "needs the scope evidence:write"}
            )
            continue
        if converted.external_ref in existing:
            item.skipped_evidence = len(converted.evidence)
            continue
        for number, evidence in enumerate(converted.evidence):
            try:
                assessed = assess_submission(
                    evidence, tenant=tenant, now=now, settings=settings, pairwise_key=pairwise_key
                )
            except UnprocessableInput as exc:
                item.errors.extend(
                    {
                        "field": f"{prefix}.evidence[{number}]" + error["field"][1:],
                        "message": error["message"],
                    }
                    for error in exc.extensions.get("errors", [])
                )
                continue
            item.evidence.append((evidence, assessed))
        if item.errors:
            item.evidence.clear()
    return planned


def refs_of(raw_items: list[Any]) -> list[str]:
    """The string ``external_ref`` members of the raw items (to look up existing ones)."""
    return [
        raw["external_ref"]
        for raw in raw_items
        if isinstance(raw, dict) and isinstance(raw.get("external_ref"), str)
    ]
