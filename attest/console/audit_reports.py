"""What the auditor pages show, composed from the services the API uses (no SQL here).

A pasted token is checked as a verifier of this issuer checks it: the published key set
(``KeyService.jwks``, what ``/.well-known/jwks.json`` serves) and the token's Status List
Token (``StatusListService.list_token``, what ``/v1/status-lists/{id}`` serves), with every
verifier check of :func:`attest.verify._checks.token_checks`. Once its signature verified,
its jti is trusted to name an attestation: the attestation must record this token, and its
receipt (``LogService.receipt``) is checked step by step against the log key, as
``attest audit verify-receipt`` does. An uploaded receipt gets the same receipt steps,
against the log key of its origin in this log's key history (never the receipt's own
``vkey``), and its signing key is compared with the issuer's key history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from attest.audit.service import AuditService
from attest.console.audit_charts import Chart, decision_charts, key_state_chart
from attest.errors import NotFound
from attest.keys.models import SigningKey
from attest.keys.service import KeyService
from attest.log.models import CheckpointRecord
from attest.log.service import LogService
from attest.principal import Client
from attest.status.service import StatusListService
from attest.tokens.service import TokenService
from attest.tokens.views import attestation_record
from attest.verify._auditor import RECEIPT_STEPS, receipt_checks
from attest.verify._checks import (
    NOT_REACHED,
    Check,
    token_attestation_check,
    token_checks,
    token_kid,
    token_payload,
)
from attest.verify._tlog import parse_vkey

__all__ = [
    "MAX_RECEIPT_BYTES",
    "WINDOWS",
    "ChartsReport",
    "KeyWindow",
    "Report",
    "charts",
    "check_receipt_upload",
    "check_token",
    "checkpoints",
    "parse_receipt",
    "period",
]

#: A receipt upload larger than this is refused before parsing (bytes).
MAX_RECEIPT_BYTES = 1 << 20
#: Chart periods: name -> (span, bucket).
WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=5)),
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
_LIST_PATH = "/v1/status-lists/"


@dataclass(frozen=True, slots=True)
class KeyWindow:
    """A signing key as the issuer's key history records it."""

    kid: str
    alg: str
    state: str
    not_before: datetime
    not_after: datetime | None


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of one check: the token's own steps (none for a receipt), the log and
    attestation steps, and what they were about, shown only once their step passed."""

    token_checks: list[Check]
    log_checks: list[Check]
    #: The attestation record (jti, audience, policy, ...), once its signature verified.
    record: dict[str, Any] | None
    #: The signing key, from the key history, once the key step passed.
    key: KeyWindow | None

    @property
    def checks(self) -> list[Check]:
        return [*self.token_checks, *self.log_checks]

    @property
    def valid(self) -> bool:
        """Nothing failed and the log part was checked through (a token's holder binding
        is reported, not checked: the resource server checks its DPoP proof)."""
        return all(c.outcome != "fail" for c in self.token_checks) and all(
            c.outcome == "pass" for c in self.log_checks
        )

    @property
    def policy(self) -> dict[str, Any] | None:
        """The policy version that decided (name, version, digest), as signed."""
        if self.record is None or not isinstance(self.record.get("policy"), dict):
            return None
        return {k: self.record["policy"].get(k) for k in ("name", "version", "digest")}


def _window(key: SigningKey) -> KeyWindow:
    # The window a receipt states (LogService.receipt): from activation (or creation) to
    # retiring or compromise, whichever came.
    return KeyWindow(
        kid=key.kid,
        alg=key.alg,
        state=key.state,
        not_before=key.activated_at or key.created_at,
        not_after=key.retiring_at or key.compromised_at,
    )


def _skipped(message: str, prefix: str = "") -> list[Check]:
    return [Check(prefix + name, title, "skipped", message) for name, title, _ in RECEIPT_STEPS]


async def _status_tokens(
    payload: dict[str, Any], issuer: str, status_list_service: StatusListService, now: datetime
) -> dict[str, str]:
    """The Status List Token the token points to, when it is one of this issuer's lists."""
    ref = payload.get("status")
    ref = ref.get("status_list") if isinstance(ref, dict) else None
    uri = ref.get("uri") if isinstance(ref, dict) else None
    prefix = issuer.rstrip("/") + _LIST_PATH
    if not isinstance(uri, str) or not uri.startswith(prefix):
        return {}
    list_id = uri[len(prefix) :]
    if not (list_id.isascii() and list_id.isdigit() and len(list_id) <= 9):
        return {}
    try:
        token = await status_list_service.list_token(int(list_id), now)
    except NotFound:
        return {}
    return {uri: token.body.decode("ascii")}


async def check_token(
    token: str,
    *,
    client: Client,
    now: datetime,
    key_service: KeyService,
    status_list_service: StatusListService,
    token_service: TokenService,
    log_service: LogService,
) -> Report:
    """Every check of a pasted token, then of its attestation and log entry."""
    token = token.strip()
    issuer = str(key_service.discovery()["issuer"])
    payload = token_payload(token) or {}
    jwks = json.loads((await key_service.jwks()).body)
    statuses = await _status_tokens(payload, issuer, status_list_service, now)
    steps = token_checks(
        token, issuer=issuer, jwks=jwks, status_lists=statuses, now=now.timestamp()
    )
    history = await key_service.history()
    kid = token_kid(token)
    signer = next((k for k in history if k.kid == kid), None)
    key = _window(signer) if signer is not None else None
    if steps[0].code == "unknown_key" and signer is not None:
        # Not in the published key set, but in the history: say which state it is in.
        steps[0] = Check(
            steps[0].name,
            steps[0].title,
            "fail",
            f"key {kid} is {signer.state} and no longer in the published key set: "
            "verifiers refuse its tokens",
            "unknown_key",
        )
    if steps[0].outcome != "pass":
        return Report(
            steps,
            [
                Check("attestation", "Attestation of this token", "skipped", NOT_REACHED),
                *_skipped(NOT_REACHED, "log."),
            ],
            None,
            key,
        )
    # The signature verified: the payload is the issuer's, and its jti names the attestation.
    jti = payload.get("jti")
    try:
        found = await token_service.attestation(client, str(jti))
    except NotFound:
        missing = Check(
            "attestation",
            "Attestation of this token",
            "fail",
            "no attestation with this jti is in this key's view (another tenant's token?)",
            "no_attestation",
        )
        return Report(steps, [missing, *_skipped(NOT_REACHED, "log.")], None, key)
    record = attestation_record(found)
    matched = token_attestation_check(token, record)
    if matched.outcome != "pass":
        return Report(steps, [matched, *_skipped(NOT_REACHED, "log.")], record, key)
    try:
        receipt = await log_service.receipt(client, str(jti))
    except NotFound:
        pending = "the log entry is not in a signed checkpoint yet; check again in a moment"
        return Report(steps, [matched, *_skipped(pending, "log.")], record, key)
    log_steps = receipt_checks(receipt.body, parse_vkey(log_service.key.vkey))
    prefixed = [Check("log." + c.name, c.title, c.outcome, c.message, c.code) for c in log_steps]
    return Report(steps, [matched, *prefixed], record, key)


def parse_receipt(raw: bytes) -> Any:
    """The uploaded bytes as JSON, or None when they are not (too large, not UTF-8 JSON)."""
    if len(raw) > MAX_RECEIPT_BYTES:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


async def check_receipt_upload(
    raw: bytes, *, key_service: KeyService, log_service: LogService
) -> Report:
    """Every step of an uploaded receipt, against this log's key for its origin, and its
    signing key against the issuer's key history."""
    receipt = parse_receipt(raw)
    origin = None
    if isinstance(receipt, dict) and isinstance(receipt.get("log"), dict):
        origin = receipt["log"].get("origin")
    vkey = next(
        (k["vkey"] for k in await log_service.key_history() if k["origin"] == origin),
        log_service.key.vkey,
    )
    steps = receipt_checks(receipt, parse_vkey(vkey))
    if receipt is None:
        steps = [
            Check(
                "format",
                "Receipt format",
                "fail",
                "the file is not JSON (or over 1 MiB)",
                "malformed_receipt",
            ),
            *steps[1:],
        ]
    record = receipt.get("attestation") if isinstance(receipt, dict) else None
    passed = {c.name for c in steps if c.outcome == "pass"}
    history = await key_service.history()
    known = _known_key(receipt, history) if "signing_key" in passed else None
    steps.append(_history_check(receipt, known, all(c.outcome == "pass" for c in steps)))
    return Report(
        [],
        steps,
        record if isinstance(record, dict) and "signature" in passed else None,
        _window(known) if known is not None else None,
    )


def _known_key(receipt: Any, history: list[SigningKey]) -> SigningKey | None:
    jwk = receipt["signing_key"]["jwk"]
    return next((k for k in history if k.kid == jwk.get("kid")), None)


def _history_check(receipt: Any, known: SigningKey | None, reached: bool) -> Check:
    title = "Key in the issuer's key history"
    if not reached:
        return Check("key_history", title, "skipped", NOT_REACHED)
    stated = receipt["signing_key"]
    if known is None:
        return Check(
            "key_history", title, "fail", "this issuer has no key with this kid", "unknown_key"
        )
    window = _window(known)
    same_key = {k: v for k, v in stated["jwk"].items() if k not in {"kid", "alg", "use"}} == {
        k: v for k, v in known.public_jwk.items() if k not in {"kid", "alg", "use"}
    }
    same_window = (
        _time(stated.get("not_before")) == window.not_before
        and _time(stated.get("not_after")) == window.not_after
    )
    if not same_key or not same_window:
        return Check(
            "key_history",
            title,
            "fail",
            "the receipt's signing key or its window differs from the issuer's key history",
            "key_history_mismatch",
        )
    return Check(
        "key_history",
        title,
        "pass",
        f"key {known.kid} is in the key history ({known.state}), with the same window",
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# -- charts and checkpoints --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartsReport:
    window: str
    since: datetime
    until: datetime
    charts: list[Chart]


def period(window: str, now: datetime) -> tuple[datetime, datetime, timedelta]:
    """``[since, until)`` ending with the bucket that holds ``now``, aligned to buckets."""
    span, bucket = WINDOWS[window]
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    until = epoch + ((now - epoch) // bucket + 1) * bucket
    return until - span, until, bucket


async def charts(
    client: Client,
    window: str,
    *,
    now: datetime,
    audit_service: AuditService,
    key_service: KeyService,
) -> ChartsReport:
    """Decisions of the client's view (admin: every tenant) and the signing keys' states."""
    if window not in WINDOWS:
        window = "24h"
    since, until, bucket = period(window, now)
    counts = await audit_service.decision_counts(
        None if client.is_admin else client.tenant, since=since, until=until, bucket=bucket
    )
    drawn = decision_charts(counts)
    drawn.append(key_state_chart(await key_service.history(), since, until, bucket))
    return ChartsReport(window, since, until, drawn)


async def checkpoints(
    log_service: LogService, *, below: int | None, limit: int = 50
) -> list[CheckpointRecord]:
    return await log_service.checkpoint_history(limit=limit, below=below)
