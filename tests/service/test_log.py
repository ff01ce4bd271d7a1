"""The transparency log over HTTP: checkpoints, tiles, proofs, receipts, and the CLI.

Every check here is done the way an outside auditor does it: from the public endpoints,
with the offline code of the base install (attest.verify) and an RFC 9162 reference
written in tests/log/test_merkle.py.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from attest_testing.service import assert_problem, token_for, wait_sequenced
from attest_testing.support import LiveServer

from attest.verify import _tlog
from attest.verify._auditor import check_receipt

FABLE = "model:fable-5"


def _config(live: LiveServer) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(live.base_url + "/.well-known/attest-configuration").json()
    return body


def _checkpoint(live: LiveServer, at_least: int = 0) -> _tlog.Checkpoint:
    key = _tlog.parse_vkey(_config(live)["log"]["vkey"])
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(live.base_url + "/v1/log/checkpoint")
        if response.status_code == 200:
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert "max-age" in response.headers["cache-control"]
            checkpoint = _tlog.open_checkpoint(response.text, key)
            if checkpoint.size >= at_least:
                return checkpoint
        assert time.monotonic() < deadline, "no checkpoint covers the events yet"
        time.sleep(0.05)


def _receipt(admin: httpx.Client, jti: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        response = admin.get(f"/v1/audit/attestations/{jti}/receipt")
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        assert response.status_code == 404, response.text
        assert time.monotonic() < deadline, "the receipt never became available"
        time.sleep(0.05)


def _leaf(event: dict[str, Any]) -> bytes:
    fields = ("event_id", "type", "occurred_at", "actor", "tenant", "subject_id", "data")
    return rfc8785.dumps({k: event[k] for k in fields})


def test_discovery_and_key_history_publish_the_log_key(live: LiveServer) -> None:
    config = _config(live)["log"]
    origin = live.settings.issuer.split("://", 1)[1] + "/log"
    assert config["origin"] == origin
    key = _tlog.parse_vkey(config["vkey"])
    assert key.name == origin
    history = httpx.get(live.base_url + "/v1/keys/history").json()
    assert [k["vkey"] for k in history["log_keys"] if k["current"]] == [config["vkey"]]
    # Not a token key: never in the JWKS, never in the signing key history.
    jwks = httpx.get(live.base_url + "/.well-known/jwks.json").json()
    raw = base64.urlsafe_b64encode(key.public_key).rstrip(b"=").decode()
    assert raw not in json.dumps(jwks)
    assert raw not in json.dumps(history["keys"])


def test_every_event_is_a_provable_leaf(
    live: LiveServer, admin: httpx.Client, operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    token_for(operator, eligible_subject["id"], FABLE)
    events = wait_sequenced(admin, subject_id=eligible_subject["id"])
    assert len({e["log_index"] for e in events}) == len(events)
    checkpoint = _checkpoint(live, at_least=max(e["log_index"] for e in events) + 1)
    for event in events:
        proof = httpx.get(
            live.base_url + "/v1/log/proofs/inclusion",
            params={"index": event["log_index"], "tree_size": checkpoint.size},
        ).json()
        leaf_hash = _tlog.leaf_hash(_leaf(event))
        assert base64.b64decode(proof["leaf_hash"]) == leaf_hash
        _tlog.verify_inclusion(
            event["log_index"],
            checkpoint.size,
            leaf_hash,
            [base64.b64decode(h) for h in proof["proof"]],
            checkpoint.root,
        )


def test_checkpoints_are_consistent(
    live: LiveServer, admin: httpx.Client, operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    first = _checkpoint(live, at_least=1)
    token_for(operator, eligible_subject["id"], FABLE)
    second = _checkpoint(live, at_least=first.size + 1)
    proof = httpx.get(
        live.base_url + "/v1/log/proofs/consistency",
        params={"first": first.size, "second": second.size},
    ).json()
    assert (proof["first"], proof["second"]) == (first.size, second.size)
    _tlog.verify_consistency(
        first.size,
        second.size,
        first.root,
        second.root,
        [base64.b64decode(h) for h in proof["proof"]],
    )


def test_tiles_hold_the_leaf_hashes(live: LiveServer, admin: httpx.Client) -> None:
    checkpoint = _checkpoint(live, at_least=1)
    size = checkpoint.size
    n, width = divmod(size, 256)
    path = _tlog_path(n) + (f".p/{width}" if width else "")
    response = httpx.get(f"{live.base_url}/v1/log/tile/0/{path}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    body = response.content
    assert len(body) == (width or 256) * 32
    start = n * 256
    entries = admin.get(f"/v1/log/tile/entries/{path}")
    assert entries.status_code == 200, entries.text
    assert entries.headers["cache-control"] == "private, no-store"
    leaves, raw = [], entries.content
    while raw:
        length = int.from_bytes(raw[:2], "big")
        leaves.append(raw[2 : 2 + length])
        raw = raw[2 + length :]
    assert len(leaves) == (width or 256)
    for i, leaf in enumerate(leaves):
        assert body[32 * i : 32 * (i + 1)] == _tlog.leaf_hash(leaf), start + i
    if n:
        full = httpx.get(f"{live.base_url}/v1/log/tile/0/{_tlog_path(0)}")
        assert "immutable" in full.headers["cache-control"]


def _tlog_path(n: int) -> str:
    from attest.log.merkle import tile_path_index

    return tile_path_index(n)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/log/tile/0/x000/001", 404),
        ("/v1/log/tile/0/1", 404),
        ("/v1/log/tile/0/000.p/0", 404),
        ("/v1/log/tile/0/000.p/256", 404),
        ("/v1/log/tile/0/000.p/01", 404),
        ("/v1/log/tile/9/000", 404),
        ("/v1/log/tile/01/000", 404),
        ("/v1/log/tile/0/999", 404),
        ("/v1/log/tile/abc", 404),
        # Found by schemathesis: non-ASCII digits passed str.isdigit() and failed int() (500).
        ("/v1/log/tile/%C2%B9", 404),
        ("/v1/log/tile/0/00%C2%B9", 404),
        ("/v1/log/tile/0/x%C2%B9%C2%B2%C2%B3/000", 404),
        ("/v1/log/tile/0/000.p/%C2%B9", 404),
        ("/v1/log/proofs/inclusion?index=5&tree_size=5", 400),
        ("/v1/log/proofs/inclusion?index=0&tree_size=999999999", 404),
        ("/v1/log/proofs/inclusion?index=-1&tree_size=1", 400),
        ("/v1/log/proofs/inclusion?index=x&tree_size=1", 400),
        ("/v1/log/proofs/inclusion?tree_size=1", 400),
        ("/v1/log/proofs/consistency?first=3&second=2", 400),
        ("/v1/log/proofs/consistency?first=1&second=999999999", 404),
        ("/v1/log/proofs/consistency?first=1&second=99999999999999999999999", 400),
    ],
)
def test_bad_log_requests_are_problems(live: LiveServer, path: str, status: int) -> None:
    _checkpoint(live, at_least=5)
    response = httpx.get(live.base_url + path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_entry_bundles_need_an_admin_auditor(live: LiveServer, actors: Any) -> None:
    _checkpoint(live, at_least=1)
    assert httpx.get(live.base_url + "/v1/log/tile/entries/000.p/1").status_code == 401
    auditor = actors.client("audit:read", name="tenant-auditor")
    assert_problem(auditor.get("/v1/log/tile/entries/000.p/1"), 403)


def _issue(operator: httpx.Client, subject: dict[str, Any]) -> str:
    issued = token_for(operator, subject["id"], FABLE)
    assert issued.status_code == 201, issued.text
    jti: str = issued.json()["jti"]
    return jti


def test_receipt_verifies_offline(
    live: LiveServer, admin: httpx.Client, operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    jti = _issue(operator, eligible_subject)
    receipt = _receipt(admin, jti)
    assert receipt["format"] == "attest-receipt/v1"
    assert receipt["attestation"] == admin.get(f"/v1/audit/attestations/{jti}").json()
    vkey = _config(live)["log"]["vkey"]
    assert receipt["log"]["vkey"] == vkey
    checkpoint = check_receipt(receipt, _tlog.parse_vkey(vkey))
    assert checkpoint.size > receipt["log"]["index"]


def _mutations() -> list[tuple[str, Any, str]]:
    def policy_doc(r: dict[str, Any]) -> None:
        r["policy_document"]["rules"] = []
        r["attestation"]["policy"]["document"] = r["policy_document"]

    def attestation(r: dict[str, Any]) -> None:
        r["attestation"]["audience"] = "model:other"

    def leaf(r: dict[str, Any]) -> None:
        event = json.loads(base64.b64decode(r["log"]["leaf"]))
        event["data"]["audience"] = "model:other"
        r["log"]["leaf"] = base64.b64encode(rfc8785.dumps(event)).decode()

    def proof(r: dict[str, Any]) -> None:
        lines = r["log"]["tlog_proof"].split("\n")
        lines[2] = base64.b64encode(b"\0" * 32).decode()
        r["log"]["tlog_proof"] = "\n".join(lines)

    def checkpoint(r: dict[str, Any]) -> None:
        text = r["log"]["tlog_proof"]
        head, _, note = text.partition("\n\n")
        origin, size, rest = note.split("\n", 2)
        r["log"]["tlog_proof"] = f"{head}\n\n{origin}\n{int(size) + 1}\n{rest}"

    def signature(r: dict[str, Any]) -> None:
        sig = r["attestation"]["signature"]
        r["attestation"]["signature"] = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")

    def index(r: dict[str, Any]) -> None:
        r["log"]["index"] += 1

    return [
        ("policy document", policy_doc, "policy_changed"),
        ("attestation", attestation, "attestation_changed"),
        ("leaf", leaf, "leaf_not_in_log"),
        ("proof", proof, "leaf_not_in_log"),
        ("checkpoint", checkpoint, "bad_signature"),
        ("attestation signature", signature, "bad_attestation_signature"),
        ("index", index, "bad_proof"),
    ]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attest.cli", *args], capture_output=True, text=True, check=False
    )


def _base_install_env(tmp_path: Path) -> dict[str, str]:
    """A PYTHONPATH holding attest and only jwt, cryptography and their dependencies."""
    import os

    import cryptography

    site = Path(cryptography.__file__).resolve().parents[1]
    deps = tmp_path / "deps"
    deps.mkdir()
    for name in ("jwt", "cryptography", "cffi", "pycparser"):
        if (site / name).exists():
            (deps / name).symlink_to(site / name)
    for backend in site.glob("_cffi_backend*"):
        (deps / backend.name).symlink_to(backend)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    repo = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(repo), str(deps)])
    env["PYTHONNOUSERSITE"] = "1"
    return env


def test_verify_receipt_runs_on_the_base_install(
    live: LiveServer,
    admin: httpx.Client,
    operator: httpx.Client,
    eligible_subject: dict[str, Any],
    tmp_path: Path,
) -> None:
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(_receipt(admin, _issue(operator, eligible_subject))))
    vkey = _config(live)["log"]["vkey"]
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['attest', 'audit', 'verify-receipt', sys.argv[1], '--log-key', sys.argv[2]]\n"
        "try:\n"
        "    runpy.run_module('attest.cli', run_name='__main__')\n"
        "finally:\n"
        "    for banned in ('litestar', 'asyncpg', 'msgspec', 'httpx', 'rfc8785'):\n"
        "        assert banned not in sys.modules, banned\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(receipt), vkey],
        env=_base_install_env(tmp_path),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["valid"] is True


def test_verify_receipt_cli_refuses_each_change(
    live: LiveServer,
    admin: httpx.Client,
    operator: httpx.Client,
    eligible_subject: dict[str, Any],
    tmp_path: Path,
) -> None:
    jti = _issue(operator, eligible_subject)
    receipt = _receipt(admin, jti)
    vkey = _config(live)["log"]["vkey"]
    good = tmp_path / "receipt.json"
    good.write_text(json.dumps(receipt))
    ok = _cli("audit", "verify-receipt", str(good), "--log-key", vkey)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["jti"] == jti
    for name, mutate, code in _mutations():
        changed = copy.deepcopy(receipt)
        mutate(changed)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(changed))
        refused = _cli("audit", "verify-receipt", str(path), "--log-key", vkey)
        assert refused.returncode == 1, name
        assert refused.stderr.startswith(f"invalid: {code}:"), (name, refused.stderr)
    # A checkpoint signed by another key: the same origin, a key the auditor does not trust.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    origin = _tlog.parse_vkey(vkey).name
    refused = _cli("audit", "verify-receipt", str(good), "--log-key", _tlog.vkey(origin, other))
    assert refused.returncode == 1
    assert refused.stderr.startswith("invalid: unknown_key:"), refused.stderr


def test_audit_verify_follows_the_log(
    live: LiveServer,
    admin: httpx.Client,
    operator: httpx.Client,
    eligible_subject: dict[str, Any],
    tmp_path: Path,
) -> None:
    vkey = _config(live)["log"]["vkey"]
    state = tmp_path / "state.json"
    first = _cli(
        "audit", "verify", "--url", live.base_url, "--log-key", vkey, "--state", str(state)
    )
    assert first.returncode == 0, first.stderr
    size = json.loads(first.stdout)["tree_size"]
    jti = _issue(operator, eligible_subject)
    _receipt(admin, jti)
    key_file = tmp_path / "key"
    key_file.write_text(live.admin_key)
    again = _cli(
        "audit", "verify", "--url", live.base_url, "--log-key", vkey, "--state", str(state),
        "--jti", jti, "--api-key-file", str(key_file),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["tree_size"] > size
    # A state file from a longer (or different) log: shrunk, or forked.
    saved = json.loads(state.read_text())
    forged = {"root": base64.b64encode(b"\1" * 32).decode(), "size": 1}
    for change, code in (({"size": saved["size"] + 10_000}, "log_shrank"), (forged, "fork")):
        state.write_text(json.dumps({**saved, **change}))
        refused = _cli(
            "audit", "verify", "--url", live.base_url, "--log-key", vkey, "--state", str(state)
        )
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"invalid: {code}:"), refused.stderr
        assert json.loads(state.read_text()) == {**saved, **change}  # not overwritten
