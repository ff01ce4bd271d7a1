"""GET /v1/audit/events: decisions and changes, filterable, paginated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from attest.audit.models import AuditEvent, AuditQuery
from attest.audit.service import AuditService
from attest.errors import UnprocessableInput
from attest.http.auth import current_client, get, requires
from attest.ids import parse_uuid

__all__ = ["list_audit_events"]


def event_view(event: AuditEvent) -> dict[str, Any]:
    return {"id": event.id, **event.leaf_fields(), "log_index": event.log_index}


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
    audit_service: NamedDependency[AuditService],
    event_type: Annotated[str | None, QueryParameter(name="type", max_length=64)] = None,
    subject_id: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    cursor: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    platform: Annotated[bool, QueryParameter(name="platform")] = False,
) -> dict[str, Any]:
    """With ``platform=true`` a tenant's auditor also reads the platform's events (policy
    versions, audience bindings, key changes: tenant null), which decide for every tenant."""
    client = current_client(request)
    query = AuditQuery(
        tenant=None if client.is_admin else client.tenant,
        event_type=event_type,
        subject_id=parse_uuid(subject_id, "subject") if subject_id else None,
        since=_parse_time(since, "since"),
        until=_parse_time(until, "until"),
        from_index=cursor,
        limit=limit,
        include_platform=platform,
    )
    found = await audit_service.events(query)
    events = [event_view(e) for e in found]
    # The cursor is a log position: the page ends with a sequenced event -> resume after it.
    # A page that reached pending events (log_index null) is the last: they come back, with
    # their positions, on a later read from the last position seen + 1.
    last = found[-1].log_index if found else None
    next_cursor = last + 1 if len(found) == limit and last is not None else None
    return {"events": events, "next_cursor": next_cursor}
