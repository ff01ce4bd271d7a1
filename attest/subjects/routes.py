"""Subjects over HTTP: onboard (idempotent per tenant and external_ref, one or a batch),
read with evidence and current attributes, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from attest.evidence.batch import BATCH_PATH, BatchItemResult, BatchRequest
from attest.evidence.service import EvidenceService
from attest.evidence.views import evidence_view
from attest.http.auth import current_client, get, post, requires
from attest.http.bodies import Body, Name, Ref, TenantName
from attest.settings import Settings
from attest.subjects.models import Subject
from attest.subjects.service import SubjectService
from attest.tokens.service import TokenService

__all__ = ["batch_route", "create_subject", "read_subject", "revoke_subject", "subject_view"]


class CreateSubject(Body):
    external_ref: Ref
    tenant: TenantName | None = None


class Revocation(Body):
    reason: Name | None = None


def subject_view(subject: Subject) -> dict[str, Any]:
    return {
        "id": str(subject.id),
        "external_ref": subject.external_ref,
        "tenant": subject.tenant,
        "created_at": subject.created_at.isoformat(),
        "revoked": subject.revoked,
        "revoked_at": subject.revoked_at.isoformat() if subject.revoked_at else None,
    }


@post("/v1/subjects", guards=[requires("subjects:write")])
async def create_subject(
    request: Request[Any, Any, Any],
    data: JSONBody[CreateSubject],
    subject_service: NamedDependency[SubjectService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    subject, created = await subject_service.onboard(
        current_client(request), data.external_ref, data.tenant, now
    )
    return Response(subject_view(subject), status_code=201 if created else 200)


@get("/v1/subjects/{subject_id:str}", guards=[requires("subjects:read")])
async def read_subject(
    request: Request[Any, Any, Any],
    subject_id: FromPath[str],
    token_service: NamedDependency[TokenService],
    now: NamedDependency[datetime],
) -> dict[str, Any]:
    """The subject, its current attributes with their evidence, and the distinct holder keys
    its tokens were bound to in the last 24 h (a sharing signal)."""
    profile, holder_keys = await token_service.subject_profile(
        current_client(request), subject_id, now
    )
    view = subject_view(profile.subject)
    view["attributes"] = profile.attributes
    view["evidence"] = [evidence_view(e) for e in profile.evidence]
    view["holder_keys"] = [
        {
            "jkt": k.jkt,
            "audience": k.audience,
            "tokens": k.tokens,
            "last_seen": k.last_seen.isoformat(),
        }
        for k in holder_keys
    ]
    return view


@post(
    "/v1/subjects/{subject_id:str}/revocations",
    guards=[requires("subjects:revoke")],
    status_code=201,
)
async def revoke_subject(
    request: Request[Any, Any, Any],
    subject_id: FromPath[str],
    subject_service: NamedDependency[SubjectService],
    now: NamedDependency[datetime],
    data: JSONBody[Revocation | None] = None,
) -> dict[str, Any]:
    revoked = await subject_service.revoke(
        current_client(request), subject_id, reason_given=bool(data and data.reason), now=now
    )
    return subject_view(revoked)


def _item_view(result: BatchItemResult) -> dict[str, Any]:
    item = result.item
    return {
        "index": item.index,
        "external_ref": item.external_ref,
        "status": result.status,
        "id": str(result.subject_id) if result.subject_id else None,
        "evidence": [
            {"id": str(e.id), "status": e.status, "reasons": e.reasons} for e in result.evidence
        ],
        "evidence_skipped": item.skipped_evidence,
        "errors": item.errors,
    }


def batch_route(settings: Settings) -> HTTPRouteHandler:
    """``POST /v1/subjects/batch``, with the body limit of ``settings.batch_max_body_size``."""

    @post(
        BATCH_PATH,
        guards=[requires("subjects:write")],
        status_code=200,
        request_max_body_size=settings.batch_max_body_size,
    )
    async def onboard_batch(
        request: Request[Any, Any, Any],
        data: JSONBody[BatchRequest],
        evidence_service: NamedDependency[EvidenceService],
        now: NamedDependency[datetime],
    ) -> dict[str, Any]:
        """Onboard up to ``batch_max_items`` subjects, each with optional evidence; the
        answer has one entry per item (created, existing or invalid, with errors)."""
        results = await evidence_service.onboard_batch(current_client(request), data, now)
        counts = {"created": 0, "existing": 0, "invalid": 0}
        for result in results:
            counts[result.status] += 1
        return {**counts, "items": [_item_view(r) for r in results]}

    return onboard_batch
