"""Status lists and entries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["ListToken", "Reevaluation", "Status", "StatusList", "StatusRef"]


class Status(IntEnum):
    """The 2-bit values of draft-ietf-oauth-status-list 7.1."""

    VALID = 0
    INVALID = 1
    SUSPENDED = 2


@dataclass(frozen=True, slots=True)
class StatusList:
    id: int
    first_slot: int
    size: int
    perm_key: bytes

    def holds(self, slot: int) -> bool:
        return self.first_slot <= slot < self.first_slot + self.size


@dataclass(frozen=True, slots=True)
class StatusRef:
    """Where a token's status lives: list and index."""

    list_id: int
    idx: int


@dataclass(frozen=True, slots=True)
class ListToken:
    """A signed Status List Token, ready to serve."""

    body: bytes
    etag: str
    ttl: int
    #: ``Cache-Control`` and ``ETag``, made once with the bytes (never mutate it).
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Reevaluation:
    """A pending re-evaluation of an audience's outstanding tokens."""

    id: int
    audience: str
    cause: str
    after_jti: str
