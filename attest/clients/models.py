"""API clients: the authenticated principal (defined in attest.principal, for the HTTP
guards below the domains), a new key, a client just created."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from attest.principal import ALL_SCOPES, Client

__all__ = [
    "ALL_SCOPES",
    "Client",
    "ClientRecord",
    "CreatedClient",
    "KeyRecord",
    "NewKey",
    "RotatedKey",
]


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    secret: str

    @property
    def api_key(self) -> str:
        return f"attest_{self.key_id}_{self.secret}"


@dataclass(frozen=True, slots=True)
class CreatedClient:
    """A client just created; ``key`` is shown once and never stored."""

    id: uuid.UUID
    name: str
    tenant: str
    scopes: list[str]
    key: NewKey
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A client as listed and shown: who made it, its current key id, never a secret."""

    id: uuid.UUID
    name: str
    tenant: str
    scopes: list[str]
    is_admin: bool
    key_id: str
    created_at: datetime
    created_by: uuid.UUID | None
    expires_at: datetime | None
    disabled_at: datetime | None
    disabled_by: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class RotatedKey:
    """A rotation: the new key (shown once) and until when the previous one still works."""

    client: ClientRecord
    key: NewKey
    previous_key_id: str
    previous_not_after: datetime


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What authenticating a key id needs: its client, the digest of its secret, and the
    moment it stops working by time alone (client expiry, end of a rotation grace; None:
    never), checked against each request's ``now`` so a cached record expires on time."""

    client: Client
    digest: bytes
    valid_until: datetime | None

    def valid_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until
