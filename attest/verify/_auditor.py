"""``attest audit verify-receipt`` and ``attest audit verify``: base install only.

A receipt is checked with no network: the checkpoint's signature by the log key given on
the command line (the trust anchor; the receipt's own ``vkey`` is only compared with it),
the inclusion of the leaf, that the leaf is the ``token.issued`` event of this attestation,
the attestation's signature by its signing key inside that key's window, and the policy
digest over the document. ``verify`` follows a live log: the latest checkpoint, its
consistency with the one kept in the state file, and optionally one attestation's receipt.
Every failure is a :class:`LogError` with a stable ``code`` and a sentence saying what.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from ._checks import Check, Step, run_steps
from ._jwk import _admit, jwk_thumbprint
from ._tlog import (
    Checkpoint,
    LogError,
    TlogProof,
    VerifierKey,
    leaf_hash,
    open_checkpoint,
    parse_tlog_proof,
    parse_vkey,
    verify_consistency,
    verify_inclusion,
)

__all__ = ["RECEIPT_STEPS", "canonical_json", "check_receipt", "follow_log", "receipt_checks"]

RECEIPT_FORMAT = "attest-receipt/v1"
ATTESTATION_TYPE = "attestation+jwt"
_TIMEOUT = 10


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of what attest documents hold (objects, arrays, strings,
    integers up to 2**53, finite numbers, booleans, null)."""
    return _canonical(value).encode("utf-8")


def _canonical(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise ValueError("an integer beyond 2**53 has no RFC 8785 form")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a non-finite number has no RFC 8785 form")
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}e{int(exponent):+d}" if e else text
    if isinstance(value, str):
        # RFC 8785 3.2.2.2: JSON string escaping as ECMAScript's JSON.stringify does it.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        # RFC 8785 3.2.3: members sorted by the UTF-16 code units of their names.
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(f"{_canonical(k)}:{_canonical(v)}" for k, v in items) + "}"
    raise ValueError(f"{type(value).__name__} is not JSON")


def _fail(code: str, message: str) -> LogError:
    return LogError(code, message)


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise _fail("malformed_receipt", f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise _fail("malformed_receipt", f"{what} is not base64") from None


def _b64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise _fail("bad_attestation", "the attestation signature is not a JWS") from None


def _time(value: object, what: str) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise _fail("malformed_receipt", f"{what} is not an RFC 3339 time") from None


@dataclass
class _Receipt:
    """What the steps of a receipt check learn, one step after another."""

    receipt: Any
    key: VerifierKey
    entry: dict[str, Any] = field(default_factory=dict)
    proof: TlogProof | None = None
    checkpoint: Checkpoint | None = None
    leaf: bytes = b""
    record: dict[str, Any] = field(default_factory=dict)
    signing_key: dict[str, Any] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)
    verifier: Any = None
    payload: dict[str, Any] = field(default_factory=dict)


def _step_format(s: _Receipt) -> str:
    receipt = s.receipt
    if not isinstance(receipt, dict) or receipt.get("format") != RECEIPT_FORMAT:
        raise _fail("malformed_receipt", f"not an {RECEIPT_FORMAT} receipt")
    entry = receipt.get("log")
    if not isinstance(entry, dict):
        raise _fail("malformed_receipt", "the receipt has no log entry")
    s.entry = entry
    return f"an {RECEIPT_FORMAT} receipt with a log entry"


def _step_checkpoint(s: _Receipt) -> str:
    """The checkpoint is signed by the log key the auditor trusts (not the receipt's)."""
    entry, key = s.entry, s.key
    if entry.get("origin") != key.name:
        raise _fail("unknown_key", f"the receipt is for log {entry.get('origin')!r}, not ours")
    proof_text = entry.get("tlog_proof")
    if not isinstance(proof_text, str):
        raise _fail("malformed_receipt", "the receipt has no tlog_proof")
    s.proof = parse_tlog_proof(proof_text)
    s.checkpoint = open_checkpoint(s.proof.checkpoint, key)
    return (
        f"checkpoint of {key.name} at tree size {s.checkpoint.size}, "
        f"signed by the log key {key.key_id.hex()}"
    )


def _step_inclusion(s: _Receipt) -> str:
    proof, checkpoint = s.proof, s.checkpoint
    assert proof is not None  # noqa: S101 - set by the checkpoint step
    assert checkpoint is not None  # noqa: S101 - set by the checkpoint step
    s.leaf = _b64(s.entry.get("leaf"), "log.leaf")
    if s.entry.get("index") != proof.index:
        raise _fail("bad_proof", "the receipt's index is not its proof's")
    try:
        verify_inclusion(
            proof.index, checkpoint.size, leaf_hash(s.leaf), proof.proof, checkpoint.root
        )
    except LogError as exc:
        raise _fail(
            "leaf_not_in_log",
            f"leaf {proof.index} is not in the signed tree of size {checkpoint.size} "
            f"({exc}): the leaf, the proof or the audit event was changed",
        ) from None
    return f"leaf {proof.index} is in the signed tree of size {checkpoint.size}"


def _step_signing_key(s: _Receipt) -> str:
    """The signing key is the one the attestation names, and fit to verify it."""
    record = s.receipt.get("attestation")
    key = s.receipt.get("signing_key")
    document = s.receipt.get("policy_document")
    if not isinstance(record, dict) or not isinstance(key, dict) or not isinstance(document, dict):
        raise _fail("malformed_receipt", "attestation, signing_key and policy_document needed")
    s.record, s.signing_key, s.document = record, key, document
    jwk = key.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kid") != record.get("kid"):
        raise _fail("bad_attestation", "the signing key is not the key the attestation names")
    try:
        s.verifier = _admit(jwk)
    except ValueError as exc:
        raise _fail("bad_attestation", f"the signing key is refused: {exc}") from None
    # The kid is the key's RFC 7638 thumbprint, and the log's leaf anchors the kid: another
    # key under that kid (one that signed a forged record) is not the key that signed.
    if jwk_thumbprint(jwk) != jwk["kid"]:
        raise _fail("bad_attestation", "the signing key's kid is not its RFC 7638 thumbprint")
    return f"key {jwk['kid']} ({s.verifier.alg}), the key the attestation names"


def _step_signature(s: _Receipt) -> str:
    """The attestation's JWS verifies with the signing key."""
    verifier, kid = s.verifier, s.signing_key["jwk"]["kid"]
    parts = str(s.record.get("signature", "")).split(".")
    if len(parts) != 3:
        raise _fail("bad_attestation", "the attestation signature is not a compact JWS")
    try:
        header = json.loads(_b64url(parts[0]))
        payload = json.loads(_b64url(parts[1]))
    except ValueError:
        raise _fail("bad_attestation", "the attestation JWS is not JSON") from None
    # The key decides the algorithm (RFC 8725 3.1); the header must agree with it.
    if header != {"alg": verifier.alg, "kid": kid, "typ": ATTESTATION_TYPE}:
        raise _fail("bad_attestation", "the attestation JWS header is not attest's")
    try:
        verifier.verify(_b64url(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii"))
    except (InvalidSignature, ValueError):
        raise _fail(
            "bad_attestation_signature",
            "the attestation's signature does not verify with its signing key: "
            "the attestation was changed",
        ) from None
    if not isinstance(payload, dict):
        raise _fail("bad_attestation", "the attestation JWS is not JSON")
    s.payload = payload
    return f"the attestation's {verifier.alg} signature verifies with key {kid}"


def _step_record(s: _Receipt) -> str:
    """What was signed is the record shown."""
    record, payload = s.record, s.payload
    policy = record.get("policy")
    if not isinstance(policy, dict):
        raise _fail("malformed_receipt", "the attestation has no policy")
    expected = {
        "jti": record.get("jti"),
        "subject_id": record.get("subject_id"),
        "audience": record.get("audience"),
        "sub": record.get("sub"),
        "policy": {k: policy.get(k) for k in ("name", "version", "digest")},
        "assurance": record.get("assurance"),
        "evidence_ids": record.get("evidence_ids"),
        "kid": record.get("kid"),
        "token_sha256": record.get("token_sha256"),
        "cnf_jkt": record.get("cnf_jkt"),
    }
    signed = {k: payload.get(k) for k in expected}
    if signed != expected:
        changed = sorted(k for k in expected if signed[k] != expected[k])
        raise _fail(
            "attestation_changed",
            f"the attestation record differs from what was signed: {', '.join(changed)}",
        )
    if not isinstance(payload.get("iat"), int):
        raise _fail("bad_attestation", "the signed attestation has no integer iat")
    return f"the record of {record.get('jti')} is what was signed"


def _step_window(s: _Receipt) -> str:
    """It was signed inside the key's window."""
    issued, key = s.payload["iat"], s.signing_key
    # iat is whole seconds, rounded down from the signing time: compare at that precision.
    not_before = math.floor(_time(key.get("not_before"), "signing_key.not_before").timestamp())
    not_after = key.get("not_after")
    if issued < not_before or (
        not_after is not None and issued > _time(not_after, "signing_key.not_after").timestamp()
    ):
        raise _fail("key_window", "the attestation was signed outside its key's signing window")
    until = "no end yet" if not_after is None else f"until {not_after}"
    return (
        f"signed at {datetime.fromtimestamp(issued, UTC).isoformat()}, inside the key's "
        f"window from {key.get('not_before')} ({until})"
    )


def _step_policy(s: _Receipt) -> str:
    """The policy document hashes to the signed digest and is the named version."""
    policy, document = s.record["policy"], s.document
    try:
        digest = hashlib.sha256(canonical_json(document)).hexdigest()
    except ValueError as exc:
        raise _fail("policy_changed", f"the policy document is not canonical JSON: {exc}") from None
    if digest != policy.get("digest"):
        raise _fail(
            "policy_changed",
            "the policy document does not hash to the digest the attestation was signed over",
        )
    if policy.get("document") is not None and policy.get("document") != document:
        raise _fail("policy_changed", "the attestation's policy document is not the receipt's")
    if document.get("name") != policy.get("name") or document.get("version") != policy.get(
        "version"
    ):
        raise _fail("policy_changed", "the policy document is another policy or version")
    return f"{policy.get('name')} version {policy.get('version')} hashes to sha256 {digest}"


def _step_leaf(s: _Receipt) -> str:
    """The leaf is the ``token.issued`` event of this attestation (RFC 8785 bytes)."""
    leaf, record = s.leaf, s.record
    try:
        event = json.loads(leaf)
    except ValueError:
        raise _fail("leaf_mismatch", "the leaf is not JSON") from None
    if not isinstance(event, dict) or canonical_json(event) != leaf:
        raise _fail("leaf_mismatch", "the leaf is not the canonical JSON of an audit event")
    data = event.get("data")
    if event.get("type") != "token.issued" or not isinstance(data, dict):
        raise _fail("leaf_mismatch", "the leaf is not a token.issued event")
    policy = record.get("policy") or {}
    for name, want in (
        ("jti", record.get("jti")),
        ("token_sha256", record.get("token_sha256")),
        ("kid", record.get("kid")),
        ("policy_digest", policy.get("digest")),
        ("audience", record.get("audience")),
    ):
        if data.get(name) != want:
            raise _fail("leaf_mismatch", f"the leaf's {name} is not the attestation's")
    if event.get("subject_id") != record.get("subject_id"):
        raise _fail("leaf_mismatch", "the leaf's subject is not the attestation's")
    return f"the leaf is the token.issued event {event.get('event_id')} of this attestation"


#: The steps of a receipt check, in the order check_receipt has always run them (so the
#: first failure, and its code, are the same either way).
RECEIPT_STEPS: tuple[Step[_Receipt], ...] = (
    ("format", "Receipt format", _step_format),
    ("checkpoint", "Signed checkpoint", _step_checkpoint),
    ("inclusion", "Log inclusion", _step_inclusion),
    ("signing_key", "Signing key", _step_signing_key),
    ("signature", "Attestation signature", _step_signature),
    ("record", "Signed record", _step_record),
    ("key_window", "Key validity window", _step_window),
    ("policy_digest", "Policy digest", _step_policy),
    ("leaf", "Leaf is this issuance", _step_leaf),
)


def check_receipt(receipt: object, key: VerifierKey) -> Checkpoint:
    """Check an attestation receipt offline; returns the checkpoint it was proven against."""
    state = _Receipt(receipt, key)
    for _name, _title, step in RECEIPT_STEPS:
        step(state)
    assert state.checkpoint is not None  # noqa: S101 - set by the checkpoint step
    return state.checkpoint


def receipt_checks(receipt: object, key: VerifierKey) -> list[Check]:
    """Every step of :func:`check_receipt` with its outcome: the steps before the first
    failure pass, that one fails with its code and message, the rest are skipped."""
    return run_steps(RECEIPT_STEPS, _Receipt(receipt, key))


# -- following a live log ---------------------------------------------------------------


def _get(url: str, api_key: str | None = None) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
        raise _fail("network", f"not an http(s) URL: {url}")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
            body: bytes = response.read(1 << 24)
            return body
    except urllib.error.HTTPError as exc:
        raise _fail("network", f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _fail("network", f"cannot fetch {url}: {exc}") from None


def _read_state(path: Path | None) -> dict[str, Any] | None:
    if path is None or not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return {**state, "size": int(state["size"]), "root": _b64(state["root"], "state root")}
    except (OSError, ValueError, KeyError, TypeError):
        raise _fail("bad_state", f"the state file {path} is not one attest wrote") from None


def _write_state(path: Path, key: VerifierKey, checkpoint: Checkpoint, note: str) -> None:
    state = {
        "origin": key.name,
        "size": checkpoint.size,
        "root": base64.b64encode(checkpoint.root).decode(),
        "checkpoint": note,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=".attest-state-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1)
    os.replace(tmp, path)


def _consistent(base: str, old: tuple[int, bytes], new: Checkpoint) -> None:
    size, root = old
    if new.size < size:
        raise _fail(
            "log_shrank",
            f"the log shrank from {size} to {new.size} leaves since the last check: "
            "it was truncated or rewritten",
        )
    if new.size == size:
        if new.root != root:
            raise _fail("fork", f"two different roots for tree size {size}: the log forked")
        return
    query = urllib.parse.urlencode({"first": size, "second": new.size})
    answer = json.loads(_get(f"{base}/v1/log/proofs/consistency?{query}"))
    proof = [_b64(h, "consistency proof hash") for h in answer.get("proof", [])]
    verify_consistency(size, new.size, root, new.root, proof)


def follow_log(
    url: str,
    vkey: str,
    *,
    state: Path | None = None,
    jti: str | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Check the live log at ``url``: signature, consistency with the state file, and the
    receipt of ``jti``. Updates the state file only when every check passed."""
    key = parse_vkey(vkey)
    base = url.rstrip("/")
    note = _get(f"{base}/v1/log/checkpoint").decode("utf-8", "replace")
    latest = open_checkpoint(note, key)
    previous = _read_state(state)
    if previous is not None:
        if previous.get("origin") != key.name:
            raise _fail("bad_state", f"the state file is for log {previous.get('origin')!r}")
        _consistent(base, (previous["size"], previous["root"]), latest)
    result: dict[str, Any] = {"origin": key.name, "tree_size": latest.size}
    if jti is not None:
        quoted = urllib.parse.quote(jti, safe="")
        receipt = json.loads(_get(f"{base}/v1/audit/attestations/{quoted}/receipt", api_key))
        proven = check_receipt(receipt, key)
        if proven.size > latest.size:
            raise _fail("log_shrank", "the receipt's checkpoint is newer than the latest one")
        _consistent(base, (proven.size, proven.root), latest)
        result["jti"] = jti
        result["index"] = receipt["log"]["index"]
    if state is not None:
        _write_state(state, key, latest, note)
    return result
