"""Policy versions, audiences, and a decision together with the evidence it relied on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from attest.policy.engine import Decision

__all__ = ["Audience", "Eligibility", "PolicyVersion", "VersionSummary"]


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    name: str
    version: int
    document: dict[str, Any]
    digest: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VersionSummary:
    version: int
    digest: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Audience:
    audience: str
    policy_name: str
    token_lifetime: int
    binding_required: bool
    updated_at: datetime
    suspended_at: datetime | None = None
    #: Distinct holder keys (cnf.jkt) per subject in a sliding 24 h window; None: no limit.
    max_holder_keys: int | None = None

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None


@dataclass(frozen=True, slots=True)
class Eligibility:
    """A decision and the evidence that counted for it (current at ``now``)."""

    decision: Decision
    evidence_ids: list[uuid.UUID]
