"""The HTTP representation of evidence, shared by the evidence and subject routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attest.evidence.models import Evidence

__all__ = ["evidence_view"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def evidence_view(item: Evidence) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "subject_id": str(item.subject_id),
        "type": item.type,
        "document_type": item.document_type,
        "attributes": item.attributes,
        "assurance": item.assurance,
        "status": item.status,
        "reasons": item.reasons,
        "submitted_by": str(item.submitted_by),
        "approved_by": str(item.approved_by) if item.approved_by else None,
        "approval_comment": item.approval_comment,
        "created_at": _iso(item.created_at),
        "verified_at": _iso(item.verified_at),
        "reverify_at": _iso(item.reverify_at),
        "closed_by": str(item.closed_by) if item.closed_by else None,
        "closed_at": _iso(item.closed_at),
    }
