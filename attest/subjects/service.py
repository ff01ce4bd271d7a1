"""Subjects: onboard (idempotent per tenant and external_ref), find with tenant isolation,
revoke. A client never learns of another tenant's subjects.

``resolve`` and the repository passthroughs take a connection so that other use cases
(evidence, issuance) read and lock the subject inside their own transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from attest.audit import service as audit
from attest.clients.models import Client
from attest.db import Conn
from attest.errors import Forbidden, NotFound
from attest.ids import parse_uuid
from attest.status import service as status
from attest.subjects import repository
from attest.subjects.models import Lock, Subject

__all__ = [
    "SubjectRef",
    "SubjectService",
    "create_many",
    "get",
    "ids_by_external_refs",
    "lock",
    "reference",
    "resolve",
    "share_many",
    "target_tenant",
    "visible",
]


def target_tenant(client: Client, requested: str | None) -> str:
    """The tenant a call acts in: the client's own; an admin may name another."""
    if requested is None or requested == client.tenant:
        return client.tenant
    if not client.is_admin:
        raise Forbidden("A client acts only in its own tenant.")
    return requested


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """A subject as a request names it, checked: by id, or by external_ref in a tenant."""

    id: uuid.UUID | None = None
    tenant_ref: tuple[str, str] | None = None


def reference(
    client: Client,
    *,
    subject_id: str | None = None,
    external_ref: str | None = None,
    tenant: str | None = None,
) -> SubjectRef:
    """The subject a request names (an id that is no UUID, or another tenant named by a
    client that is not an admin, is refused here, before any read)."""
    if subject_id is not None:
        return SubjectRef(id=parse_uuid(subject_id, "subject"))
    if external_ref is not None:
        return SubjectRef(tenant_ref=(target_tenant(client, tenant), external_ref))
    raise NotFound("No subject named.")


def visible(client: Client, found: Subject | None) -> Subject:
    # Same answer for "does not exist" and "belongs to another tenant".
    if found is None or not client.can_see(found.tenant):
        raise NotFound("No subject with this id.")
    return found


async def resolve(
    conn: Conn,
    client: Client,
    *,
    subject_id: str | None = None,
    external_ref: str | None = None,
    tenant: str | None = None,
    lock: Lock = None,
) -> Subject:
    """Find a subject the client may see, by id or by external_ref in its tenant; with
    ``lock``, the row is locked until the end of the caller's transaction."""
    ref = reference(client, subject_id=subject_id, external_ref=external_ref, tenant=tenant)
    found: Subject | None
    if ref.id is not None:
        found = await repository.get_subject(conn, ref.id, lock=lock)
    else:
        assert ref.tenant_ref is not None  # noqa: S101 - one of the two is set
        found = await repository.get_by_external_ref(conn, *ref.tenant_ref)
        if found is not None and lock is not None:
            found = await repository.get_subject(conn, found.id, lock=lock)
    return visible(client, found)


async def share_many(
    conn: Conn, refs: list[SubjectRef], locks: tuple[list[str], int] = ([], 0)
) -> dict[SubjectRef, Subject]:
    """The subjects named, each row locked FOR SHARE until the end of the caller's
    transaction, in one round trip (those that do not exist are absent); ``locks``: the
    caller's advisory locks (keys, seed) taken shared in the same round trip."""
    ids = sorted({r.id for r in refs if r.id is not None})
    by_ref = sorted({r.tenant_ref for r in refs if r.tenant_ref is not None})
    rows = await repository.share_many(conn, ids, by_ref, locks)
    found: dict[SubjectRef, Subject] = {}
    for subject in rows:
        found[SubjectRef(id=subject.id)] = subject
        found[SubjectRef(tenant_ref=(subject.tenant, subject.external_ref))] = subject
    return found


async def get(conn: Conn, subject_id: uuid.UUID) -> Subject | None:
    """The subject, for a use case that already knows it may see it (a re-evaluation)."""
    return await repository.get_subject(conn, subject_id)


async def lock(conn: Conn, subject_id: uuid.UUID) -> Subject | None:
    """Lock a subject for a change of its eligibility (evidence closed, approved) until
    the end of the caller's transaction: a token decision in flight finishes first."""
    return await repository.get_subject(conn, subject_id, lock="update")


async def ids_by_external_refs(
    conn: Conn, tenant: str, external_refs: list[str]
) -> dict[str, uuid.UUID]:
    return await repository.ids_by_external_refs(conn, tenant, external_refs)


async def create_many(
    conn: Conn, tenant: str, external_refs: list[str], now: datetime
) -> dict[str, uuid.UUID]:
    """Insert the subjects the tenant does not have yet (no audit events: the caller
    records them with what it onboarded alongside)."""
    return await repository.insert_subjects(conn, tenant, external_refs, now)


class SubjectService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def onboard(
        self, client: Client, external_ref: str, tenant: str | None, now: datetime
    ) -> tuple[Subject, bool]:
        """The subject with this external_ref, created if new (True) or existing (False)."""
        target = target_tenant(client, tenant)
        async with self._pool.acquire() as conn, conn.transaction():
            created = await repository.insert_subject(conn, target, external_ref, now)
            if created is None:
                existing = await repository.get_by_external_ref(conn, target, external_ref)
                assert existing is not None  # noqa: S101 - the conflicting row exists
                return existing, False
            # The external reference is the identity team's own key: it stays out of the
            # audit log.
            await audit.record(
                conn,
                "subject.onboarded",
                occurred_at=now,
                actor=client.id,
                tenant=target,
                subject_id=created.id,
            )
        return created, True

    async def find(
        self, client: Client, *, subject_id: str | None = None, external_ref: str | None = None
    ) -> Subject:
        """A subject the client may see, by id or by external_ref in its tenant (NotFound
        otherwise: the same answer for another tenant's)."""
        async with self._pool.acquire() as conn:
            return await resolve(conn, client, subject_id=subject_id, external_ref=external_ref)

    async def revoke(
        self, client: Client, subject_id: str, *, reason_given: bool, now: datetime
    ) -> Subject:
        """Revoke a subject's eligibility. It waits for a token decision in flight for the
        subject (which holds the row FOR SHARE) and every later one sees it."""
        async with self._pool.acquire() as conn, conn.transaction():
            subject = await resolve(conn, client, subject_id=subject_id, lock="update")
            revoked = await repository.revoke_subject(conn, subject.id, now)
            if revoked is None:
                return subject
            # Outstanding tokens become INVALID in their status lists, with the event.
            tokens = await status.mark(conn, "subject", subject.id, now)
            await audit.record(
                conn,
                "subject.revoked",
                occurred_at=now,
                actor=client.id,
                tenant=subject.tenant,
                subject_id=subject.id,
                data={"reason_given": reason_given, "tokens_revoked": tokens},
            )
        return revoked
