"""API clients: authenticate a key; create, list, revoke and rotate clients under the
scope-granting rule; tell whether two clients are related (for four-eyes).

The key format and its constant-time check are pure (:mod:`attest.clients.apikeys`);
this module owns the use cases and the one place where the granting rule is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import asyncpg

from attest.audit import service as audit
from attest.clients import repository
from attest.clients.apikeys import generate_key, parse_key, secret_digest, secret_matches
from attest.clients.models import (
    ALL_SCOPES,
    Client,
    ClientRecord,
    CreatedClient,
    KeyRecord,
    NewKey,
    RotatedKey,
)
from attest.clients.ratelimit import Counters, PostgresCounters, RedisCounters, retry_after
from attest.clock import Clock, utc_now
from attest.db import Conn
from attest.db.notify import Cache, Listener, publish
from attest.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    UnprocessableInput,
)
from attest.ids import parse_uuid
from attest.metrics import Metrics
from attest.settings import Settings

__all__ = [
    "ALL_SCOPES",
    "MAX_GRACE_SECONDS",
    "Client",
    "ClientService",
    "Limits",
    "NewKey",
    "PostgresCounters",
    "RedisCounters",
    "check_grant",
    "check_manage",
    "count_clients",
    "generate_key",
    "list_clients",
    "parse_key",
    "register",
    "related",
    "require_admin",
    "revoke",
    "rotate",
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


#: The cache topic of key records (attest.db.notify), keyed by key id.
KEY_TOPIC = "apikey"

#: The longest a rotated-out key keeps working (DESIGN.md: grace_seconds 0..86400).
MAX_GRACE_SECONDS = 86_400
#: The most clients one listing returns.
LIST_LIMIT = 1000


def check_manage(caller: Client, target: ClientRecord) -> None:
    """Whether ``caller`` may revoke or rotate ``target``: an admin any client; any other
    client only clients of its own tenant whose scopes are a subset of its own (rotating a
    key hands its scopes over, so this is the granting rule applied to an existing client)."""
    if caller.is_admin:
        return
    if target.tenant != caller.tenant:
        raise Forbidden("A client manages only clients of its own tenant.")
    if target.is_admin:
        raise Forbidden("Only an admin client manages an admin client.")
    excess = sorted(set(target.scopes) - caller.scopes)
    if excess:
        raise Forbidden(
            f"A client manages only clients whose scopes it holds; it lacks: {', '.join(excess)}."
        )


def require_admin(caller: Client, what: str) -> None:
    """Platform configuration (policies, audiences) governs every tenant's decisions, so
    only an admin client changes it, whatever scopes a tenant client holds."""
    if not caller.is_admin:
        raise Forbidden(
            f"{what} is platform configuration shared by every tenant; it needs an admin "
            "client, not only the scope.",
            reason="admin_required",
        )


async def related(conn: Conn, a: uuid.UUID, b: uuid.UUID) -> bool:
    """Whether one of two clients created the other or rotated its key, directly or through
    other clients, in either direction (the four-eyes relation; DESIGN.md)."""
    if a == b:
        return True
    return await repository.related(conn, a, b)


async def list_clients(conn: Conn, tenant: str | None) -> list[ClientRecord]:
    """The clients of ``tenant`` (None: every tenant), oldest first."""
    return await repository.list_clients(conn, tenant, LIST_LIMIT)


async def revoke(
    conn: Conn, client_id: uuid.UUID, *, by: Client | None, now: datetime, via: str
) -> ClientRecord:
    """Disable a client and record it. Call inside a transaction; ``by`` None is the
    operator at the database (the CLI)."""
    target = await repository.get_client(conn, client_id, for_update=True)
    if target is None or (by is not None and not by.can_see(target.tenant)):
        raise NotFound("No client with this id.")
    if by is not None:
        check_manage(by, target)
    revoked = await repository.revoke(conn, client_id, now, by.id if by else None)
    if revoked is None:
        raise Conflict("The client is revoked already.")
    # Every instance drops its cached key records when this commits: the client's current
    # key and any key still in its grace (all of them: revocations are rare).
    await publish(conn, KEY_TOPIC, "*")
    await audit.record(
        conn,
        "client.revoked",
        occurred_at=now,
        actor=by.id if by else None,
        tenant=target.tenant,
        data={"client_id": str(target.id), "key_id": target.key_id, "via": via},
    )
    return revoked


async def rotate(
    conn: Conn,
    client_id: uuid.UUID,
    *,
    grace_seconds: int,
    by: Client | None,
    now: datetime,
    via: str,
) -> RotatedKey:
    """Give a client a new key; the previous one works for ``grace_seconds`` more. Call
    inside a transaction. The rotating client is linked to the target (it holds its key)."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise UnprocessableInput(
            f"grace_seconds must be between 0 and {MAX_GRACE_SECONDS}.",
            errors=[{"field": "$.grace_seconds", "message": "out of range"}],
        )
    target = await repository.get_client(conn, client_id, for_update=True)
    if target is None or (by is not None and not by.can_see(target.tenant)):
        raise NotFound("No client with this id.")
    if by is not None:
        check_manage(by, target)
    if target.disabled_at is not None:
        raise Conflict("The client is revoked; its key cannot be rotated.")
    key = generate_key()
    not_after = now + timedelta(seconds=grace_seconds)
    updated = await repository.replace_key(
        conn, target, key, now=now, not_after=not_after, by=by.id if by else None
    )
    # Cached records of the previous key (no end of grace yet) and of older keys whose grace
    # this shortens are dropped everywhere when this commits.
    await publish(conn, KEY_TOPIC, "*")
    await audit.record(
        conn,
        "client.key_rotated",
        occurred_at=now,
        actor=by.id if by else None,
        tenant=target.tenant,
        data={
            "client_id": str(target.id),
            "key_id": key.key_id,
            "previous_key_id": target.key_id,
            "grace_seconds": grace_seconds,
            "via": via,
        },
    )
    return RotatedKey(updated, key, target.key_id, not_after)


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
    expires_at: datetime | None = None,
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
        now=now,
        expires_at=expires_at,
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
            "expires_at": expires_at.isoformat() if expires_at else None,
            "via": via,
        },
    )
    return client_id


async def count_clients(conn: Conn) -> int:
    return await repository.count_clients(conn)


@dataclass(frozen=True, slots=True)
class Limits:
    """Failed-authentication throttling per key id and request rate per client."""

    auth_failures: int
    auth_window: int
    client_rate: int
    client_window: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.auth_failure_limit,
            settings.auth_failure_window,
            settings.client_rate_limit,
            settings.client_rate_window,
        )


class ClientService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock = utc_now,
        limits: Limits | None = None,
        counters: Counters | None = None,
        metrics: Metrics | None = None,
        listener: Listener | None = None,
    ) -> None:
        self._pool = pool
        #: Key records by key id, invalidated across instances (None: every request reads).
        self._keys: Cache[str, KeyRecord] | None = listener.cache(KEY_TOPIC) if listener else None
        self._clock = clock
        self._limits = limits or Limits.of(Settings())
        self._counters: Counters = counters or PostgresCounters(pool)
        self._metrics = metrics or Metrics()

    async def authenticate(self, api_key: str) -> Client:
        """The client a presented key belongs to; every failure is one 401 answer. A revoked
        or expired client, or a key past its rotation grace, is refused.

        Key records are cached per key id (``attest.db.notify``): revoking a client or
        rotating its key notifies every instance in the transaction of the change, and
        without notifications an entry is trusted for at most the staleness bound
        (``ATTEST_CACHE_MAX_STALENESS_MS``). Expiry and the end of a grace are checked
        against the request's ``now`` on every use, cached or not.

        Throttled on every instance (shared counters): a key id with too many failed
        attempts in a window is refused with 429 until the window ends, whatever secret is
        presented; a client over its request rate is refused with 429. A good key costs
        one round trip (both counters in one statement, the key record from the cache).
        """
        parsed = parse_key(api_key)
        if parsed is None:
            self._metrics.auth_failures.labels("malformed").inc()
            raise Unauthenticated("The API key is malformed.")
        now = self._clock()
        limits = self._limits
        failures_key = f"auth:{parsed.key_id}"
        found = await self._key_record(parsed.key_id, now)
        stored = found.digest if found is not None else None
        # Compared even for an unknown key id, so both paths take the same time.
        if not secret_matches(parsed.secret, stored) or found is None:
            if (
                await self._counters.read(failures_key, limits.auth_window, now)
                >= limits.auth_failures
            ):
                raise self._throttled(now)
            await self._failed(parsed.key_id, failures_key, found, now)
        client = found.client
        failures, requests = await self._counters.gate(
            failures_key,
            limits.auth_window,
            f"client:{client.id}",
            limits.client_window,
            limits.auth_failures,
            now,
        )
        if failures >= limits.auth_failures:
            raise self._throttled(now)
        if requests > limits.client_rate:
            self._metrics.rate_limited.inc()
            if requests == limits.client_rate + 1:
                await self._security_event(
                    "security.rate_limited",
                    now,
                    actor=client.id,
                    tenant=client.tenant,
                    data={"key_id": client.key_id, "limit": limits.client_rate},
                )
            raise RateLimited(
                "This client is over its request rate; retry later.",
                retry_after=retry_after(now, limits.client_window),
            )
        return client

    async def reauthenticate(self, client_id: uuid.UUID, key_id: str) -> Client | None:
        """The client again, for a console session that signed in with ``key_id`` (whose
        secret it never keeps): None once the client is revoked or expired, or the key is
        past its rotation grace. Read from the database on every call, as authenticate
        does, so the current scopes apply and every instance ends the session at once."""
        now = self._clock()
        found = await repository.find_by_key_id(self._pool, key_id, now)
        if found is None or not found.valid_at(now) or found.client.id != client_id:
            return None
        return found.client

    async def _key_record(self, key_id: str, now: datetime) -> KeyRecord | None:
        """The key id's record if it works at ``now``: from the cache, else the database."""

        async def load() -> KeyRecord | None:
            return await repository.find_by_key_id(self._pool, key_id, now)

        found = await (self._keys.get_or_load(key_id, load) if self._keys else load())
        return found if found is not None and found.valid_at(now) else None

    def _throttled(self, now: datetime) -> RateLimited:
        self._metrics.auth_failures.labels("throttled").inc()
        return RateLimited(
            "Too many failed authentications for this key id; retry later.",
            retry_after=retry_after(now, self._limits.auth_window),
        )

    async def _failed(
        self, key_id: str, failures_key: str, found: KeyRecord | None, now: datetime
    ) -> NoReturn:
        limits = self._limits
        self._metrics.auth_failures.labels("invalid").inc()
        count = await self._counters.hit(failures_key, limits.auth_window, now)
        # Recorded at the first failure of a window and when the key id is locked out:
        # a flood of attempts is two events, not a flood of events.
        if count in (1, limits.auth_failures):
            await self._security_event(
                "security.auth_failed",
                now,
                actor=None,
                tenant=found.client.tenant if found else None,
                data={
                    "key_id": key_id,
                    "failures_in_window": count,
                    "locked_out": count >= limits.auth_failures,
                },
            )
        raise Unauthenticated("The API key is not valid.")

    async def refused_scope(self, client: Client, scope: str) -> None:
        """Count a request refused for a missing scope; record the first of each window."""
        self._metrics.scope_refusals.labels(scope).inc()
        now = self._clock()
        count = await self._counters.hit(f"scope:{client.id}", self._limits.auth_window, now)
        if count == 1:
            await self._security_event(
                "security.scope_refused",
                now,
                actor=client.id,
                tenant=client.tenant,
                data={"key_id": client.key_id, "scope": scope},
            )

    async def _security_event(
        self,
        event_type: str,
        now: datetime,
        *,
        actor: uuid.UUID | None,
        tenant: str | None,
        data: dict[str, object],
    ) -> None:
        """A security event: key ids and counts, never a secret."""
        async with self._pool.acquire() as conn, conn.transaction():
            await audit.record(
                conn, event_type, occurred_at=now, actor=actor, tenant=tenant, data=data
            )

    async def close(self) -> None:
        await self._counters.close()

    async def create(
        self,
        caller: Client,
        *,
        name: str,
        scopes: list[str],
        tenant: str | None,
        now: datetime,
        expires_at: datetime | None = None,
    ) -> CreatedClient:
        target = check_grant(caller, scopes, tenant)
        if expires_at is not None and (
            expires_at.tzinfo is None or expires_at <= now or not _storable(expires_at)
        ):
            raise UnprocessableInput(
                "expires_at must be a future time with a UTC offset.",
                errors=[{"field": "$.expires_at", "message": "not a future RFC 3339 time"}],
            )
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
                expires_at=expires_at,
            )
        return CreatedClient(client_id, name, target, list(scopes), key, expires_at)

    async def listing(self, caller: Client) -> list[ClientRecord]:
        """The clients of the caller's tenant (admin: every tenant); never their keys."""
        async with self._pool.acquire() as conn:
            return await list_clients(conn, None if caller.is_admin else caller.tenant)

    async def get(self, caller: Client, client_id: str) -> ClientRecord:
        ident = parse_uuid(client_id, "client")
        async with self._pool.acquire() as conn:
            found = await repository.get_client(conn, ident)
        if found is None or not caller.can_see(found.tenant):
            raise NotFound("No client with this id.")
        return found

    async def revoke(self, caller: Client, client_id: str, *, now: datetime) -> ClientRecord:
        ident = parse_uuid(client_id, "client")
        async with self._pool.acquire() as conn, conn.transaction():
            return await revoke(conn, ident, by=caller, now=now, via="api")

    async def rotate(
        self, caller: Client, client_id: str, *, grace_seconds: int, now: datetime
    ) -> RotatedKey:
        ident = parse_uuid(client_id, "client")
        async with self._pool.acquire() as conn, conn.transaction():
            return await rotate(
                conn, ident, grace_seconds=grace_seconds, by=caller, now=now, via="api"
            )


def _storable(moment: datetime) -> bool:
    """Whether ``moment`` has a UTC instant a timestamptz holds (9999-12-31T23:59-23:59 is in
    the year 10000 once in UTC: a bad input, not a 500)."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True
