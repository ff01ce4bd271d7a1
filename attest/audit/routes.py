"""Audit reads: events (filterable, paginated) and the signed attestation behind a token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from litestar import Request, get
from litestar.params import FromPath, FromQuery, QueryParameter

from attest.audit import repository
from attest.errors import NotFound, UnprocessableInput
from attest.http.auth import current_client, requires
from attest.http.context import app_context
from attest.subjects.service import parse_uuid
from attest.tokens import repository as tokens

__all__ = ["list_audit_events", "read_attestation"]


def _event_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "event_id": str(row["event_id"]),
        "type": row["type"],
        "occurred_at": row["occurred_at"].isoformat(),
        "actor": str(row["actor"]) if row["actor"] else None,
        "tenant": row["tenant"],
        "subject_id": str(row["subject_id"]) if row["subject_id"] else None,
        "data": row["data"],
    }


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UnprocessableInput(
            f"'{name}' must be an RFC 3339 timestamp.",
            errors=[{"field": name, "message": "not an RFC 3339 timestamp"}],
        ) from None
    if parsed.tzinfo is None:
        raise UnprocessableInput(f"'{name}' must carry a UTC offset.")
    try:
        # In UTC, as stored; an offset can push year 1 or 9999 out of range (a 500 otherwise).
        return parsed.astimezone(UTC)
    except OverflowError:
        raise UnprocessableInput(
            f"'{name}' is out of range.",
            errors=[{"field": name, "message": "out of range"}],
        ) from None


@get("/v1/audit/events", guards=[requires("audit:read")])
async def list_audit_events(
    request: Request[Any, Any, Any],
    event_type: Annotated[str | None, QueryParameter(name="type", max_length=64)] = None,
    subject_id: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    cursor: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    client = current_client(request)
    ctx = app_context(request)
    query = repository.AuditQuery(
        tenant=None if client.is_admin else client.tenant,
        event_type=event_type,
        subject_id=parse_uuid(subject_id, "subject") if subject_id else None,
        since=_parse_time(since, "since"),
        until=_parse_time(until, "until"),
        after_id=cursor,
        limit=limit,
    )
    async with ctx.pool.acquire() as conn:
        rows = await repository.list_events(conn, query)
    events = [_event_view(r) for r in rows]
    next_cursor = events[-1]["id"] if len(events) == limit else None
    return {"events": events, "next_cursor": next_cursor}


@get("/v1/audit/attestations/{jti:str}", guards=[requires("audit:read")])
async def read_attestation(request: Request[Any, Any, Any], jti: FromPath[str]) -> dict[str, Any]:
    client = current_client(request)
    ctx = app_context(request)
    async with ctx.pool.acquire() as conn:
        row = await tokens.get_attestation(conn, jti) if len(jti) <= 64 else None
    if row is None or not client.can_see(row["tenant"]):
        raise NotFound("No attestation with this jti.")
    return {
        "jti": row["jti"],
        "audience": row["audience"],
        "subject_id": str(row["subject_id"]),
        "sub": row["sub"],
        "policy": {
            "name": row["policy_name"],
            "version": row["policy_version"],
            "digest": row["policy_digest"],
            "document": row["policy_document"],
        },
        "assurance": row["assurance"],
        "evidence_ids": [str(e) for e in row["evidence_ids"]],
        "kid": row["kid"],
        "alg": row["alg"],
        "public_jwk": {**row["public_jwk"], "kid": row["kid"], "alg": row["alg"]},
        "token_sha256": row["token_sha256"],
        "cnf_jkt": row["cnf_jkt"],
        "issued_at": row["issued_at"].isoformat(),
        "expires_at": row["expires_at"].isoformat(),
        "requested_by": str(row["requested_by"]),
        "signature": row["signature"],
    }
