"""Evidence over HTTP: submit for a subject, approve as a second reviewer, reject, withdraw."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from attest.evidence.intake import SubmitEvidence
from attest.evidence.service import EvidenceService
from attest.evidence.views import evidence_view
from attest.http.auth import current_client, post, requires
from attest.http.bodies import Body

__all__ = ["approve_evidence", "reject_evidence", "submit_evidence", "withdraw_evidence"]

FreeText = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class Approval(Body):
    #: The second reviewer's note; kept on the evidence, never in the audit trail.
    comment: FreeText | None = None


class Closing(Body):
    #: Why the reviewer rejects or withdraws; kept on the evidence, never in the audit trail.
    reason: FreeText | None = None


@post(
    "/v1/subjects/{subject_id:str}/evidence", guards=[requires("evidence:write")], status_code=201
)
async def submit_evidence(
    request: Request[Any, Any, Any],
    subject_id: FromPath[str],
    data: JSONBody[SubmitEvidence],
    evidence_service: NamedDependency[EvidenceService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    stored = await evidence_service.submit(current_client(request), subject_id, data, now)
    return Response(evidence_view(stored), status_code=201)


@post("/v1/evidence/{evidence_id:str}/approvals", guards=[requires("evidence:review")])
async def approve_evidence(
    request: Request[Any, Any, Any],
    evidence_id: FromPath[str],
    evidence_service: NamedDependency[EvidenceService],
    now: NamedDependency[datetime],
    data: JSONBody[Approval | None] = None,
) -> Response[Any]:
    updated = await evidence_service.approve(
        current_client(request), evidence_id, comment=data.comment if data else None, now=now
    )
    return Response(evidence_view(updated), status_code=200)


@post("/v1/evidence/{evidence_id:str}/rejections", guards=[requires("evidence:review")])
async def reject_evidence(
    request: Request[Any, Any, Any],
    evidence_id: FromPath[str],
    evidence_service: NamedDependency[EvidenceService],
    now: NamedDependency[datetime],
    data: JSONBody[Closing | None] = None,
) -> Response[Any]:
    """A reviewer rejects evidence awaiting approval; it never counts."""
    updated = await evidence_service.reject(
        current_client(request), evidence_id, reason=data.reason if data else None, now=now
    )
    return Response(evidence_view(updated), status_code=200)


@post("/v1/evidence/{evidence_id:str}/withdrawals", guards=[requires("evidence:review")])
async def withdraw_evidence(
    request: Request[Any, Any, Any],
    evidence_id: FromPath[str],
    evidence_service: NamedDependency[EvidenceService],
    now: NamedDependency[datetime],
    data: JSONBody[Closing | None] = None,
) -> Response[Any]:
    """A reviewer withdraws verified (or pending) evidence; from now on it no longer counts."""
    updated = await evidence_service.withdraw(
        current_client(request), evidence_id, reason=data.reason if data else None, now=now
    )
    return Response(evidence_view(updated), status_code=200)
