"""Subjects over HTTP: onboard (idempotent per tenant and external_ref, one or a batch),
read, revoke."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from attest.audit import service as audit
from attest.clients.guards import current_client, requires
from attest.clients.service import Client
from attest.errors import UnprocessableInput
from attest.evidence import repository as evidence_repo
from attest.evidence.intake import audit_data, document_in_use_outcome
from attest.evidence.service import current_attributes, facts_from_evidence
from attest.http.bodies import Body, Name, Ref, TenantName
from attest.http.context import app_context
from attest.settings import Settings
from attest.subjects import repository
from attest.subjects.batch import BATCH_PATH, BatchRequest, PlannedItem, plan_batch, refs_of
from attest.subjects.service import resolve_subject, target_tenant

__all__ = ["batch_route", "create_subject", "evidence_view", "read_subject", "revoke_subject"]


class CreateSubject(Body):
    external_ref: Ref
    tenant: TenantName | None = None


class Revocation(Body):
    reason: Name | None = None


def subject_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "external_ref": row["external_ref"],
        "tenant": row["tenant"],
        "created_at": row["created_at"].isoformat(),
        "revoked": row["revoked_at"] is not None,
        "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
    }


def evidence_view(row: asyncpg.Record) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(row["id"]),
        "subject_id": str(row["subject_id"]),
        "type": row["type"],
        "document_type": row["document_type"],
        "attributes": row["attributes"],
        "assurance": row["assurance"],
        "status": row["status"],
        "reasons": row["reasons"],
        "submitted_by": str(row["submitted_by"]),
        "approved_by": str(row["approved_by"]) if row["approved_by"] else None,
        "created_at": iso(row["created_at"]),
        "verified_at": iso(row["verified_at"]),
        "reverify_at": iso(row["reverify_at"]),
        "closed_by": str(row["closed_by"]) if row["closed_by"] else None,
        "closed_at": iso(row["closed_at"]),
    }


@post("/v1/subjects", guards=[requires("subjects:write")])
async def create_subject(
    request: Request[Any, Any, Any], data: JSONBody[CreateSubject]
) -> Response[Any]:
    client: Client = current_client(request)
    tenant = target_tenant(client, data.tenant)
    ctx = app_context(request)
    async with ctx.pool.acquire() as conn, conn.transaction():
        now = ctx.now()
        row = await repository.insert_subject(conn, tenant, data.external_ref, now)
        if row is None:
            existing = await repository.get_by_external_ref(conn, tenant, data.external_ref)
            assert existing is not None  # noqa: S101 - the conflicting row exists
            return Response(subject_view(existing), status_code=200)
        # The external reference is the identity team's own key: it stays out of the audit log.
        await audit.record(
            conn,
            "subject.onboarded",
            occurred_at=now,
            actor=client.id,
            tenant=tenant,
            subject_id=row["id"],
        )
    return Response(subject_view(row), status_code=201)


@get("/v1/subjects/{subject_id:str}", guards=[requires("subjects:read")])
async def read_subject(
    request: Request[Any, Any, Any], subject_id: FromPath[str]
) -> dict[str, Any]:
    client = current_client(request)
    ctx = app_context(request)
    async with ctx.pool.acquire() as conn:
        row = await resolve_subject(conn, client, subject_id=subject_id)
        evidence = await evidence_repo.list_for_subject(conn, row["id"])
    view = subject_view(row)
    view["attributes"] = current_attributes(facts_from_evidence(evidence), ctx.now())
    view["evidence"] = [evidence_view(e) for e in evidence]
    return view


@post(
    "/v1/subjects/{subject_id:str}/revocations",
    guards=[requires("subjects:revoke")],
    status_code=201,
)
async def revoke_subject(
    request: Request[Any, Any, Any],
    subject_id: FromPath[str],
    data: JSONBody[Revocation | None] = None,
) -> dict[str, Any]:
    client = current_client(request)
    ctx = app_context(request)
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await resolve_subject(conn, client, subject_id=subject_id, for_update=True)
        now = ctx.now()
        changed = await repository.revoke_subject(conn, row["id"], now)
        if changed:
            await audit.record(
                conn,
                "subject.revoked",
                occurred_at=now,
                actor=client.id,
                tenant=row["tenant"],
                subject_id=row["id"],
                data={"reason_given": bool(data and data.reason)},
            )
        updated = await repository.get_subject(conn, row["id"])
    assert updated is not None  # noqa: S101 - read back inside the same transaction
    return subject_view(updated)


def _item_view(item: PlannedItem, status: str, subject_id: uuid.UUID | None) -> dict[str, Any]:
    return {
        "index": item.index,
        "external_ref": item.external_ref,
        "status": status,
        "id": str(subject_id) if subject_id else None,
        "evidence": [],
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
        request: Request[Any, Any, Any], data: JSONBody[BatchRequest]
    ) -> dict[str, Any]:
        """Onboard up to ``batch_max_items`` subjects, each with optional evidence; the
        answer has one entry per item (created, existing or invalid, with errors)."""
        client = current_client(request)
        ctx = app_context(request)
        limit = ctx.settings.batch_max_items
        if len(data.items) > limit:
            raise UnprocessableInput(
                f"A batch holds at most {limit} items.",
                errors=[{"field": "$.items", "message": f"at most {limit} items"}],
            )
        tenant = target_tenant(client, data.tenant)
        now = ctx.now()
        async with ctx.pool.acquire() as conn, conn.transaction():
            known = await repository.ids_by_external_refs(conn, tenant, refs_of(data.items))
            planned = plan_batch(
                data.items,
                tenant=tenant,
                now=now,
                settings=ctx.settings,
                pairwise_key=ctx.pairwise_key,
                may_submit_evidence="evidence:write" in client.scopes,
                existing=frozenset(known),
            )
            refs = [str(item.external_ref) for item in planned if item.valid]
            created = await repository.insert_subjects(
                conn, tenant, [ref for ref in refs if ref not in known], now
            )
            # A subject onboarded by a concurrent request since the lookup is "existing".
            missing = [ref for ref in refs if ref not in known and ref not in created]
            existing = known | await repository.ids_by_external_refs(conn, tenant, missing)
            views = await _submit_for_created(conn, client.id, tenant, now, planned, created)
        counts = {"created": 0, "existing": 0, "invalid": 0}
        items = []
        for item in planned:
            ref = str(item.external_ref)
            if not item.valid:
                status, subject_id = "invalid", None
            elif ref in created:
                status, subject_id = "created", created[ref]
            else:
                status, subject_id = "existing", existing.get(ref)
            counts[status] += 1
            view = _item_view(item, status, subject_id)
            view["evidence"] = views.get(item.index, [])
            items.append(view)
        return {**counts, "items": items}

    return onboard_batch


async def _submit_for_created(
    conn: Any,
    actor: uuid.UUID,
    tenant: str,
    now: Any,
    planned: list[PlannedItem],
    created: dict[str, uuid.UUID],
) -> dict[int, list[dict[str, Any]]]:
    """Evidence and audit events for the subjects this batch created, in item order.

    Subjects that already existed get nothing: a re-sent batch changes nothing.
    """
    fresh = [item for item in planned if item.valid and str(item.external_ref) in created]
    hashes = [a.document_hash for item in fresh for _, a in item.evidence if a.document_hash]
    await evidence_repo.lock_documents(conn, tenant, hashes)
    in_use = await evidence_repo.documents_in_use(conn, tenant, hashes)
    owner: dict[str, uuid.UUID] = {}
    events: list[dict[str, object]] = []
    records: list[dict[str, Any]] = []
    views: dict[int, list[dict[str, Any]]] = {}
    for item in fresh:
        subject_id = created[str(item.external_ref)]
        events.append({"type": "subject.onboarded", "subject_id": str(subject_id), "data": {}})
        for body, assessed in item.evidence:
            digest = assessed.document_hash
            if digest is not None and (
                digest in in_use or owner.setdefault(digest, subject_id) != subject_id
            ):
                assessed = document_in_use_outcome()  # noqa: PLW2901 - replaced on purpose
            evidence_id = uuid.uuid4()
            outcome = assessed.outcome
            records.append(
                {
                    "id": evidence_id,
                    "subject_id": subject_id,
                    "type": body.type,
                    "document_type": body.document_type,
                    "attributes": assessed.attributes,
                    "assurance": assessed.assurance,
                    "status": outcome.status,
                    "reasons": outcome.reasons,
                    "verified_at": outcome.verified_at,
                    "reverify_at": outcome.reverify_at,
                    "document_hash": assessed.document_hash,
                }
            )
            events.append(
                {
                    "type": f"evidence.{outcome.status}",
                    "subject_id": str(subject_id),
                    "data": audit_data(str(evidence_id), body, assessed),
                }
            )
            views.setdefault(item.index, []).append(
                {"id": str(evidence_id), "status": outcome.status, "reasons": outcome.reasons}
            )
    await evidence_repo.insert_many(conn, records, tenant=tenant, submitted_by=actor, now=now)
    await audit.record_many(conn, events, occurred_at=now, actor=actor, tenant=tenant)
    return views
