"""Who is calling: the authenticated API client and the scopes a client can hold.

A core type: the HTTP guards (attest.http.auth) check scopes and every use case takes the
caller, so it sits below the domains; the clients domain authenticates keys into it.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass

__all__ = ["ALL_SCOPES", "Client"]

ALL_SCOPES: tuple[str, ...] = (
    "clients:admin",
    "subjects:write",
    "subjects:read",
    "subjects:revoke",
    "evidence:write",
    "evidence:review",
    "tokens:issue",
    "tokens:revoke",
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
    #: The key id it authenticated with (not secret: it names the key in security events).
    key_id: str = ""

    def can_see(self, tenant: str) -> bool:
        return self.is_admin or hmac.compare_digest(self.tenant.encode(), tenant.encode())
