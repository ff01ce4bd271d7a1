"""Leaf bytes of an audit event: RFC 8785 canonical JSON of its seven published fields."""

from __future__ import annotations

import rfc8785

from attest.audit.models import AuditEvent

__all__ = ["leaf_bytes"]


def leaf_bytes(event: AuditEvent) -> bytes:
    return rfc8785.dumps(event.leaf_fields())
