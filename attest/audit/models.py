"""Audit events as read back, and the filters of a listing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["AuditEvent", "AuditQuery"]


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


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of GET /v1/audit/events; ``tenant`` None means every tenant (admin)."""

    tenant: str | None
    event_type: str | None = None
    subject_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int = 0
    limit: int = 100
    #: With a tenant: also the platform's events (tenant None: policies, audiences, keys).
    include_platform: bool = False
