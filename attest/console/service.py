"""Console sessions: sign in with an API key, resume on every request, sign out.

The browser's cookie carries 256 random bits; the database keeps only their SHA-256 with
the client, the key id that signed in and a per-session CSRF token. Every request resumes
the session by re-reading the client through the clients service, so the console acts with
exactly that key's current scopes and tenant, and a revoked or expired client, or a key past
its rotation grace, ends the session at once on every instance. The API key's secret is
never kept.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import asyncpg

from attest.clock import Clock, utc_now
from attest.console import repository
from attest.principal import Client

__all__ = ["Session", "SessionService", "SignedIn"]


class Authenticator(Protocol):
    """What sessions need of the clients service."""

    async def authenticate(self, api_key: str) -> Client: ...

    async def reauthenticate(self, client_id: UUID, key_id: str) -> Client | None: ...


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: the client it acts as, its CSRF token, when it ends."""

    client: Client
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session and the cookie value that names it (shown to the browser only)."""

    session: Session
    cookie: str


def _digest(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode("utf-8")).digest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


class SessionService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clients: Authenticator,
        *,
        ttl: int,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._clients = clients
        self._ttl = timedelta(seconds=ttl)
        self._clock = clock

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    async def sign_in(self, api_key: str) -> SignedIn:
        """A session for the client ``api_key`` authenticates as (the clients service's
        rules and throttling: Unauthenticated or RateLimited otherwise)."""
        client = await self._clients.authenticate(api_key)
        now = self._clock()
        cookie = secrets.token_urlsafe(32)
        csrf = new_csrf_token()
        expires_at = now + self._ttl
        async with self._pool.acquire() as conn, conn.transaction():
            await repository.delete_expired(conn, now)
            await repository.insert_session(
                conn,
                _digest(cookie),
                client_id=client.id,
                key_id=client.key_id,
                csrf_token=csrf,
                now=now,
                expires_at=expires_at,
            )
        return SignedIn(Session(client, csrf, expires_at), cookie)

    async def resume(self, cookie: str) -> Session | None:
        """The session a cookie names, with its client re-read now; None when there is
        none, it expired, or its client or key no longer authenticates (then it is ended)."""
        if not cookie or len(cookie) > 200:
            return None
        digest = _digest(cookie)
        async with self._pool.acquire() as conn:
            found = await repository.find_session(conn, digest, self._clock())
        if found is None:
            return None
        client = await self._clients.reauthenticate(found.client_id, found.key_id)
        if client is None:
            await self.sign_out(cookie)
            return None
        return Session(client, found.csrf_token, found.expires_at)

    async def sign_out(self, cookie: str) -> None:
        """End the session a cookie names (nothing when there is none)."""
        async with self._pool.acquire() as conn:
            await repository.delete_session(conn, _digest(cookie))
