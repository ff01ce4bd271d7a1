"""API clients as the service sees them: scopes, the authenticated client, a new key."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass

__all__ = ["ALL_SCOPES", "Client", "CreatedClient", "NewKey"]

ALL_SCOPES: tuple[str, ...] = (
    "clients:admin",
    "subjects:write",
    "subjects:read",
    "subjects:revoke",
    "evidence:write",
    "evidence:review",
    "tokens:issue",
    "policies:read",
    "policies:write",
    "audiences:read",
    "audiences:write",
    "audit:read",
    "keys:admin",
)


@dataclass(frozen=True, slots=True)
class Client:
    """An authenticated API client: who acts, in which tenant, with which scopes."""

    id: uuid.UUID
    name: str
    tenant: str
    scopes: frozenset[str]
    is_admin: bool

    def can_see(self, tenant: str) -> bool:
        return self.is_admin or hmac.compare_digest(self.tenant.encode(), tenant.encode())


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
