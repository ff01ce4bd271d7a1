"""Subjects over HTTP: onboard (idempotent per tenant and external_ref), read, revoke."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Request, Response, get, post
from litestar.params import FromPath, JSONBody

from attest.audit import repository as audit
from attest.clients.service import Client
from attest.evidence import repository as evidence_repo
from attest.evidence.service import current_attributes, facts_from_evidence
from attest.http.auth import current_client, requires
from attest.http.bodies import Body, Name, Ref, TenantName
from attest.http.context import app_context
from attest.subjects import repository
from attest.subjects.service import resolve_subject, target_tenant

__all__ = ["create_subject", "evidence_view", "read_subject", "revoke_subject"]


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
