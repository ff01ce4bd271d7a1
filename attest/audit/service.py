"""The audit trail: every use case records its events here, inside its own transaction.

``record`` and ``record_many`` take the caller's connection on purpose: an event commits
with the change it records, or not at all (DESIGN.md, "Audit and transparency log").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from attest.audit import repository
from attest.audit.models import AuditEvent, AuditQuery, DecisionCounts
from attest.db import Conn
from attest.errors import UnprocessableInput

__all__ = ["MAX_BUCKETS", "AuditService", "record", "record_many"]

#: Most buckets one chart of decisions may ask for.
MAX_BUCKETS = 500


async def record(
    conn: Conn,
    event_type: str,
    *,
    occurred_at: datetime,
    actor: uuid.UUID | None,
    tenant: str | None,
    subject_id: uuid.UUID | None = None,
    data: Mapping[str, Any] | None = None,
) -> int:
    """Append one event. Call inside the transaction of the change it records."""
    return await repository.insert_event(
        conn,
        event_type,
        occurred_at=occurred_at,
        actor=actor,
        tenant=tenant,
        subject_id=subject_id,
        data=data or {},
    )


async def record_many(
    conn: Conn,
    events: list[dict[str, object]],
    *,
    occurred_at: datetime,
    actor: uuid.UUID,
    tenant: str,
) -> None:
    """Append audit events ``{"type", "subject_id", "data"}`` in list order."""
    if events:
        await repository.insert_events(
            conn, events, occurred_at=occurred_at, actor=actor, tenant=tenant
        )


class AuditService:
    """Reads of the audit trail."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def events(self, query: AuditQuery) -> list[AuditEvent]:
        # One snapshot for the sequenced part and the pending part of a page: otherwise an
        # event sequenced between the two reads would be in neither.
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            return await repository.list_events(conn, query)

    async def decision_counts(
        self, tenant: str | None, *, since: datetime, until: datetime, bucket: timedelta
    ) -> DecisionCounts:
        """Tokens issued and denied per audience, and denials per reason, in buckets of
        ``bucket`` over ``[since, until)`` (``tenant`` None: every tenant), one snapshot."""
        if bucket <= timedelta(0) or since >= until:
            raise UnprocessableInput("A chart needs a positive bucket and since before until.")
        if (until - since) / bucket > MAX_BUCKETS:
            raise UnprocessableInput(f"A chart has at most {MAX_BUCKETS} buckets.")
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            decisions = await repository.decision_counts(conn, tenant, since, until, bucket)
            reasons = await repository.denial_reasons(conn, tenant, since, until, bucket)
        return DecisionCounts(tenant, since, until, bucket, decisions, reasons)
