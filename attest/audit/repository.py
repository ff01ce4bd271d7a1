"""SQL for the audit trail. Events hold pseudonymous ids and digests only."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from attest.audit.models import AuditEvent, AuditQuery, DecisionCount, ReasonCount
from attest.db import Conn

__all__ = ["decision_counts", "denial_reasons", "insert_event", "insert_events", "list_events"]

INSERT_EVENT = """
INSERT INTO audit_events (event_id, type, occurred_at, actor, tenant, subject_id, data)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id
"""

# Many events in one statement (batch onboarding), in the order of ``seq``.
INSERT_EVENTS = """
INSERT INTO audit_events (event_id, type, occurred_at, actor, tenant, subject_id, data)
SELECT gen_random_uuid(), type, $2, $3, $4, subject_id, data
FROM jsonb_to_recordset($1::jsonb) AS e(seq integer, type text, subject_id uuid, data jsonb)
ORDER BY seq
"""

SELECT_EVENTS = (
    "SELECT id, event_id, type, occurred_at, actor, tenant, subject_id, data, log_index "
    "FROM audit_events"
)
# Pages follow the log order, from log position $1; events the sequencer has not reached
# yet (log_index NULL) come after the last sequenced one, in append order ($1 unused).
SEQUENCED = ("log_index >= $1", "log_index")
PENDING = ("log_index IS NULL AND $1::bigint >= 0", "id")


async def insert_event(
    conn: Conn,
    event_type: str,
    *,
    occurred_at: datetime,
    actor: uuid.UUID | None,
    tenant: str | None,
    subject_id: uuid.UUID | None,
    data: Mapping[str, Any],
) -> int:
    event_id: int = await conn.fetchval(
        INSERT_EVENT, uuid.uuid4(), event_type, occurred_at, actor, tenant, subject_id, dict(data)
    )
    return event_id


async def insert_events(
    conn: Conn,
    events: list[dict[str, object]],
    *,
    occurred_at: datetime,
    actor: uuid.UUID,
    tenant: str,
) -> None:
    rows = [{"seq": seq, **event} for seq, event in enumerate(events)]
    await conn.execute(INSERT_EVENTS, rows, occurred_at, actor, tenant)


def _where(query: AuditQuery, part: tuple[str, str] = SEQUENCED) -> tuple[str, list[Any]]:
    """A parameterised WHERE clause: only fixed column names and $n placeholders."""
    head, order = part
    clauses = [head]
    params: list[Any] = [query.from_index]
    if query.tenant is not None:
        # A tenant's auditors may ask for the platform's events too (tenant NULL: policies,
        # audiences, keys), which govern the tenant's decisions as well.
        params.append(query.tenant)
        either = " OR tenant IS NULL" if query.include_platform else ""
        clauses.append(f"(tenant = ${len(params)}{either})")
    for column, op, value in (
        ("type", "=", query.event_type),
        ("subject_id", "=", query.subject_id),
        ("occurred_at", ">=", query.since),
        ("occurred_at", "<", query.until),
    ):
        if value is not None:
            params.append(value)
            clauses.append(f"{column} {op} ${len(params)}")
    params.append(query.limit)
    return " AND ".join(clauses) + f" ORDER BY {order} LIMIT ${len(params)}", params


async def list_events(conn: Conn, query: AuditQuery) -> list[AuditEvent]:
    """Sequenced events from ``query.from_index`` in log order, then (when the page has
    room) the pending ones. Log positions are given after commit, so a cursor taken from a
    log position can never pass an event that commits late: that event gets a later one."""
    where, params = _where(query)
    rows = list(await conn.fetch(f"{SELECT_EVENTS} WHERE {where}", *params))
    if len(rows) < query.limit:
        where, params = _where(replace(query, limit=query.limit - len(rows)), PENDING)
        rows += await conn.fetch(f"{SELECT_EVENTS} WHERE {where}", *params)
    return [
        AuditEvent(
            id=r["id"],
            event_id=r["event_id"],
            type=r["type"],
            occurred_at=r["occurred_at"],
            actor=r["actor"],
            tenant=r["tenant"],
            subject_id=r["subject_id"],
            data=r["data"],
            log_index=r["log_index"],
        )
        for r in rows
    ]


# Decisions per bucket of $1 from $2 (inclusive) to $3 (exclusive), per kind and audience;
# $4 a tenant or NULL for every tenant. On audit_events_time (occurred_at).
DECISION_COUNTS = """
SELECT date_bin($1::interval, occurred_at, $2) AS bucket, type,
       coalesce(data->>'audience', '') AS audience, count(*) AS n
FROM audit_events
WHERE type IN ('token.issued', 'token.denied') AND occurred_at >= $2 AND occurred_at < $3
  AND ($4::text IS NULL OR tenant = $4)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
# Denials per bucket and reason code (data.reasons, an array of codes).
DENIAL_REASONS = """
SELECT date_bin($1::interval, e.occurred_at, $2) AS bucket, r.reason, count(*) AS n
FROM audit_events AS e
CROSS JOIN LATERAL jsonb_array_elements_text(
    CASE jsonb_typeof(e.data->'reasons') WHEN 'array' THEN e.data->'reasons' ELSE '[]' END
) AS r(reason)
WHERE e.type = 'token.denied' AND e.occurred_at >= $2 AND e.occurred_at < $3
  AND ($4::text IS NULL OR e.tenant = $4)
GROUP BY 1, 2 ORDER BY 1, 2
"""


async def decision_counts(
    conn: Conn, tenant: str | None, since: datetime, until: datetime, bucket: timedelta
) -> list[DecisionCount]:
    rows = await conn.fetch(DECISION_COUNTS, bucket, since, until, tenant)
    return [
        DecisionCount(
            bucket=r["bucket"],
            kind="issued" if r["type"] == "token.issued" else "denied",
            audience=r["audience"],
            count=r["n"],
        )
        for r in rows
    ]


async def denial_reasons(
    conn: Conn, tenant: str | None, since: datetime, until: datetime, bucket: timedelta
) -> list[ReasonCount]:
    rows = await conn.fetch(DENIAL_REASONS, bucket, since, until, tenant)
    return [ReasonCount(bucket=r["bucket"], reason=r["reason"], count=r["n"]) for r in rows]
