"""``document_mrz`` evidence: what a machine-readable zone establishes. Pure.

The MRZ rules themselves live in :mod:`attest.evidence.mrz`; this module turns their result
into an evidence outcome, derives the ``citizenship`` attribute and computes the keyed hash
that stands in for the document number. No SQL, no HTTP, no clock: ``now`` is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from attest.errors import UnprocessableInput
from attest.evidence.mrz import MrzResult, check_mrz
from attest.evidence.rules import Outcome, needs_second_reviewer

__all__ = ["DocumentOutcome", "assess_document_mrz", "document_hash", "document_hash_key"]

#: Codes of the rules whose failure means the text is no MRZ at all: malformed input (422),
#: not a document that failed its checks.
_SHAPE_CODES = frozenset({"mrz_format", "mrz_charset"})
_HASH_LABEL = b"attest document number hash v1"


def document_hash_key(document_hash_secret: str | None, pairwise_key: bytes) -> bytes:
    """The HMAC key for document numbers: the configured secret, else one derived from the
    pairwise secret under a label of its own (so the two uses never share a key)."""
    if document_hash_secret:
        return document_hash_secret.encode()
    return hmac.new(pairwise_key, _HASH_LABEL, hashlib.sha256).digest()


def document_hash(key: bytes, result: MrzResult) -> str:
    """HMAC-SHA-256 over issuing state, document kind and number: equal for the same
    document presented twice, and meaningless without the key."""
    kind = (result.document_code or "")[:1]
    message = f"{result.issuing_state}|{kind}|{result.document_number}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class DocumentOutcome:
    outcome: Outcome
    attributes: dict[str, Any]
    document_hash: str | None  # only for an MRZ that passed every check
    reason_codes: list[str]


def _end_of(day: Any) -> datetime:
    """The first instant after ``day`` (UTC): a document is valid through its expiry date."""
    return datetime.combine(day, time(0), tzinfo=UTC) + timedelta(days=1)


def assess_document_mrz(
    *,
    mrz: str | None,
    attributes: dict[str, Any],
    document_type: str | None,
    assurance: str,
    now: datetime,
    validity: timedelta,
    four_eyes_min: str,
    hash_key: bytes,
) -> DocumentOutcome:
    """Check the MRZ at ``now``; a failed rule rejects the evidence with its reason.

    The attributes come from the document, never from the caller, so ``attributes`` and
    ``document_type`` must be absent. An MRZ that passes every check supports
    ``citizenship`` (its nationality as ISO 3166-1 alpha-2) until the earlier of the
    re-verification date and the end of the document's expiry date.
    """
    problems: list[dict[str, str]] = []
    result: MrzResult | None = None
    if not isinstance(mrz, str) or not mrz.strip():
        problems.append({"field": "$.mrz", "message": "required for document_mrz"})
    else:
        result = check_mrz(mrz, now)
        problems.extend(
            {"field": "$.mrz", "message": r.message}
            for r in result.reasons
            if r.code in _SHAPE_CODES
        )
    if attributes:
        problems.append({"field": "$.attributes", "message": "derived from the MRZ; omit"})
    if document_type is not None:
        problems.append({"field": "$.document_type", "message": "derived from the MRZ; omit"})
    if problems or result is None:
        raise UnprocessableInput("The evidence is malformed.", errors=problems)
    reasons = [f"{r.code}: {r.message}" for r in result.reasons]
    codes = [r.code for r in result.reasons]
    if result.valid and result.citizenship is None:
        codes.append("no_citizenship")
        reasons.append(
            f"no_citizenship: The nationality code {result.nationality} names no state; "
            "the document supports no citizenship."
        )
    if reasons:
        return DocumentOutcome(Outcome("rejected", reasons, None, None), {}, None, codes)
    assert result.expiry_date is not None  # noqa: S101 - a valid MRZ has an expiry date
    derived = {"citizenship": [result.citizenship]}
    reverify_at = min(now + validity, _end_of(result.expiry_date))
    digest = document_hash(hash_key, result)
    if needs_second_reviewer(assurance, four_eyes_min):
        # Approval may shorten this, never extend it past the document's expiry.
        return DocumentOutcome(
            Outcome("pending_approval", [], None, reverify_at), derived, digest, []
        )
    return DocumentOutcome(Outcome("verified", [], now, reverify_at), derived, digest, [])
