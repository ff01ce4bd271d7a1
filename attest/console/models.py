"""Console session records (plain data)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

__all__ = ["SessionRecord"]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A stored session: who signed in (client and key id), its CSRF token, its expiry."""

    client_id: uuid.UUID
    key_id: str
    csrf_token: str
    expires_at: datetime
