"""Step-by-step receipt and token checks (attest.verify._auditor.receipt_checks,
attest.verify._checks.token_checks) on real receipts and tokens of a live server.

The step lists must agree with the one-code checks they report on: a receipt's first
failing step has the code ``check_receipt`` raises, and no step after it is claimed passed.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import httpx
import pytest
import rfc8785
from attest_testing.service import token_for
from attest_testing.support import US_PASSPORT, Actors, LiveServer

from attest.verify import _tlog
from attest.verify._auditor import RECEIPT_STEPS, check_receipt, receipt_checks
from attest.verify._checks import (
    NOT_REACHED,
    Check,
    token_attestation_check,
    token_checks,
    token_payload,
)

FABLE = "model:fable-5"


def _vkey(live: LiveServer) -> _tlog.VerifierKey:
    config = httpx.get(live.base_url + "/.well-known/attest-configuration").json()
    return _tlog.parse_vkey(config["log"]["vkey"])


def _issue(actors: Actors) -> tuple[httpx.Client, str, str]:
    """An operator, and a token (with its jti) for a US citizen approved by a reviewer."""
    operator = actors.client(
        "subjects:write", "evidence:write", "tokens:issue", "tokens:revoke", name="operator"
    )
    reviewer = actors.client("evidence:review", "subjects:read", name="reviewer")
    subject = operator.post("/v1/subjects", json={"external_ref": "audit-1"}).json()
    evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=US_PASSPORT).json()
    approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
    assert approved.status_code == 200, approved.text
    issued = token_for(operator, subject["id"], FABLE)
    assert issued.status_code == 201, issued.text
    return operator, issued.json()["token"], issued.json()["jti"]


def _receipt(admin: httpx.Client, jti: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        response = admin.get(f"/v1/audit/attestations/{jti}/receipt")
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        assert response.status_code == 404, response.text
        assert time.monotonic() < deadline, "the receipt never became available"
        time.sleep(0.1)


def _outcomes(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.outcome for c in checks}


def _assert_fails_at(checks: list[Check], name: str, code: str) -> None:
    """Every step before ``name`` passed, ``name`` failed with ``code``, none after passed."""
    names = [c.name for c in checks]
    at = names.index(name)
    assert [c.outcome for c in checks[:at]] == ["pass"] * at, checks
    assert checks[at].outcome == "fail", checks[at]
    assert checks[at].code == code, checks[at]
    for later in checks[at + 1 :]:
        assert later.outcome == "skipped", later
        assert later.message == NOT_REACHED


def _tamper_proof(r: dict[str, Any]) -> None:
    """Flip one byte of the first hash of the inclusion proof."""
    lines = r["log"]["tlog_proof"].split("\n")
    raw = bytearray(base64.b64decode(lines[2]))
    raw[0] ^= 0x01
    lines[2] = base64.b64encode(bytes(raw)).decode()
    r["log"]["tlog_proof"] = "\n".join(lines)


def _tamper_attestation(r: dict[str, Any]) -> None:
    r["attestation"]["assurance"] = "IAL3"


def _tamper_policy(r: dict[str, Any]) -> None:
    r["policy_document"]["min_assurance"] = "IAL1"
    r["attestation"]["policy"]["document"] = r["policy_document"]


def _tamper_leaf(r: dict[str, Any]) -> None:
    event = json.loads(base64.b64decode(r["log"]["leaf"]))
    event["data"]["audience"] = "model:other"
    r["log"]["leaf"] = base64.b64encode(rfc8785.dumps(event)).decode()


def _tamper_checkpoint(r: dict[str, Any]) -> None:
    head, _, note = r["log"]["tlog_proof"].partition("\n\n")
    origin, size, rest = note.split("\n", 2)
    r["log"]["tlog_proof"] = f"{head}\n\n{origin}\n{int(size) + 1}\n{rest}"


def _tamper_window(r: dict[str, Any]) -> None:
    r["signing_key"]["not_before"] = "2999-01-01T00:00:00+00:00"


def _tamper_signature(r: dict[str, Any]) -> None:
    sig = r["attestation"]["signature"]
    r["attestation"]["signature"] = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")


def _tamper_format(r: dict[str, Any]) -> None:
    r["format"] = "attest-receipt/v0"


def _tamper_key_type(r: dict[str, Any]) -> None:
    r["signing_key"]["jwk"] = {"kid": r["attestation"]["kid"], "kty": "oct", "k": "AAAA"}


def _tamper_key_swap(r: dict[str, Any]) -> None:
    # Another P-256 key under the attestation's kid (it could sign a forged record).
    from cryptography.hazmat.primitives.asymmetric import ec

    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()

    r["signing_key"]["jwk"] = {
        "kid": r["attestation"]["kid"],
        "kty": "EC",
        "crv": "P-256",
        "x": b64(numbers.x),
        "y": b64(numbers.y),
    }


def _tamper_types(r: dict[str, Any]) -> None:
    r["attestation"]["policy"] = ["not", "an", "object"]


TAMPERS = [
    ("format", _tamper_format, "format", "malformed_receipt"),
    ("checkpoint size", _tamper_checkpoint, "checkpoint", "bad_signature"),
    ("inclusion proof byte", _tamper_proof, "inclusion", "leaf_not_in_log"),
    ("leaf", _tamper_leaf, "inclusion", "leaf_not_in_log"),
    ("symmetric signing key", _tamper_key_type, "signing_key", "bad_attestation"),
    ("another key under the kid", _tamper_key_swap, "signing_key", "bad_attestation"),
    ("attestation signature", _tamper_signature, "signature", "bad_attestation_signature"),
    ("attestation field", _tamper_attestation, "record", "attestation_changed"),
    ("policy shape", _tamper_types, "record", "malformed_receipt"),
    ("key window", _tamper_window, "key_window", "key_window"),
    ("policy document", _tamper_policy, "policy_digest", "policy_changed"),
]


@pytest.fixture
def issued(actors: Actors) -> tuple[httpx.Client, str, str]:
    return _issue(actors)


def test_a_valid_receipt_passes_every_step(
    live: LiveServer, admin: httpx.Client, issued: tuple[httpx.Client, str, str]
) -> None:
    _, _, jti = issued
    receipt = _receipt(admin, jti)
    checks = receipt_checks(receipt, _vkey(live))
    assert [c.name for c in checks] == [name for name, _, _ in RECEIPT_STEPS]
    assert all(c.outcome == "pass" for c in checks), checks
    by_name = {c.name: c for c in checks}
    assert f"leaf {receipt['log']['index']} is in the signed tree" in by_name["inclusion"].message
    assert receipt["attestation"]["policy"]["digest"] in by_name["policy_digest"].message
    assert receipt["signing_key"]["not_before"] in by_name["key_window"].message


@pytest.mark.parametrize(("what", "tamper", "step", "code"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_a_tampered_receipt_fails_at_its_step(
    live: LiveServer,
    admin: httpx.Client,
    issued: tuple[httpx.Client, str, str],
    what: str,
    tamper: Any,
    step: str,
    code: str,
) -> None:
    receipt = copy.deepcopy(_receipt(admin, issued[2]))
    tamper(receipt)
    key = _vkey(live)
    checks = receipt_checks(receipt, key)
    _assert_fails_at(checks, step, code)
    if code != "malformed_receipt" or step == "format":
        # The one-code check refuses with the same code as the first failing step.
        with pytest.raises(_tlog.LogError) as refused:
            check_receipt(receipt, key)
        assert refused.value.code == code, what


def test_a_receipt_for_another_log_key_fails_at_the_checkpoint(
    live: LiveServer, admin: httpx.Client, issued: tuple[httpx.Client, str, str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    receipt = _receipt(admin, issued[2])
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    untrusted = _tlog.parse_vkey(_tlog.vkey(_vkey(live).name, other))
    _assert_fails_at(receipt_checks(receipt, untrusted), "checkpoint", "unknown_key")


def test_receipt_checks_take_any_json(live: LiveServer) -> None:
    key = _vkey(live)
    for junk in (None, [], "x", {"format": "attest-receipt/v1", "log": []}, {"format": 1}):
        checks = receipt_checks(junk, key)
        assert checks[0].outcome == "fail"
        assert {c.outcome for c in checks[1:]} == {"skipped"}


def _status_lists(live: LiveServer, token: str) -> dict[str, str]:
    uri = token_payload(token)["status"]["status_list"]["uri"]  # type: ignore[index]
    return {uri: httpx.get(uri).text}


def _jwks(live: LiveServer) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(live.base_url + "/.well-known/jwks.json").json()
    return body


def test_a_valid_token_passes_signature_claims_and_status(
    live: LiveServer, issued: tuple[httpx.Client, str, str]
) -> None:
    _, token, _ = issued
    checks = token_checks(
        token,
        issuer=live.settings.issuer,
        jwks=_jwks(live),
        status_lists=_status_lists(live, token),
        now=time.time(),
    )
    assert _outcomes(checks) == {
        "signature": "pass",
        "claims": "pass",
        "status": "pass",
        "binding": "skipped",
    }
    assert "is VALID" in checks[2].message


def test_a_revoked_token_fails_its_status_check(
    live: LiveServer, issued: tuple[httpx.Client, str, str]
) -> None:
    operator, token, jti = issued
    revoked = operator.post(f"/v1/tokens/{jti}/revocations", json={})
    assert revoked.status_code in {200, 201}, revoked.text
    checks = token_checks(
        token,
        issuer=live.settings.issuer,
        jwks=_jwks(live),
        status_lists=_status_lists(live, token),
        now=time.time(),
    )
    _assert_fails_at(checks, "status", "revoked")


def test_token_failures_land_on_their_step(
    live: LiveServer, issued: tuple[httpx.Client, str, str]
) -> None:
    _, token, _ = issued
    common: dict[str, Any] = {
        "issuer": live.settings.issuer,
        "jwks": _jwks(live),
        "status_lists": _status_lists(live, token),
    }
    head, body, sig = token.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BA")
    _assert_fails_at(
        token_checks(f"{head}.{body}.{flipped}", now=time.time(), **common),
        "signature",
        "bad_signature",
    )
    _assert_fails_at(
        token_checks(token, now=time.time(), **{**common, "jwks": {"keys": []}}),
        "signature",
        "unknown_key",
    )
    _assert_fails_at(
        token_checks("not a token", now=time.time(), **common), "signature", "malformed"
    )
    exp = token_payload(token)["exp"]  # type: ignore[index]
    _assert_fails_at(token_checks(token, now=exp + 60, **common), "claims", "expired")
    _assert_fails_at(
        token_checks(token, now=time.time(), **{**common, "issuer": "https://elsewhere.test"}),
        "claims",
        "wrong_issuer",
    )
    # No list at hand, or one with a forged signature: the status check fails closed.
    _assert_fails_at(
        token_checks(token, now=time.time(), **{**common, "status_lists": {}}),
        "status",
        "status_unavailable",
    )
    uri, list_token = next(iter(common["status_lists"].items()))
    forged = list_token[:-4] + ("AAAA" if list_token[-4:] != "AAAA" else "BBBB")
    _assert_fails_at(
        token_checks(token, now=time.time(), **{**common, "status_lists": {uri: forged}}),
        "status",
        "status_unavailable",
    )


def test_the_attestation_check_compares_the_token_digest(
    admin: httpx.Client, issued: tuple[httpx.Client, str, str]
) -> None:
    _, token, jti = issued
    record = admin.get(f"/v1/audit/attestations/{jti}").json()
    assert token_attestation_check(token, record).outcome == "pass"
    other = token_attestation_check(token + "x", record)
    assert (other.outcome, other.code) == ("fail", "token_mismatch")
