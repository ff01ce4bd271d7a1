"""document_mrz outcomes and the keyed document hash, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from attest.errors import UnprocessableInput
from attest.evidence.documents import (
    DocumentOutcome,
    assess_document_mrz,
    document_hash,
    document_hash_key,
)
from attest.evidence.mrz import check_mrz

TD3 = "P<D<<ERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36D<<7408122F1204159ZE184226B<<<<<10"
NOW = datetime(2010, 1, 1, tzinfo=UTC)
KEY = b"k" * 32


def assess(**changes: object) -> DocumentOutcome:
    values: dict[str, Any] = {
        "mrz": TD3,
        "attributes": {},
        "document_type": None,
        "assurance": "IAL1",
        "now": NOW,
        "validity": timedelta(days=365),
        "four_eyes_min": "IAL2",
        "hash_key": KEY,
    }
    values.update(changes)
    return assess_document_mrz(**values)


def test_a_valid_mrz_is_verified_until_the_earlier_of_validity_and_expiry() -> None:
    result = assess()
    assert result.outcome.status == "verified"
    assert result.attributes == {"citizenship": ["DE"]}
    assert result.outcome.reverify_at == NOW + timedelta(days=365)
    late = assess(now=datetime(2012, 1, 1, tzinfo=UTC))
    # Expiry 2012-04-15: valid through that day.
    assert late.outcome.reverify_at == datetime(2012, 4, 16, tzinfo=UTC)


def test_four_eyes_applies_from_the_threshold() -> None:
    pending = assess(assurance="IAL2")
    assert pending.outcome.status == "pending_approval"
    assert pending.outcome.verified_at is None
    assert pending.document_hash is not None
    assert assess(assurance="IAL3", four_eyes_min="never").outcome.status == "verified"


def test_failed_rules_reject_without_a_hash() -> None:
    result = assess(mrz=TD3.replace("ZE184226B<<<<<10", "ZE184226B<<<<<11"))
    assert result.outcome.status == "rejected"
    assert result.reason_codes == ["composite_check_digit"]
    assert result.document_hash is None
    assert result.attributes == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"mrz": None}, "$.mrz"),
        ({"mrz": "  "}, "$.mrz"),
        ({"mrz": "P<D<<"}, "$.mrz"),
        ({"attributes": {"citizenship": ["DE"]}}, "$.attributes"),
        ({"document_type": "foreign_passport"}, "$.document_type"),
    ],
)
def test_malformed_input_raises(changes: dict[str, object], field: str) -> None:
    with pytest.raises(UnprocessableInput) as caught:
        assess(**changes)
    assert field in [e["field"] for e in caught.value.extensions["errors"]]


def test_the_document_hash_is_keyed_and_stable() -> None:
    result = check_mrz(TD3, NOW)
    same = document_hash(KEY, result)
    assert same == document_hash(KEY, check_mrz(TD3, NOW))
    assert same != document_hash(b"other key" * 4, result)
    assert "L898902C3" not in same
    other_state = check_mrz(TD3.replace("P<D<<", "P<FRA"), NOW)
    assert document_hash(KEY, other_state) != same


def test_the_hash_key_is_the_setting_or_derived_apart_from_the_pairwise_key() -> None:
    assert document_hash_key("configured", b"pairwise") == b"configured"
    derived = document_hash_key(None, b"pairwise")
    assert derived not in (b"pairwise", b"")
    assert derived == document_hash_key(None, b"pairwise")
    assert derived != document_hash_key(None, b"another pairwise secret")
