"""The CLI, the public surface, and the base-install promise (pyjwt + cryptography only)."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cryptography
import jwt
import pytest
from verify_helpers import AUDIENCE, ISSUER, JWKSServer, Minter, good_claims

import attest.verify
from attest.verify import cli

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_all_is_the_public_surface() -> None:
    public = {name for name in dir(attest.verify) if not name.startswith("_")}
    public -= {"annotations", "cli"}  # from __future__; the cli submodule once imported
    assert set(attest.verify.__all__) == public
    for name in attest.verify.__all__:
        assert getattr(attest.verify, name) is not None
    for code in attest.verify.REASON_CODES:
        assert f"``{code}``" in (attest.verify.__doc__ or ""), code


def test_every_exception_has_a_distinct_code() -> None:
    classes = [
        getattr(attest.verify, n)
        for n in attest.verify.__all__
        if isinstance(getattr(attest.verify, n), type)
        and issubclass(getattr(attest.verify, n), attest.verify.InvalidToken)
        and n != "InvalidToken"
    ]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert set(codes) == attest.verify.REASON_CODES
    required = {
        "malformed", "too_large", "wrong_type", "unsupported_algorithm", "unknown_key",
        "bad_signature", "expired", "not_yet_valid", "issued_in_future", "wrong_issuer",
        "wrong_audience", "missing_claim", "invalid_claim", "lifetime_too_long",
        "forbidden_header", "revoked", "binding_required", "key_source_unavailable",
    }  # fmt: skip
    assert required <= attest.verify.REASON_CODES


@pytest.fixture
def jwks_file(tmp_path: Path, jwks: dict[str, Any]) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_prints_claims(
    mint: Minter, jwks_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(__import__("time").time())
    token = mint(good_claims(now=now))
    args = [token, "--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", str(jwks_file)]
    rc, out, _ = run_cli(args, capsys)
    assert rc == 0
    assert json.loads(out) == good_claims(now=now)


def test_cli_reports_reason_code(
    mint: Minter, jwks_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = mint(good_claims(now=1_000_000_000))  # long expired
    args = [token, "--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", str(jwks_file)]
    rc, out, err = run_cli(args, capsys)
    assert (rc, out) == (1, "invalid: expired\n")
    assert "expired" in err
    rc, out, _ = run_cli(["a.b.c", *args[1:]], capsys)
    assert (rc, out) == (1, "invalid: malformed\n")
    args[2] = "https://attest.example.evil"
    rc, out, _ = run_cli([mint(good_claims(now=int(__import__("time").time()))), *args[1:]], capsys)
    assert (rc, out) == (1, "invalid: wrong_issuer\n")


def test_cli_reads_stdin_and_jwks_url(
    mint: Minter,
    jwks: dict[str, Any],
    server: JWKSServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.doc = jwks
    now = int(__import__("time").time())
    monkeypatch.setattr(sys, "stdin", io.StringIO(mint(good_claims(now=now)) + "\n"))
    args = ["-", "--issuer", ISSUER, "--audience", AUDIENCE, "--jwks-url", server.url]
    rc, out, _ = run_cli(args, capsys)
    assert rc == 0
    assert json.loads(out)["iat"] == now
    assert server.hits == 1


def test_cli_argument_rules(capsys: pytest.CaptureFixture[str], jwks_file: Path) -> None:
    with pytest.raises(SystemExit):
        cli.main(["t", "--issuer", ISSUER, "--audience", AUDIENCE])  # no key source
    with pytest.raises(SystemExit):
        cli.main(
            ["t", "--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", "f", "--jwks-url", "u"]
        )
    capsys.readouterr()
    parser = argparse.ArgumentParser(prog="attest verify")
    cli.configure(parser)
    for action in parser._actions:
        if action.help and action.dest != "help":
            assert action.help[0].isupper(), action.dest
            assert action.help.endswith("."), action.dest


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    """A directory holding only jwt, cryptography and their own dependencies."""
    site = Path(cryptography.__file__).resolve().parents[1]
    assert Path(jwt.__file__).resolve().parents[1] == site
    deps = tmp_path / "deps"
    deps.mkdir()
    for name in ("jwt", "cryptography", "cffi", "pycparser"):
        if (site / name).exists():
            (deps / name).symlink_to(site / name)
    for backend in site.glob("_cffi_backend*"):
        (deps / backend.name).symlink_to(backend)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(deps)])
    env["PYTHONNOUSERSITE"] = "1"
    return env


ISOLATION_PROBE = """
import sys
import attest.verify
from attest.verify import cli
# _openssl is cryptography's Rust extension module; __main__ is this script
allowed = {"attest", "jwt", "cryptography", "cffi", "_cffi_backend", "pycparser", "_openssl"}
allowed.add("__main__")
stray = sorted(
    top for top in {m.split(".")[0] for m in sys.modules}
    if top not in allowed and top not in sys.stdlib_module_names
)
assert not stray, stray
for banned in ("litestar", "asyncpg", "msgspec", "httpx", "joserfc"):
    assert banned not in sys.modules, banned
import litestar  # must not be importable at all here
"""


def test_imports_with_only_pyjwt_and_cryptography(tmp_path: Path) -> None:
    env = _isolated_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-S", "-c", ISOLATION_PROBE],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    # everything passed and then the litestar import failed: proves the sandbox is real
    assert "ModuleNotFoundError: No module named 'litestar'" in result.stderr, result.stderr
    assert "AssertionError" not in result.stderr


def test_cli_module_runs_with_only_pyjwt_and_cryptography(
    tmp_path: Path, mint: Minter, jwks_file: Path
) -> None:
    env = _isolated_env(tmp_path)
    now = int(__import__("time").time())
    base = [sys.executable, "-S", "-m", "attest.verify.cli"]
    opts = ["--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", str(jwks_file)]
    ok = subprocess.run(
        [*base, mint(good_claims(now=now)), *opts],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["exp"] == now + 600
    bad = subprocess.run(
        [*base, mint(good_claims(now=now), typ="JWT"), *opts],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert (bad.returncode, bad.stdout) == (1, "invalid: wrong_type\n")
    helped = subprocess.run(
        [*base, "--help"], env=env, capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert helped.returncode == 0
    assert "--jwks-url" in helped.stdout
