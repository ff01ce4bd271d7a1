"""Policy documents: schema and semantic validation, digests, built-ins."""

from __future__ import annotations

import copy
import hashlib
import json
import types
from typing import Any

import jsonschema
import pytest
import rfc8785
from attest_testing.policy import citizenship_any, citizenship_none, policy, status_any

from attest.policy import (
    MAX_RULES,
    PolicyDocumentError,
    builtin_policies,
    load_schema,
    policy_digest,
    validate_policy_document,
)

# Digests of version 1 of the built-in policies. Tokens name these digests, so a change
# here is a new policy version, never an edit in place.
BUILTIN_DIGESTS = {
    "us-nationals-only": "09489a5c0f4e6bfa519e22a177fc91a8311a373d4dc03f23fae83d5cfe04b9f5",
    "us-persons": "ca41b49badfeed9d84d58104908e896135fab0517cdb2c7da624e83fe822d578",
}


def _nested(depth: int) -> dict[str, Any]:
    rule: dict[str, Any] = status_any("us_citizen")
    for _ in range(depth - 1):
        rule = {"all": [rule]}
    return rule


def test_builtins_are_valid_and_named() -> None:
    docs = builtin_policies()
    assert [doc["name"] for doc in docs] == ["us-nationals-only", "us-persons"]
    for doc in docs:
        assert doc["version"] == 1
        assert doc["min_assurance"] == "IAL2"
        assert validate_policy_document(doc) == doc


def test_builtin_rules_match_the_design() -> None:
    nationals, persons = builtin_policies()
    assert nationals["rule"] == status_any("us_citizen", "us_national")
    assert persons["rule"] == status_any(
        "us_citizen", "us_national", "lawful_permanent_resident", "protected_individual"
    )
    assert "15 CFR 772.1" in persons["description"]


def test_builtin_digests_are_stable() -> None:
    assert {doc["name"]: policy_digest(doc) for doc in builtin_policies()} == BUILTIN_DIGESTS


def test_digest_is_sha256_of_rfc8785() -> None:
    doc = builtin_policies()[0]
    expected = hashlib.sha256(rfc8785.dumps(doc)).hexdigest()
    assert policy_digest(doc) == expected
    assert len(expected) == 64
    assert expected == expected.lower()


def test_digest_ignores_key_order_and_whitespace() -> None:
    doc = builtin_policies()[1]
    reordered = json.loads(json.dumps(doc, sort_keys=True, indent=7))
    reordered = dict(reversed(list(reordered.items())))
    reordered["rule"] = dict(reversed(list(reordered["rule"].items())))
    assert list(reordered) != list(doc)
    assert policy_digest(reordered) == policy_digest(doc)


def test_digest_refuses_what_has_no_canonical_form() -> None:
    with pytest.raises(PolicyDocumentError) as info:
        policy_digest({"name": "x", "version": 2**60})
    assert info.value.path == "$"
    with pytest.raises(PolicyDocumentError):
        policy_digest({"name": "x", "weight": float("nan")})


def test_digest_accepts_any_mapping() -> None:
    doc = builtin_policies()[0]
    assert policy_digest(types.MappingProxyType(doc)) == policy_digest(doc)


def test_digest_changes_with_content() -> None:
    doc = builtin_policies()[0]
    bumped = {**doc, "version": 2}
    assert policy_digest(bumped) != policy_digest(doc)


def test_validate_returns_an_independent_copy() -> None:
    doc = policy(status_any("us_citizen"))
    validated = validate_policy_document(doc)
    validated["rule"]["any_of"].append("none")
    assert doc["rule"]["any_of"] == ["us_citizen"]


def test_schemas_are_valid_draft_2020_12() -> None:
    for name in ("policy.schema.json", "eligibility-token.schema.json"):
        jsonschema.Draft202012Validator.check_schema(load_schema(name))


@pytest.mark.parametrize("name", ["../pyproject.toml", "policy.schema", "a/b.json"])
def test_load_schema_refuses_paths(name: str) -> None:
    with pytest.raises(ValueError, match="not a schema file name"):
        load_schema(name)


GOOD = policy(status_any("us_citizen"))


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    target: Any = doc
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return doc


INVALID = [
    pytest.param(_with("surprise", 1), "$.surprise", id="unknown-field"),
    pytest.param(_with("rule.surprise", 1), "$.rule.surprise", id="unknown-rule-field"),
    pytest.param(_with("name", "US-Only"), "$.name", id="upper-case-name"),
    pytest.param(_with("name", "-x"), "$.name", id="name-leading-dash"),
    pytest.param(_with("name", "a" * 64), "$.name", id="name-too-long"),
    pytest.param(_with("version", 0), "$.version", id="version-0"),
    pytest.param(_with("version", 1.0), "$.version", id="version-float"),
    pytest.param(_with("version", True), "$.version", id="version-bool"),
    pytest.param(_with("version", "1"), "$.version", id="version-string"),
    pytest.param(_with("min_assurance", "IAL4"), "$.min_assurance", id="bad-assurance"),
    pytest.param(_with("max_evidence_age_days", 0), "$.max_evidence_age_days", id="age-0"),
    pytest.param(_with("rule.attribute", "age"), "$.rule.attribute", id="unknown-attribute"),
    pytest.param(_with("rule.any_of", []), "$.rule.any_of", id="empty-any-of"),
    pytest.param(_with("rule.any_of", ["us_citizen"] * 2), "$.rule.any_of", id="duplicate"),
    pytest.param(_with("rule.any_of", ["citizen"]), "$.rule.any_of[0]", id="bad-status"),
    pytest.param(
        policy({"all": [citizenship_any("US"), citizenship_any("US", "XX")]}),
        "$.rule.all[1].any_of[1]",
        id="unassigned-country-code",
    ),
    pytest.param(
        policy({"all": [status_any("us_citizen"), citizenship_none("kp")]}),
        "$.rule.all[1].none_of[0]",
        id="lower-case-country-code",
    ),
    pytest.param(
        policy({"all": [status_any("us_citizen"), citizenship_none("XK")]}),
        "$.rule.all[1].none_of[0]",
        id="user-assigned-code",
    ),
    pytest.param(
        policy({"all": [status_any("us_citizen"), {**citizenship_none("KP"), "any_of": ["US"]}]}),
        "$.rule.all[1]",
        id="any-of-and-none-of",
    ),
    pytest.param(policy({"any_of": ["US"]}), "$.rule", id="any-of-without-attribute"),
    pytest.param(policy({}), "$.rule", id="empty-rule"),
    pytest.param(policy({"all": []}), "$.rule.all", id="empty-all"),
    pytest.param(policy(_nested(9)), "$.rule" + ".all[0]" * 8, id="depth-9"),
    pytest.param(policy(_nested(5000)), "$", id="hostile-depth"),
    pytest.param(
        policy({"all": [status_any("us_citizen")] * MAX_RULES}),
        f"$.rule.all[{MAX_RULES - 1}]",
        id="too-many-rules",
    ),
    pytest.param(policy(citizenship_none("KP")), "$.rule", id="no-evidence-required"),
    pytest.param(
        policy({"any": [status_any("us_citizen"), citizenship_none("KP")]}),
        "$.rule",
        id="any-branch-without-evidence",
    ),
    pytest.param(
        policy({"any": [status_any("us_citizen"), {"min_assurance": "IAL3"}]}),
        "$.rule.any[1]",
        id="constraint-in-any",
    ),
    pytest.param(
        policy(
            {
                "all": [
                    status_any("us_citizen"),
                    {"all": [citizenship_none("KP"), {"min_assurance": "IAL3"}]},
                ]
            }
        ),
        "$.rule.all[1].all[1]",
        id="constraint-without-effect",
    ),
    pytest.param([GOOD], "$", id="not-an-object"),
]


@pytest.mark.parametrize(("doc", "path"), INVALID)
def test_invalid_documents_are_rejected_with_their_path(doc: object, path: str) -> None:
    with pytest.raises(PolicyDocumentError) as info:
        validate_policy_document(doc)
    assert info.value.path == path
    assert info.value.message
    assert str(info.value).startswith(path)


def test_depth_8_and_256_rules_are_allowed() -> None:
    validate_policy_document(policy(_nested(8)))
    validate_policy_document(policy({"all": [status_any("us_citizen")] * (MAX_RULES - 1)}))


def test_constraints_and_none_of_inside_an_all_are_valid() -> None:
    doc = policy(
        {
            "all": [
                {
                    "any": [
                        status_any("us_citizen"),
                        {"all": [citizenship_any("US"), {"min_assurance": "IAL3"}]},
                    ]
                },
                citizenship_none("KP", "IR"),
                {"max_evidence_age_days": 30},
            ]
        },
        description="test",
        min_assurance="IAL1",
        max_evidence_age_days=365,
    )
    assert validate_policy_document(doc) == doc


def test_token_schema_accepts_v1_claims_and_rejects_bad_ones() -> None:
    validator = jsonschema.Draft202012Validator(load_schema("eligibility-token.schema.json"))
    claims: dict[str, Any] = {
        "iss": "https://attest.example",
        "sub": "pairwise-abc",
        "aud": "model:fable-5",
        "iat": 1_700_000_000,
        "nbf": 1_700_000_000,
        "exp": 1_700_000_600,
        "jti": "tok-1",
        "eligibility": {
            "policy": "us-nationals-only",
            "policy_version": 1,
            "policy_digest": "a" * 64,
            "assurance": "IAL2",
        },
        "cnf": {"jkt": "A" * 43},
        "status": {"status_list": {"idx": 7, "uri": "https://attest.example/v1/status-lists/1"}},
        "future_optional_claim": True,
    }
    assert list(validator.iter_errors(claims)) == []
    bad = [
        {**claims, "aud": ["model:fable-5"]},
        {**claims, "exp": 1_700_000_600.5},
        {k: v for k, v in claims.items() if k != "jti"},
        {**claims, "eligibility": {**claims["eligibility"], "citizenship": ["US"]}},
        {**claims, "eligibility": {**claims["eligibility"], "policy_digest": "A" * 64}},
        {**claims, "cnf": {}},
    ]
    for claim_set in bad:
        assert not validator.is_valid(claim_set), claim_set
