"""Identifiers that arrive as text: a malformed id is an unknown id, never a 500."""

from __future__ import annotations

import uuid

from attest.errors import NotFound

__all__ = ["parse_uuid"]


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        # An id that cannot exist is just an unknown id.
        raise NotFound(f"No {what} with this id.") from None
