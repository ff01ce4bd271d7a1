"""Shared request-body constraints (msgspec); unknown fields are refused everywhere."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["Body", "Name", "Ref", "TenantName"]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are a 400 problem, not silently dropped."""


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
TenantName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
]
