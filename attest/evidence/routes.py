"""Evidence over HTTP: submit for a subject, approve as a second reviewer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from litestar import Request, Response, post
from litestar.params import FromPath, JSONBody

from attest.audit import repository as audit
from attest.errors import Conflict, FourEyesViolation, NotFound, UnprocessableInput
from attest.evidence import repository
from attest.evidence.service import PLANNED_TYPES, assess_manual_review
from attest.http.auth import current_client, requires
from attest.http.bodies import Body
from attest.http.context import app_context
from attest.subjects.routes import evidence_view
from attest.subjects.service import parse_uuid, resolve_subject

__all__ = ["approve_evidence", "submit_evidence"]


class SubmitEvidence(Body):
    type: str
    document_type: str | None = None
    attributes: dict[str, Any] = {}  # noqa: RUF012 - msgspec copies mutable defaults
    assurance: Literal["IAL1", "IAL2", "IAL3"] = "IAL1"


class Approval(Body):
    comment: str | None = None


@post(
    "/v1/subjects/{subject_id:str}/evidence", guards=[requires("evidence:write")], status_code=201
)
async def submit_evidence(
    request: Request[Any, Any, Any], subject_id: FromPath[str], data: JSONBody[SubmitEvidence]
) -> Response[Any]:
    client = current_client(request)
    ctx = app_context(request)
    if data.type in PLANNED_TYPES:
        raise UnprocessableInput(
            f"Evidence type '{data.type}' is not supported by this release yet.",
            errors=[{"field": "$.type", "message": "supported: manual_review"}],
        )
    if data.type != "manual_review":
        raise UnprocessableInput(
            "Unknown evidence type.",
            errors=[{"field": "$.type", "message": "supported: manual_review"}],
        )
    settings = ctx.settings
    async with ctx.pool.acquire() as conn, conn.transaction():
        subject = await resolve_subject(conn, client, subject_id=subject_id, for_update=True)
        now = ctx.now()
        outcome = assess_manual_review(
            document_type=data.document_type,
            attributes=data.attributes,
            assurance=data.assurance,
            now=now,
            validity=timedelta(days=settings.evidence_validity_days),
            four_eyes_min=settings.four_eyes_min_assurance,
        )
        row = await repository.insert_evidence(
            conn,
            subject_id=subject["id"],
            tenant=subject["tenant"],
            type_=data.type,
            document_type=data.document_type,
            attributes=data.attributes,
            assurance=data.assurance,
            status=outcome.status,
            reasons=outcome.reasons,
            submitted_by=client.id,
            now=now,
            verified_at=outcome.verified_at,
            reverify_at=outcome.reverify_at,
        )
        # Attribute names only: the values (nationalities) are personal data.
        await audit.record(
            conn,
            f"evidence.{outcome.status}",
            occurred_at=now,
            actor=client.id,
            tenant=subject["tenant"],
            subject_id=subject["id"],
            data={
                "evidence_id": str(row["id"]),
                "type": data.type,
                "assurance": data.assurance,
                "attributes": sorted(data.attributes),
                "reasons": len(outcome.reasons),
            },
        )
    return Response(evidence_view(row), status_code=201)


@post("/v1/evidence/{evidence_id:str}/approvals", guards=[requires("evidence:review")])
async def approve_evidence(
    request: Request[Any, Any, Any],
    evidence_id: FromPath[str],
    data: JSONBody[Approval | None] = None,
) -> Response[Any]:
    client = current_client(request)
    ctx = app_context(request)
    ident = parse_uuid(evidence_id, "evidence")
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await repository.get_evidence(conn, ident)
        if row is None or not client.can_see(row["tenant"]):
            raise NotFound("No evidence with this id.")
        if row["status"] != "pending_approval":
            raise Conflict(f"The evidence is '{row['status']}', not awaiting approval.")
        if row["submitted_by"] == client.id:
            raise FourEyesViolation(
                "The client that submitted this evidence cannot approve it; "
                "a second, different reviewer must."
            )
        now = ctx.now()
        validity = timedelta(days=ctx.settings.evidence_validity_days)
        updated = await repository.approve(conn, ident, client.id, now, now + validity)
        if updated is None:
            raise Conflict("The evidence changed while it was being approved.")
        await audit.record(
            conn,
            "evidence.approved",
            occurred_at=now,
            actor=client.id,
            tenant=row["tenant"],
            subject_id=row["subject_id"],
            data={"evidence_id": str(ident), "assurance": row["assurance"]},
        )
    return Response(evidence_view(updated), status_code=200)
