"""API clients: authenticate a key, create a client under the scope-granting rule.

The key format and its constant-time check are pure (:mod:`attest.clients.apikeys`);
this module owns the use cases and the one place where the granting rule is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from attest.audit import service as audit
from attest.clients import repository
from attest.clients.apikeys import generate_key, parse_key, secret_digest, secret_matches
from attest.clients.models import ALL_SCOPES, Client, CreatedClient, NewKey
from attest.db import Conn
from attest.errors import Forbidden, Unauthenticated, UnprocessableInput

__all__ = [
    "ALL_SCOPES",
    "Client",
    "ClientService",
    "NewKey",
    "check_grant",
    "count_clients",
    "generate_key",
    "parse_key",
    "register",
    "secret_digest",
    "secret_matches",
]


def check_grant(caller: Client, scopes: Sequence[str], tenant: str | None) -> str:
    """The tenant a new client is created in, if ``caller`` may grant ``scopes`` there.

    Scopes must be known and not repeat; a non-admin client creates clients only in its
    own tenant and grants only scopes it holds itself.
    """
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise UnprocessableInput(
            "Unknown scopes.",
            errors=[{"field": "$.scopes", "message": f"unknown scope {s!r}"} for s in unknown],
            known_scopes=list(ALL_SCOPES),
        )
    if len(set(scopes)) != len(scopes):
        raise UnprocessableInput(
            "Scopes must not repeat.", errors=[{"field": "$.scopes", "message": "duplicate"}]
        )
    target = tenant or caller.tenant
    if not caller.is_admin:
        if target != caller.tenant:
            raise Forbidden("A client creates clients only in its own tenant.")
        excess = sorted(set(scopes) - caller.scopes)
        if excess:
            raise Forbidden(f"A client cannot grant scopes it lacks: {', '.join(excess)}.")
    return target


async def register(
    conn: Conn,
    *,
    key: NewKey,
    name: str,
    tenant: str,
    scopes: list[str],
    is_admin: bool,
    created_by: uuid.UUID | None,
    now: datetime,
    via: str,
) -> uuid.UUID:
    """Store a new client and its audit event. Call inside a transaction: both commit
    together (the API, the CLI and the bootstrap admin all come through here)."""
    client_id = await repository.insert_client(
        conn,
        key=key,
        name=name,
        tenant=tenant,
        scopes=scopes,
        is_admin=is_admin,
        created_by=created_by,
    )
    await audit.record(
        conn,
        "client.created",
        occurred_at=now,
        actor=created_by,
        tenant=tenant,
        data={
            "client_id": str(client_id),
            "key_id": key.key_id,
            "scopes": scopes,
            "admin": is_admin,
            "via": via,
        },
    )
    return client_id


async def count_clients(conn: Conn) -> int:
    return await repository.count_clients(conn)


class ClientService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def authenticate(self, api_key: str) -> Client:
        """The client a presented key belongs to; every failure is one 401 answer."""
        parsed = parse_key(api_key)
        if parsed is None:
            raise Unauthenticated("The API key is malformed.")
        found = await repository.find_by_key_id(self._pool, parsed.key_id)
        stored = found[1] if found else None
        # Compared even for an unknown key id, so both paths take the same time.
        if not secret_matches(parsed.secret, stored) or found is None:
            raise Unauthenticated("The API key is not valid.")
        return found[0]

    async def create(
        self,
        caller: Client,
        *,
        name: str,
        scopes: list[str],
        tenant: str | None,
        now: datetime,
    ) -> CreatedClient:
        target = check_grant(caller, scopes, tenant)
        key = generate_key()
        async with self._pool.acquire() as conn, conn.transaction():
            client_id = await register(
                conn,
                key=key,
                name=name,
                tenant=target,
                scopes=list(scopes),
                is_admin=False,
                created_by=caller.id,
                now=now,
                via="api",
            )
        return CreatedClient(client_id, name, target, list(scopes), key)
