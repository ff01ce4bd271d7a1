"""A listed token's state from its status-list value and expiry (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from attest.tokens.listing import token_state

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("status", "expires_at", "state"),
    [
        (0, LATER, "valid"),
        (0, NOW, "expired"),  # exp is exclusive: at exp the token no longer verifies
        (1, LATER, "revoked"),
        (1, NOW - timedelta(days=1), "revoked"),  # INVALID is final, also after expiry
        (2, LATER, "suspended"),
        (2, NOW, "expired"),  # a suspension is temporary; past exp the token is expired
        (3, LATER, "revoked"),  # an unknown value is never shown as valid
    ],
)
def test_token_state(status: int, expires_at: datetime, state: str) -> None:
    assert token_state(status, expires_at, NOW) == state
