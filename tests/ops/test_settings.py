"""Settings: built from ATTEST_* variables; an unknown or invalid one stops start-up by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest.settings import SettingsError, load_settings


def test_defaults_follow_the_design() -> None:
    settings = load_settings(environ={})
    assert settings.database_url is None
    assert settings.embedded
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.issuer == "http://127.0.0.1:8080"
    assert settings.data_dir == Path(".attest")
    assert settings.keystore_path == Path("keys")
    assert settings.default_token_lifetime == 600


def test_issuer_defaults_to_host_and_port() -> None:
    settings = load_settings(environ={"ATTEST_HOST": "10.0.0.5", "ATTEST_PORT": "9000"})
    assert settings.issuer == "http://10.0.0.5:9000"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ATTEST_PORT", "eighty"),
        ("ATTEST_PORT", "70000"),
        ("ATTEST_DATABASE_URL", "mysql://localhost/x"),
        ("ATTEST_ISSUER", "attest.example"),
        ("ATTEST_DEFAULT_TOKEN_LIFETIME", "7200"),
        ("ATTEST_BOOTSTRAP_ADMIN_KEY", "not-a-key"),
        ("ATTEST_FOUR_EYES_MIN_ASSURANCE", "IAL9"),
        ("ATTEST_LOG_LEVEL", "LOUD"),
        ("ATTEST_KEYSTORE", "s3:bucket"),
        ("ATTEST_DATABSE_URL", "postgresql://typo"),
    ],
)
def test_invalid_or_unknown_setting_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={variable: value})
    assert variable in str(info.value)


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"ATTEST_BOOTSTRAP_ADMIN_KEY": "attest_supersecretvalue"})
    assert "supersecretvalue" not in str(info.value)
    settings = load_settings(environ={"ATTEST_KEYSTORE_PASSPHRASE": "hunter2hunter2hunter2"})
    assert "hunter2" not in repr(settings)


def test_toml_config_file(tmp_path: Path) -> None:
    config = tmp_path / "attest.toml"
    config.write_text('port = 9100\nissuer = "https://attest.example"\n')
    settings = load_settings(environ={"ATTEST_CONFIG": str(config)})
    assert settings.port == 9100
    assert settings.issuer == "https://attest.example"
    config.write_text("colour = 'blue'\n")
    with pytest.raises(SettingsError, match="colour"):
        load_settings(environ={"ATTEST_CONFIG": str(config)})


def test_the_cli_stops_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from attest.cli import main

    monkeypatch.setenv("ATTEST_PORT", "not-a-port")
    assert main(["migrate"]) == 2
    assert "ATTEST_PORT" in capsys.readouterr().err


def test_serve_settings_workers_grace_and_log_format() -> None:
    import os

    defaults = load_settings({})
    assert defaults.workers == (os.cpu_count() or 1)
    assert defaults.shutdown_grace == 10
    assert defaults.log_format == "text"
    chosen = load_settings(
        {"ATTEST_WORKERS": "3", "ATTEST_SHUTDOWN_GRACE": "2", "ATTEST_LOG_FORMAT": "json"}
    )
    assert (chosen.workers, chosen.shutdown_grace, chosen.log_format) == (3, 2, "json")
    for variable, value in [
        ("ATTEST_WORKERS", "0"),
        ("ATTEST_WORKERS", "-1"),
        ("ATTEST_WORKERS", "two"),
        ("ATTEST_SHUTDOWN_GRACE", "0"),
        ("ATTEST_LOG_FORMAT", "xml"),
    ]:
        with pytest.raises(SettingsError, match=variable):
            load_settings({variable: value})
