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
from attest_testing.verify import AUDIENCE, ISSUER, JWKSServer, Minter, good_claims

import attest.verify
from attest.verify import cli

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_all_is_the_public_surface() -> None:
    public = {name for name in dir(attest.verify) if not name.startswith("_")}
    # from __future__; the public submodules (cli, contract, audit_cli) once imported:
    # modules, not names
    public -= {"annotations", "cli", "contract", "audit_cli"}
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
    selftest = subprocess.run(
        [*base, "--selftest"], env=env, capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    assert selftest.stdout.splitlines()[-1].endswith(" passed, 0 failed")


def test_cli_selftest_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(["--selftest"], capsys)
    assert rc == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["vector", "expected", "got", "result"]
    assert any(line.split()[:4] == ["alg-none-signed", "unsupported_algorithm",
                                    "unsupported_algorithm", "pass"] for line in lines)  # fmt: skip
    assert lines[-1].endswith(" passed, 0 failed")


def test_cli_selftest_fails_on_a_failing_vector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from attest.verify import _selftest

    document = _selftest.load_vectors()
    document["vectors"][0]["expect"] = "expired"  # a valid token now "expected" to fail
    tampered = tmp_path / "conformance.json"
    tampered.write_text(json.dumps(document))
    monkeypatch.setattr(_selftest, "VECTORS_PATH", tampered)
    rc, out, _ = run_cli(["--selftest"], capsys)
    assert rc == 1
    assert "FAIL" in out
    assert out.splitlines()[-1].endswith(" 1 failed")
    monkeypatch.setattr(_selftest, "VECTORS_PATH", tmp_path / "missing.json")
    rc, _, err = run_cli(["--selftest"], capsys)
    assert rc == 2
    assert "conformance vectors unavailable" in err


def test_cli_dpop(mint: Minter, jwks_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attest_testing.verify import make_proof, new_es256, public_jwk, thumbprint

    now = int(__import__("time").time())
    holder = new_es256()
    token = mint(good_claims(now=now, cnf={"jkt": thumbprint(public_jwk(holder))}))
    url = "https://gateway.example/v1/models/fable-5/generate"
    base = [token, "--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", str(jwks_file)]
    rc, out, _ = run_cli(base, capsys)
    assert (rc, out) == (1, "invalid: binding_required\n")
    proof = make_proof(holder, token, url=url, iat=now)
    rc, out, _ = run_cli([*base, "--dpop", proof, "--method", "POST", "--url", url], capsys)
    assert rc == 0, out
    assert json.loads(out)["cnf"]["jkt"] == thumbprint(public_jwk(holder))
    other = make_proof(new_es256(), token, url=url, iat=now)
    rc, out, _ = run_cli([*base, "--dpop", other, "--method", "POST", "--url", url], capsys)
    assert (rc, out) == (1, "invalid: dpop_key_mismatch\n")
    with pytest.raises(SystemExit) as info:
        cli.main([*base, "--dpop", proof])  # no --method/--url
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        cli.main([*base, "--dpop", proof, "--method", "POST", "--url", "/relative"])


class _Lines:
    """stdin that changes the JWKS file between two lines, as an operator's rotation would."""

    def __init__(self, lines: list[str], between: Any) -> None:
        self.lines, self.between = lines, between

    def __iter__(self) -> Any:
        for i, line in enumerate(self.lines):
            if i == 1:
                self.between()
            yield line


def test_cli_stream_reloads_the_jwks_file(
    mint: Minter,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = int(__import__("time").time())
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [mint.es.jwk]}))
    es_token = mint(good_claims(now=now))
    ed_token = mint(good_claims(now=now), key=mint.ed)

    def rotate() -> None:  # the issuer's new key arrives in the bundle; the old one leaves
        path.write_text(json.dumps({"keys": [mint.ed.jwk]}))

    lines = [ed_token + "\n", ed_token + "\n", "\n", es_token + "\n", "garbage\n"]
    monkeypatch.setattr(sys, "stdin", _Lines(lines, rotate))
    args = ["--stream", "--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", str(path)]
    rc, out, _ = run_cli(args, capsys)
    assert rc == 1
    first, second, third, fourth = out.splitlines()
    assert first == "invalid: unknown_key"  # before the rotation
    assert json.loads(second)["iat"] == now  # after: the new key verifies
    assert third == "invalid: unknown_key"  # and the removed key no longer does
    assert fourth == "invalid: malformed"
    with pytest.raises(SystemExit):
        cli.main([*args, "--dpop", "p", "--method", "GET", "--url", "https://x/"])


def test_the_attest_command_runs_verify_with_only_pyjwt_and_cryptography(
    tmp_path: Path, mint: Minter, jwks_file: Path
) -> None:
    """DESIGN.md: `attest verify` works with the base install; the attest command imports
    server code only for server commands (its parser names them all)."""
    env = _isolated_env(tmp_path)
    now = int(__import__("time").time())
    ok = subprocess.run(
        [sys.executable, "-S", "-m", "attest.cli", "verify", mint(good_claims(now=now)),
         "--issuer", ISSUER, "--audience", AUDIENCE, "--jwks", str(jwks_file)],
        env=env, capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["iat"] == now


@pytest.mark.parametrize("jti", ["-Mv3cUq1PnoP2oQVaZ0xKw", "--v3cUq1PnoP2oQVaZ0xKw"])
def test_audit_verify_reads_a_jti_that_begins_with_a_dash(jti: str) -> None:
    """A jti is base64url: one in 64 begins with "-", which argparse alone takes for an
    option ("--jti: expected one argument"); `attest audit verify --jti JTI` reads it."""
    from attest.cli import build_parser
    from attest.verify.audit_cli import attach_jti

    argv = ["audit", "verify", "--url", "http://127.0.0.1:1", "--log-key", "k", "--jti", jti]
    with pytest.raises(SystemExit):  # what argparse alone does with it
        build_parser().parse_args(argv)
    assert build_parser().parse_args(attach_jti(argv)).jti == jti
    # A missing value is still an error, and an option after --jti is still an option.
    with pytest.raises(SystemExit):
        build_parser().parse_args(attach_jti([*argv[:-1], "--state", "s"]))
