"""Subject lookup with tenant isolation: a client never learns of another tenant's subjects."""

from __future__ import annotations

import uuid

import asyncpg

from attest.clients.service import Client
from attest.db import Conn
from attest.errors import Forbidden, NotFound
from attest.subjects import repository

__all__ = ["parse_uuid", "resolve_subject", "target_tenant"]


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        # An id that cannot exist is just an unknown id.
        raise NotFound(f"No {what} with this id.") from None


async def resolve_subject(
    conn: Conn,
    client: Client,
    *,
    subject_id: str | None = None,
    external_ref: str | None = None,
    tenant: str | None = None,
    for_update: bool = False,
) -> asyncpg.Record:
    """Find a subject the client may see, by id or by external_ref in its tenant."""
    row: asyncpg.Record | None
    if subject_id is not None:
        row = await repository.get_subject(
            conn, parse_uuid(subject_id, "subject"), for_update=for_update
        )
    elif external_ref is not None:
        row = await repository.get_by_external_ref(
            conn, target_tenant(client, tenant), external_ref
        )
        if row is not None and for_update:
            row = await repository.get_subject(conn, row["id"], for_update=True)
    else:
        raise NotFound("No subject named.")
    # Same answer for "does not exist" and "belongs to another tenant".
    if row is None or not client.can_see(row["tenant"]):
        raise NotFound("No subject with this id.")
    return row


def target_tenant(client: Client, requested: str | None) -> str:
    """The tenant a call acts in: the client's own; an admin may name another."""
    if requested is None or requested == client.tenant:
        return client.tenant
    if not client.is_admin:
        raise Forbidden("A client acts only in its own tenant.")
    return requested
