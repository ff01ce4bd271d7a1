"""Subjects: the people an identity team onboards, known by a per-tenant external_ref."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

__all__ = ["Lock", "Subject"]

#: How a use case reads a subject inside its transaction: ``share`` for a decision that
#: must not race a change of the subject (issuance), ``update`` for the change itself.
Lock: TypeAlias = Literal["share", "update"] | None


@dataclass(frozen=True, slots=True)
class Subject:
    id: uuid.UUID
    tenant: str
    external_ref: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None
