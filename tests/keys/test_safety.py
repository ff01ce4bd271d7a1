"""Unsafe key settings stop start-up; the database enforces the lifecycle; the pure planner;
the ``attest keys`` CLI as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from attest.keys.lifecycle import KeyPolicy, plan
from attest.settings import SettingsError, load_settings

ATTEST = str(Path(sys.executable).parent / "attest")


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"key_prepublish": "30", "jwks_max_age": "60"}, ["KEY_PREPUBLISH", "JWKS_MAX_AGE"]),
        (
            {"key_retiring_window": "600", "default_token_lifetime": "600"},
            ["KEY_RETIRING_WINDOW", "DEFAULT_TOKEN_LIFETIME", "KEY_LEEWAY"],
        ),
        ({"key_rotation_interval": "10"}, ["KEY_ROTATION_INTERVAL", "KEY_PREPUBLISH"]),
        ({"key_algorithm": "RS256"}, ["KEY_ALGORITHM"]),
        ({"key_check_interval_ms": "1"}, ["KEY_CHECK_INTERVAL_MS"]),
        ({"key_leeway": "-1"}, ["KEY_LEEWAY"]),
        ({"keystore": "pkcs11"}, ["PKCS11_MODULE"]),
        (
            {
                "keystore": "pkcs11",
                "pkcs11_module": "/x.so",
                "pkcs11_token_label": "t",
                "pkcs11_pin": "secret-pin-77",
                "pkcs11_pin_file": "/pin",
            },
            ["PKCS11_PIN", "PKCS11_PIN_FILE"],
        ),
    ],
)
def test_unsafe_key_settings_are_refused_by_name(values: dict[str, str], named: list[str]) -> None:
    environ = {f"ATTEST_{k.upper()}": v for k, v in values.items()}
    with pytest.raises(SettingsError) as info:
        load_settings(environ=environ)
    for name in named:
        assert f"ATTEST_{name}" in str(info.value)
    assert "secret-pin-77" not in str(info.value)


def test_safe_boundaries_are_accepted() -> None:
    settings = load_settings(
        environ={
            "ATTEST_JWKS_MAX_AGE": "120",
            "ATTEST_KEY_PREPUBLISH": "120",
            "ATTEST_DEFAULT_TOKEN_LIFETIME": "300",
            "ATTEST_KEY_LEEWAY": "30",
            "ATTEST_KEY_RETIRING_WINDOW": "330",
            "ATTEST_KEY_ROTATION_INTERVAL": "0",
            "ATTEST_KEY_ALGORITHM": "EdDSA",
        }
    )
    assert settings.key_algorithm == "EdDSA"
    assert settings.key_rotation_interval == 0
    assert "pkcs11_pin=" not in repr(load_settings(environ={}))


def _env(world: Any, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env.update(
        ATTEST_DATABASE_URL=world.database_url,
        ATTEST_KEYSTORE=str(world.root / "keys"),
        ATTEST_KEYSTORE_PASSPHRASE=world.secrets["keystore_passphrase"],
        ATTEST_PAIRWISE_SECRET=world.secrets["pairwise_secret"],
        ATTEST_DATA_DIR=str(world.root / "data"),
        **extra,
    )
    return env


def test_serve_refuses_unsafe_settings_and_long_audience_lifetimes(world: Any) -> None:
    refused = subprocess.run(
        [ATTEST, "serve"],
        env=_env(world, ATTEST_KEY_PREPUBLISH="10"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "ATTEST_KEY_PREPUBLISH" in refused.stderr
    # An audience whose tokens outlive the retiring window (configured while the service ran
    # with a longer window) stops the next start-up, naming the setting.
    server = world.start()
    world.stop(server)
    changed = world.fetch(
        "UPDATE audiences SET token_lifetime = 3600 WHERE audience = 'model:fable-5' "
        "RETURNING audience"
    )
    assert len(changed) == 1
    started = subprocess.run(
        [ATTEST, "serve", "--port", "1"],  # never reached: start-up stops before listening
        env=_env(world, ATTEST_KEY_RETIRING_WINDOW="700"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "attest: refusing to start: ATTEST_KEY_RETIRING_WINDOW" in started.stderr
    assert "Traceback" not in started.stderr  # one line naming the setting, not a stack
    assert world.secrets["keystore_passphrase"] not in started.stderr + started.stdout


def test_the_database_enforces_the_lifecycle(world: Any) -> None:
    world.start()

    async def attempts(conn: Any) -> list[str]:
        (key,) = await conn.fetch("SELECT * FROM signing_keys")
        now = datetime.now(UTC)
        failures = []
        for sql, args in [
            (  # a second active key for the algorithm
                "INSERT INTO signing_keys (kid, alg, state, public_jwk, keystore_ref, "
                "activated_at) VALUES ('x', 'ES256', 'active', '{}', 'file:x', $1)",
                [now],
            ),
            ("UPDATE signing_keys SET state = 'pending', activate_after = $1", [now]),
            ("UPDATE signing_keys SET state = 'retired', retired_at = $1", [now]),
            ("UPDATE signing_keys SET public_jwk = '{}'", []),
            ("DELETE FROM signing_keys", []),
        ]:
            try:
                async with conn.transaction():
                    await conn.execute(sql, *args)
            except asyncpg.PostgresError as exc:
                failures.append(type(exc).__name__)
        pending = (
            "INSERT INTO signing_keys (kid, alg, state, public_jwk, keystore_ref, "
            "activate_after) VALUES ($1, 'EdDSA', 'pending', '{}', 'file:p', $2)"
        )
        await conn.execute(pending, "p1", now)
        try:
            await conn.execute(pending, "p2", now)
        except asyncpg.UniqueViolationError:
            failures.append("second pending")
        assert key["state"] == "active"
        return failures

    failures = world.run(attempts)
    assert failures == [
        "UniqueViolationError",
        "RaiseError",
        "RaiseError",
        "RaiseError",
        "RaiseError",
        "second pending",
    ]


T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = KeyPolicy("ES256", rotation_interval=3600, prepublish=300, retiring_window=900, leeway=60)


def key(kid: str, state: str, **times: int) -> dict[str, Any]:
    row: dict[str, Any] = {"kid": kid, "state": state, "alg": "ES256"}
    for name in ("activated_at", "activate_after", "retire_after"):
        row[name] = T0 + timedelta(seconds=times[name]) if name in times else None
    return row


@pytest.mark.parametrize(
    ("keys", "expiry", "at", "expected"),
    [
        ([key("a", "active", activated_at=0)], {}, 3299, (None, (), False)),
        ([key("a", "active", activated_at=0)], {}, 3300, (None, (), True)),
        (
            [key("a", "active", activated_at=0), key("b", "pending", activate_after=3600)],
            {},
            3599,
            (None, (), False),
        ),
        (
            [key("a", "active", activated_at=0), key("b", "pending", activate_after=3600)],
            {},
            3600,
            ("b", (), False),
        ),
        ([key("a", "retiring", retire_after=900)], {"a": T0}, 899, (None, (), False)),
        ([key("a", "retiring", retire_after=900)], {"a": T0}, 900, (None, ("a",), False)),
        (  # a token that outlives the window holds the key until it expired + leeway
            [key("a", "retiring", retire_after=900)],
            {"a": T0 + timedelta(seconds=3600)},
            3659,
            (None, (), False),
        ),
        (
            [key("a", "retiring", retire_after=900)],
            {"a": T0 + timedelta(seconds=3600)},
            3660,
            (None, ("a",), False),
        ),
        ([key("a", "active", activated_at=0) | {"alg": "EdDSA"}], {}, 1, (None, (), True)),
    ],
)
def test_plan(keys: list[dict[str, Any]], expiry: Any, at: int, expected: Any) -> None:
    due = plan(keys, expiry, T0 + timedelta(seconds=at), POLICY)
    assert (due.activate, due.retire, due.create_pending) == expected


def test_keys_cli(world: Any) -> None:
    world.start()
    env = _env(world)

    def attest(*args: str, code: int = 0) -> str:
        done = subprocess.run(
            [ATTEST, "keys", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == code, done.stderr
        return done.stdout + done.stderr

    listed = attest("list")
    assert listed.splitlines()[0].split()[:3] == ["KID", "ALG", "STATE"]
    (first,) = [line.split()[0] for line in listed.splitlines()[2:]]
    rotated = attest("rotate")
    assert rotated.startswith("published: ")
    pending = rotated.split()[1]
    assert attest("rotate").startswith(f"already pending: {pending}")
    assert "required: --compromised" in attest("revoke", first, code=2)
    revoked = attest("revoke", first, "--compromised")
    assert f"compromised: {first} (was active)" in revoked
    assert f"active now: {pending}" in revoked
    assert "pre-publication was skipped" in revoked
    states = {line.split()[0]: line.split()[2] for line in attest("list").splitlines()[2:]}
    assert states == {first: "compromised", pending: "active"}
    history = attest("history").splitlines()
    assert [line.split()[2] for line in history[2:]] == [
        "activated",
        "published",
        "compromised",
        "activated",
    ]
    assert "no signing key nope" in attest("revoke", "nope", "--compromised", code=1)


@pytest.mark.parametrize("order", ["kid first", "kid last"])
def test_a_kid_that_begins_with_a_dash_is_read_as_the_kid(order: str) -> None:
    """One kid in 64 begins with "-": `attest keys revoke -Jt8... --compromised` was an
    argparse error (a CI run's random kid hit it)."""
    from attest.cli import build_parser
    from attest.keys.cli import attach_kid

    kid = "-Jt88sZk60668HGXzOSUDIm34bggnT5V9zm3XrQLpz8"
    rest = [kid, "--compromised"] if order == "kid first" else ["--compromised", kid]
    args = build_parser().parse_args(attach_kid(["keys", "revoke", *rest]))
    assert (args.kid, args.compromised) == (kid, True)
    # Without --compromised it is still refused.
    with pytest.raises(SystemExit):
        build_parser().parse_args(attach_kid(["keys", "revoke", kid]))
