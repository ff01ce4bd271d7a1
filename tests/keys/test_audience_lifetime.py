"""An audience may not ask for tokens that outlive the retiring window of their key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from attest_testing.support import Clock, LiveServer, make_settings, start_server

from attest.errors import UnprocessableInput
from attest.keys.lifecycle import KeyPolicy, check_token_lifetime, longest_token_lifetime


@pytest.fixture
def short_window(key_db: str, tmp_path: Path) -> Iterator[LiveServer]:
    # A database of its own: its first key lives in this test's keystore only.
    settings = make_settings(
        key_db,
        tmp_path,
        key_retiring_window=1000,
        key_leeway=60,
        default_token_lifetime=600,
    )
    server = start_server(settings, Clock())
    try:
        yield server
    finally:
        server.stop()


def test_audience_lifetime_beyond_the_retiring_window_is_refused(
    short_window: LiveServer,
) -> None:
    audience = f"model:window-{uuid.uuid4().hex[:8]}"
    with short_window.client(short_window.admin_key) as admin:
        too_long = admin.put(
            f"/v1/audiences/{audience}",
            json={"policy": "us-nationals-only", "token_lifetime": 941},
        )
        assert too_long.status_code == 422
        assert too_long.json()["errors"][0]["field"] == "$.token_lifetime"
        assert admin.get(f"/v1/audiences/{audience}").status_code == 404
        fits = admin.put(
            f"/v1/audiences/{audience}",
            json={"policy": "us-nationals-only", "token_lifetime": 940},
        )
        assert fits.status_code == 201
        assert fits.json()["token_lifetime"] == 940


def test_the_retiring_window_rule_is_pure_and_exact() -> None:
    policy = KeyPolicy("ES256", 3600, 60, retiring_window=1000, leeway=60)
    assert longest_token_lifetime(policy) == 940
    check_token_lifetime(940, policy)
    with pytest.raises(UnprocessableInput) as info:
        check_token_lifetime(941, policy)
    assert info.value.detail == (
        "A token lifetime of 941 s would outlive the key that signed it: at most 940 s "
        "with ATTEST_KEY_RETIRING_WINDOW 1000 s and ATTEST_KEY_LEEWAY 60 s."
    )
    assert info.value.extensions == {
        "errors": [{"field": "$.token_lifetime", "message": "at most 940"}]
    }
