"""Attribute vocabulary and validation of claimed attributes (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from attest.evidence import (
    ASSURANCE_LEVELS,
    DOCUMENT_TYPES,
    ISO_3166_ALPHA2,
    US_PERSON_STATUSES,
    assurance_rank,
    consistency_reasons,
    validate_claimed_attributes,
)


def test_assurance_ranks_are_ordered() -> None:
    assert [assurance_rank(level) for level in ASSURANCE_LEVELS] == [1, 2, 3]
    for bad in ("ial2", "IAL0", "IAL4", ""):
        with pytest.raises(ValueError, match="unknown assurance level"):
            assurance_rank(bad)


def test_iso_codes_are_the_assigned_set() -> None:
    assert len(ISO_3166_ALPHA2) == 249
    assert {"US", "AS", "GU", "PR", "KP", "IR", "SS", "BQ", "CW", "SX", "AX"} <= ISO_3166_ALPHA2
    # Not assigned: user-assigned, exceptionally or transitionally reserved, or withdrawn.
    assert not {"XK", "UK", "EU", "AN", "YU", "CS", "ZZ", "XX"} & ISO_3166_ALPHA2
    assert all(len(code) == 2 and code.isupper() for code in ISO_3166_ALPHA2)


def test_vocabularies() -> None:
    assert US_PERSON_STATUSES[:4] == (
        "us_citizen",
        "us_national",
        "lawful_permanent_resident",
        "protected_individual",
    )
    assert "none" in US_PERSON_STATUSES
    assert {"us_passport", "foreign_passport", "permanent_resident_card", "other"} <= set(
        DOCUMENT_TYPES
    )


@pytest.mark.parametrize(
    "attributes",
    [
        {"citizenship": ["US"]},
        {"citizenship": ["US", "FR"], "us_person_status": "us_citizen"},
        {"us_person_status": "none"},
    ],
)
def test_valid_claims(attributes: dict[str, Any]) -> None:
    assert validate_claimed_attributes(attributes) == []


@pytest.mark.parametrize(
    ("attributes", "problems"),
    [
        ({}, ["$"]),
        ({"age": 40}, ["$.age"]),
        ({"citizenship": "US"}, ["$.citizenship"]),
        ({"citizenship": []}, ["$.citizenship"]),
        ({"citizenship": ["us"]}, ["$.citizenship[0]"]),
        ({"citizenship": ["USA"]}, ["$.citizenship[0]"]),
        ({"citizenship": ["US", "XK"]}, ["$.citizenship[1]"]),
        ({"citizenship": ["US", "FR", "US"]}, ["$.citizenship[2]"]),
        ({"citizenship": [1]}, ["$.citizenship[0]"]),
        ({"us_person_status": "citizen"}, ["$.us_person_status"]),
        ({"us_person_status": ["us_citizen"]}, ["$.us_person_status"]),
        (
            {"name": "x", "citizenship": ["xx"], "us_person_status": None},
            ["$.name", "$.citizenship[0]", "$.us_person_status"],
        ),
    ],
)
def test_structural_problems_have_paths(attributes: dict[str, Any], problems: list[str]) -> None:
    found = validate_claimed_attributes(attributes)
    assert [path for path, _ in found] == problems
    assert all(message for _, message in found)


def test_a_non_object_is_a_problem() -> None:
    assert validate_claimed_attributes(["US"]) == [("$", "must be an object")]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attributes", "document_type"),
    [
        ({"citizenship": ["US"], "us_person_status": "us_citizen"}, "us_passport"),
        ({"citizenship": ["US", "FR"], "us_person_status": "us_citizen"}, "us_passport_card"),
        ({"citizenship": ["US"], "us_person_status": "us_national"}, "us_passport"),
        ({"us_person_status": "us_citizen"}, "naturalization_certificate"),
        (
            {"citizenship": ["MX"], "us_person_status": "lawful_permanent_resident"},
            "permanent_resident_card",
        ),
        ({"citizenship": ["FR"], "us_person_status": "none"}, "foreign_passport"),
        ({"citizenship": ["FR", "US"], "us_person_status": "us_citizen"}, "national_id_card"),
        ({"citizenship": ["SY"], "us_person_status": "protected_individual"}, "other"),
    ],
)
def test_consistent_claims(attributes: dict[str, Any], document_type: str) -> None:
    assert consistency_reasons(attributes, document_type) == []


@pytest.mark.parametrize(
    ("attributes", "document_type", "count"),
    [
        ({"citizenship": ["FR"], "us_person_status": "us_citizen"}, "other", 1),
        ({"citizenship": ["US"], "us_person_status": "lawful_permanent_resident"}, "other", 1),
        ({"citizenship": ["US"], "us_person_status": "none"}, "birth_certificate", 1),
        ({"citizenship": ["FR"]}, "us_passport", 1),
        ({"us_person_status": "lawful_permanent_resident"}, "us_passport", 1),
        ({"us_person_status": "none"}, "consular_report_of_birth_abroad", 1),
        ({"us_person_status": "us_citizen"}, "permanent_resident_card", 1),
        ({"citizenship": ["US"]}, "permanent_resident_card", 1),
        ({"us_person_status": "us_citizen"}, "foreign_passport", 1),
        ({"citizenship": ["US"]}, "foreign_passport", 1),
        # Rules 1 and 3 together: a US passport claimed for a French citizen.
        ({"citizenship": ["FR"], "us_person_status": "us_citizen"}, "us_passport", 2),
    ],
)
def test_inconsistent_claims_are_explained(
    attributes: dict[str, Any], document_type: str, count: int
) -> None:
    reasons = consistency_reasons(attributes, document_type)
    assert len(reasons) == count
    assert all(reason.endswith(".") for reason in reasons)


def test_consistency_requires_well_formed_input() -> None:
    with pytest.raises(ValueError, match="malformed"):
        consistency_reasons({"citizenship": ["usa"]}, "us_passport")
    with pytest.raises(ValueError, match="unknown document type"):
        consistency_reasons({"citizenship": ["US"]}, "library_card")
