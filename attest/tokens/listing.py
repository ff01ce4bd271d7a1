"""The tokens issued for a subject, with their status now: valid, revoked, suspended or
expired (a read for the console's subject page; never the tokens themselves)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from attest.principal import Client
from attest.tokens import repository
from attest.tokens.models import IssuedEntry

__all__ = ["IssuedToken", "TokenListing", "token_state"]

# Status-list values (attest.status.models.StatusValue): VALID, INVALID, SUSPENDED.
_STATES = {0: "valid", 1: "revoked", 2: "suspended"}


def token_state(status: int, expires_at: datetime, now: datetime) -> str:
    """What the token is now: revoked (INVALID is final, also after expiry), else expired
    once ``exp`` has passed (a suspension is temporary: past exp it no longer matters),
    else suspended or valid. An unknown value is never shown as valid."""
    state = _STATES.get(status, "revoked")
    if state == "revoked":
        return state
    if expires_at <= now:
        return "expired"
    return state


@dataclass(frozen=True, slots=True)
class IssuedToken:
    entry: IssuedEntry
    state: str


class TokenListing:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def of_subject(
        self, client: Client, subject_id: uuid.UUID, now: datetime, *, limit: int = 200
    ) -> list[IssuedToken]:
        """The subject's tokens, newest first (at most ``limit``), that ``client`` may see."""
        async with self._pool.acquire() as conn:
            entries = await repository.issued_for_subject(conn, subject_id, limit)
        return [
            IssuedToken(e, token_state(e.status, e.expires_at, now))
            for e in entries
            if client.can_see(e.tenant)
        ]
