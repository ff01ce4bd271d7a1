"""Evidence records as the service sees them (document numbers only ever as keyed hashes,
and those stay in the database)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Evidence", "NewEvidence"]


@dataclass(frozen=True, slots=True)
class Evidence:
    id: uuid.UUID
    subject_id: uuid.UUID
    tenant: str
    type: str
    document_type: str | None
    attributes: dict[str, Any]
    assurance: str
    status: str  # verified | pending_approval | rejected | withdrawn
    reasons: list[str]
    submitted_by: uuid.UUID
    approved_by: uuid.UUID | None
    approval_comment: str | None
    created_at: datetime
    verified_at: datetime | None
    reverify_at: datetime | None
    closed_by: uuid.UUID | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewEvidence:
    """What a submission stores: the outcome of its assessment."""

    id: uuid.UUID
    subject_id: uuid.UUID
    type: str
    document_type: str | None
    attributes: dict[str, Any]
    assurance: str
    status: str
    reasons: list[str]
    verified_at: datetime | None
    reverify_at: datetime | None
    document_hash: str | None
