"""Audit events as read back, and the filters of a listing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["AuditEvent", "AuditQuery", "DecisionCount", "DecisionCounts", "ReasonCount"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    event_id: uuid.UUID
    type: str
    occurred_at: datetime
    actor: uuid.UUID | None
    tenant: str | None
    subject_id: uuid.UUID | None
    data: dict[str, Any]
    #: Position in the transparency log; None until the sequencer has reached the event.
    log_index: int | None = None

    def leaf_fields(self) -> dict[str, Any]:
        """The seven fields as GET /v1/audit/events shows them: the log leaf is their RFC 8785
        canonical JSON (DESIGN.md, "Audit and transparency log"), so an auditor recomputes
        the leaf from the event it reads."""
        return {
            "event_id": str(self.event_id),
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": str(self.actor) if self.actor else None,
            "tenant": self.tenant,
            "subject_id": str(self.subject_id) if self.subject_id else None,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of GET /v1/audit/events; ``tenant`` None means every tenant (admin)."""

    tenant: str | None
    event_type: str | None = None
    subject_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: First log position of the page (the cursor); pending events follow the sequenced ones.
    from_index: int = 0
    limit: int = 100
    #: With a tenant: also the platform's events (tenant None: policies, audiences, keys).
    include_platform: bool = False


@dataclass(frozen=True, slots=True)
class DecisionCount:
    """Tokens issued or denied (``kind``) for one audience in the bucket starting at
    ``bucket``."""

    bucket: datetime
    kind: str
    audience: str
    count: int


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """Denials giving ``reason`` in the bucket starting at ``bucket`` (a denial with two
    reasons counts once for each)."""

    bucket: datetime
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class DecisionCounts:
    """Decisions over ``[since, until)`` in buckets of ``bucket``, read in one snapshot;
    ``tenant`` None: every tenant (admin)."""

    tenant: str | None
    since: datetime
    until: datetime
    bucket: timedelta
    decisions: list[DecisionCount]
    reasons: list[ReasonCount]
