"""SQL for the audit trail. Events hold pseudonymous ids and digests only."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from attest.db import Conn

__all__ = ["AuditQuery", "list_events", "record", "record_many"]

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
    event_id: int = await conn.fetchval(
        INSERT_EVENT,
        uuid.uuid4(),
        event_type,
        occurred_at,
        actor,
        tenant,
        subject_id,
        dict(data or {}),
    )
    return event_id


class AuditQuery:
    """Filters for :func:`list_events`; builds a parameterised WHERE clause."""

    def __init__(
        self,
        *,
        tenant: str | None,
        event_type: str | None = None,
        subject_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> None:
        self.clauses = ["id > $1"]
        self.params: list[Any] = [after_id]
        for column, op, value in (
            ("tenant", "=", tenant),
            ("type", "=", event_type),
            ("subject_id", "=", subject_id),
            ("occurred_at", ">=", since),
            ("occurred_at", "<", until),
        ):
            if value is not None:
                self.params.append(value)
                self.clauses.append(f"{column} {op} ${len(self.params)}")
        self.params.append(limit)
        self.limit_param = f"${len(self.params)}"


async def list_events(conn: Conn, query: AuditQuery) -> list[asyncpg.Record]:
    # Only fixed column names and $n placeholders reach the SQL text.
    sql = (
        "SELECT id, event_id, type, occurred_at, actor, tenant, subject_id, data "
        "FROM audit_events WHERE "
        + " AND ".join(query.clauses)
        + f" ORDER BY id LIMIT {query.limit_param}"
    )
    return list(await conn.fetch(sql, *query.params))


async def record_many(
    conn: Conn,
    events: list[dict[str, object]],
    *,
    occurred_at: datetime,
    actor: uuid.UUID,
    tenant: str,
) -> None:
    """Append audit events ``{"type", "subject_id", "data"}`` in list order."""
    if not events:
        return
    rows = [{"seq": seq, **event} for seq, event in enumerate(events)]
    await conn.execute(INSERT_EVENTS, rows, occurred_at, actor, tenant)
