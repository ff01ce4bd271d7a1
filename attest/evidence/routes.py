"""Evidence over HTTP: submit for a subject, approve as a second reviewer, reject, withdraw."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.params import FromPath, JSONBody

from attest.audit import service as audit
from attest.clients.guards import current_client, requires
from attest.errors import Conflict, FourEyesViolation, NotFound, UnprocessableInput
from attest.evidence import repository
from attest.evidence.idp import (
    AssertionResult,
    IdpReason,
    TrustedProvider,
    check_assertion,
    header_reasons,
    read_header,
)
from attest.evidence.intake import (
    Assessed,
    SubmitEvidence,
    assess_submission,
    audit_data,
    document_in_use_outcome,
    idp_outcome,
    precheck_idp,
)
from attest.http.bodies import Body
from attest.http.context import AppContext, app_context
from attest.ids import parse_uuid
from attest.subjects.routes import evidence_view
from attest.subjects.service import resolve_subject
from attest.verify import InvalidToken

__all__ = ["approve_evidence", "reject_evidence", "submit_evidence", "withdraw_evidence"]


class Approval(Body):
    comment: str | None = None


class Closing(Body):
    #: Why the reviewer rejects or withdraws; kept on the evidence, never in the audit trail.
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None


async def _check_assertion(
    ctx: AppContext, data: SubmitEvidence, tenant: str, now: datetime
) -> AssertionResult:
    """Check an identity provider's assertion for a subject of ``tenant``. Runs outside
    any transaction: the provider's key set may have to be fetched over the network."""
    token = precheck_idp(data)
    parsed = read_header(token)
    if parsed is None:
        raise UnprocessableInput(
            "The evidence is malformed.",
            errors=[{"field": "$.assertion", "message": "not a JWS in compact serialisation"}],
        )
    header, unverified = parsed
    providers: dict[tuple[str, str], TrustedProvider] = ctx.extras.get("idp_providers", {})
    issuer = unverified.get("iss")
    provider = providers.get((tenant, issuer)) if isinstance(issuer, str) else None
    if provider is None:
        return AssertionResult(
            [IdpReason("untrusted_issuer", "The tenant trusts no identity provider by this iss.")]
        )
    problem = header_reasons(header, provider.typ)
    if problem is not None:
        return AssertionResult([problem])
    try:
        # A remote key set may be fetched: off the event loop.
        key = await asyncio.to_thread(provider.keys.get, header["kid"], now.timestamp())
    except InvalidToken as exc:
        return AssertionResult(
            [
                IdpReason(
                    "key_source_unavailable", f"The provider's keys are unavailable ({exc.code})."
                )
            ]
        )
    return check_assertion(header, token, provider, key, audience=ctx.settings.issuer, now=now)


async def _consume_assertion(
    conn: Any, ctx: AppContext, result: AssertionResult, tenant: str, now: datetime
) -> Assessed:
    """Record the ``jti`` of a checked assertion (in the evidence's transaction), so that a
    second use is rejected as a replay; then decide the outcome."""
    if result.issuer is not None and result.jti is not None and result.expires_at is not None:
        fresh = await repository.use_assertion(
            conn, result.issuer, result.jti, tenant, now, result.expires_at
        )
        if not fresh:
            result = AssertionResult(
                [IdpReason("replayed", "This assertion (iss and jti) was used before.")]
            )
    validity = timedelta(days=ctx.settings.validity_days_for("idp_assertion"))
    return idp_outcome(result, now=now, validity=validity)


@post(
    "/v1/subjects/{subject_id:str}/evidence", guards=[requires("evidence:write")], status_code=201
)
async def submit_evidence(
    request: Request[Any, Any, Any], subject_id: FromPath[str], data: JSONBody[SubmitEvidence]
) -> Response[Any]:
    client = current_client(request)
    ctx = app_context(request)
    now = ctx.now()
    checked: AssertionResult | None = None
    if data.type == "idp_assertion":
        async with ctx.pool.acquire() as conn:
            found = await resolve_subject(conn, client, subject_id=subject_id)
        checked = await _check_assertion(ctx, data, found["tenant"], now)
    async with ctx.pool.acquire() as conn, conn.transaction():
        subject = await resolve_subject(conn, client, subject_id=subject_id, for_update=True)
        if checked is not None:
            assessed = await _consume_assertion(conn, ctx, checked, subject["tenant"], now)
        else:
            assessed = assess_submission(
                data,
                tenant=subject["tenant"],
                now=now,
                settings=ctx.settings,
                pairwise_key=ctx.pairwise_key,
            )
        if assessed.document_hash is not None:
            await repository.lock_document(conn, subject["tenant"], assessed.document_hash)
            if await repository.document_in_use(
                conn, subject["tenant"], assessed.document_hash, subject["id"]
            ):
                assessed = document_in_use_outcome()
        outcome, attributes = assessed.outcome, assessed.attributes
        row = await repository.insert_evidence(
            conn,
            subject_id=subject["id"],
            tenant=subject["tenant"],
            type_=data.type,
            document_type=data.document_type,
            attributes=attributes,
            assurance=assessed.assurance,
            status=outcome.status,
            reasons=outcome.reasons,
            submitted_by=client.id,
            now=now,
            verified_at=outcome.verified_at,
            reverify_at=outcome.reverify_at,
            document_hash=assessed.document_hash,
        )
        # Attribute names only: the values (nationalities) are personal data.
        await audit.record(
            conn,
            f"evidence.{outcome.status}",
            occurred_at=now,
            actor=client.id,
            tenant=subject["tenant"],
            subject_id=subject["id"],
            data=audit_data(str(row["id"]), data, assessed),
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
        reverify_at = now + timedelta(days=ctx.settings.validity_days_for(row["type"]))
        if row["reverify_at"] is not None:
            # Set at submission for documents: approval never extends it past their expiry.
            reverify_at = min(reverify_at, row["reverify_at"])
        updated = await repository.approve(conn, ident, client.id, now, reverify_at)
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


async def _close(
    request: Request[Any, Any, Any],
    evidence_id: str,
    data: Closing | None,
    *,
    status: str,
    from_statuses: tuple[str, ...],
    event: str,
) -> Response[Any]:
    client = current_client(request)
    ctx = app_context(request)
    ident = parse_uuid(evidence_id, "evidence")
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await repository.get_evidence(conn, ident)
        if row is None or not client.can_see(row["tenant"]):
            raise NotFound("No evidence with this id.")
        if row["status"] not in from_statuses:
            raise Conflict(
                f"The evidence is '{row['status']}'; only {' or '.join(from_statuses)} "
                f"evidence can be {status}."
            )
        now = ctx.now()
        note = f"{status}_by_reviewer" + (f": {data.reason}" if data and data.reason else "")
        updated = await repository.close(
            conn,
            ident,
            status=status,
            closed_by=client.id,
            now=now,
            reasons=[note],
            from_statuses=from_statuses,
        )
        if updated is None:
            raise Conflict("The evidence changed while it was being closed.")
        # The reviewer's free text may hold personal data: the audit event says only
        # whether one was given.
        await audit.record(
            conn,
            event,
            occurred_at=now,
            actor=client.id,
            tenant=row["tenant"],
            subject_id=row["subject_id"],
            data={
                "evidence_id": str(ident),
                "type": row["type"],
                "previous_status": row["status"],
                "by_reviewer": True,
                "reason_given": bool(data and data.reason),
            },
        )
    return Response(evidence_view(updated), status_code=200)


@post("/v1/evidence/{evidence_id:str}/rejections", guards=[requires("evidence:review")])
async def reject_evidence(
    request: Request[Any, Any, Any],
    evidence_id: FromPath[str],
    data: JSONBody[Closing | None] = None,
) -> Response[Any]:
    """A reviewer rejects evidence awaiting approval; it never counts."""
    return await _close(
        request,
        evidence_id,
        data,
        status="rejected",
        from_statuses=("pending_approval",),
        event="evidence.rejected",
    )


@post("/v1/evidence/{evidence_id:str}/withdrawals", guards=[requires("evidence:review")])
async def withdraw_evidence(
    request: Request[Any, Any, Any],
    evidence_id: FromPath[str],
    data: JSONBody[Closing | None] = None,
) -> Response[Any]:
    """A reviewer withdraws verified (or pending) evidence; from now on it no longer counts."""
    return await _close(
        request,
        evidence_id,
        data,
        status="withdrawn",
        from_statuses=("verified", "pending_approval"),
        event="evidence.withdrawn",
    )
