"""API clients: the authenticated principal (defined in attest.principal, for the HTTP
guards below the domains), a new key, a client just created."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from attest.principal import ALL_SCOPES, Client

__all__ = ["ALL_SCOPES", "Client", "CreatedClient", "NewKey"]


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
