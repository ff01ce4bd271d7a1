"""Shared builders for the policy tests (pure data, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from attest.policy import Fact

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def fact(
    attribute: str,
    value: str,
    assurance: str = "IAL2",
    *,
    verified_days_ago: float = 10,
    valid_days: float = 365,
    evidence_id: str = "ev-1",
) -> Fact:
    verified_at = NOW - timedelta(days=verified_days_ago)
    return Fact(
        attribute=attribute,
        value=value,
        assurance=assurance,
        verified_at=verified_at,
        reverify_at=verified_at + timedelta(days=valid_days),
        evidence_id=evidence_id,
    )


def policy(rule: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"name": "test-policy", "version": 3, "rule": rule, **top}


def status_any(*values: str) -> dict[str, Any]:
    return {"attribute": "us_person_status", "any_of": list(values)}


def citizenship_any(*values: str) -> dict[str, Any]:
    return {"attribute": "citizenship", "any_of": list(values)}


def citizenship_none(*values: str) -> dict[str, Any]:
    return {"attribute": "citizenship", "none_of": list(values)}
