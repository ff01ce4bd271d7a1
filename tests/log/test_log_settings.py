"""The log's settings: the origin's default and shape, the checkpoint interval's range."""

from __future__ import annotations

import pytest

from attest.settings import SettingsError, load_settings


def test_origin_defaults_to_the_issuer_without_scheme() -> None:
    settings = load_settings(environ={"ATTEST_ISSUER": "https://attest.example"})
    assert settings.log_origin == "attest.example/log"
    assert settings.log_checkpoint_interval == 1.0


@pytest.mark.parametrize("origin", ["a b", "a+b", "a\nb", "a\u2014b\u0000"])
def test_an_origin_that_breaks_the_note_format_is_refused(origin: str) -> None:
    with pytest.raises(SettingsError, match="ATTEST_LOG_ORIGIN"):
        load_settings(environ={"ATTEST_LOG_ORIGIN": origin})


@pytest.mark.parametrize("value", ["0", "-1", "abc", "3601"])
def test_the_checkpoint_interval_is_checked(value: str) -> None:
    with pytest.raises(SettingsError, match="ATTEST_LOG_CHECKPOINT_INTERVAL"):
        load_settings(environ={"ATTEST_LOG_CHECKPOINT_INTERVAL": value})


def test_a_fractional_interval_is_accepted() -> None:
    assert (
        load_settings(environ={"ATTEST_LOG_CHECKPOINT_INTERVAL": "0.25"}).log_checkpoint_interval
        == 0.25
    )
