"""Settings of issue 5: validated, each error naming its variable."""

from __future__ import annotations

import pytest

from attest.settings import SettingsError, load_settings


def test_defaults_and_overrides() -> None:
    default = load_settings({})
    assert default.four_eyes_min_for("any") == "IAL2"
    assert default.validity_days_for("document_mrz") == 365
    assert (default.batch_max_items, default.batch_max_body_size) == (1000, 4_000_000)
    assert default.idp_providers is None
    tuned = load_settings(
        {
            "ATTEST_FOUR_EYES_BY_TENANT": "acme=IAL1, lab=never",
            "ATTEST_EVIDENCE_VALIDITY_BY_TYPE": "document_mrz=730,idp_assertion=90",
            "ATTEST_BATCH_MAX_ITEMS": "200",
        }
    )
    assert [tuned.four_eyes_min_for(t) for t in ("acme", "lab", "other")] == [
        "IAL1",
        "never",
        "IAL2",
    ]
    assert tuned.validity_days_for("idp_assertion") == 90
    assert tuned.validity_days_for("manual_review") == 365
    assert tuned.batch_max_items == 200


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ATTEST_FOUR_EYES_BY_TENANT", "acme=IAL4"),
        ("ATTEST_FOUR_EYES_BY_TENANT", "acme"),
        ("ATTEST_EVIDENCE_VALIDITY_BY_TYPE", "document_mrz=0"),
        ("ATTEST_EVIDENCE_VALIDITY_BY_TYPE", "document_mrz=soon"),
        ("ATTEST_BATCH_MAX_ITEMS", "0"),
        ("ATTEST_BATCH_MAX_ITEMS", "10001"),
        ("ATTEST_BATCH_MAX_BODY_SIZE", "100"),
    ],
)
def test_invalid_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: value})


def test_the_document_hash_secret_is_never_shown() -> None:
    settings = load_settings({"ATTEST_DOCUMENT_HASH_SECRET": "s3cret-value"})
    assert "s3cret-value" not in repr(settings)
