"""Pure policy evaluation: decisions and reasons for hand-picked cases."""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from attest_testing.policy import (
    NOW,
    citizenship_any,
    citizenship_none,
    fact,
    policy,
    status_any,
)

from attest.policy import (
    Decision,
    Fact,
    PolicyDocumentError,
    builtin_policies,
    evaluate,
    policy_digest,
)

NATIONALS, PERSONS = builtin_policies()


def codes(decision: Decision) -> list[tuple[str, str]]:
    return [(reason.code, reason.path) for reason in decision.reasons]


def test_us_citizen_at_ial2_is_eligible_for_us_nationals_only() -> None:
    decision = evaluate(NATIONALS, [fact("us_person_status", "us_citizen", "IAL2")], now=NOW)
    assert decision == Decision(
        eligible=True,
        reasons=(),
        assurance="IAL2",
        policy="us-nationals-only",
        policy_version=1,
        policy_digest=policy_digest(NATIONALS),
    )


def test_ial1_evidence_is_assurance_too_low() -> None:
    decision = evaluate(NATIONALS, [fact("us_person_status", "us_citizen", "IAL1")], now=NOW)
    assert not decision.eligible
    assert decision.assurance is None
    assert codes(decision) == [("assurance_too_low", "$.rule")]
    assert "IAL2" in decision.reasons[0].message


def test_lpr_is_denied_for_nationals_but_eligible_for_persons() -> None:
    facts = [fact("us_person_status", "lawful_permanent_resident", "IAL3")]
    denied = evaluate(NATIONALS, facts, now=NOW)
    assert codes(denied) == [("attribute_missing", "$.rule")]
    allowed = evaluate(PERSONS, facts, now=NOW)
    assert allowed.eligible
    assert allowed.assurance == "IAL3"
    assert allowed.policy == "us-persons"


def test_no_facts_is_attribute_missing() -> None:
    decision = evaluate(NATIONALS, [], now=NOW)
    assert codes(decision) == [("attribute_missing", "$.rule")]


def test_expiry_boundary_uses_the_injected_now() -> None:
    evidence = fact("us_person_status", "us_citizen", verified_days_ago=100, valid_days=100)
    assert evidence.reverify_at == NOW
    expired = evaluate(NATIONALS, [evidence], now=NOW)
    assert codes(expired) == [("evidence_expired", "$.rule")]
    just_before = evaluate(NATIONALS, [evidence], now=NOW - timedelta(microseconds=1))
    assert just_before.eligible


def test_expired_fact_does_not_hide_a_current_one() -> None:
    facts = [
        fact("us_person_status", "us_citizen", "IAL3", verified_days_ago=400, valid_days=365),
        fact("us_person_status", "us_citizen", "IAL2"),
    ]
    decision = evaluate(NATIONALS, facts, now=NOW)
    assert decision.eligible
    assert decision.assurance == "IAL2"


def test_evidence_too_old_for_the_document_limit() -> None:
    doc = policy(status_any("us_citizen"), max_evidence_age_days=30)
    old = fact("us_person_status", "us_citizen", verified_days_ago=31)
    assert codes(evaluate(doc, [old], now=NOW)) == [("evidence_too_old", "$.rule")]
    recent = fact("us_person_status", "us_citizen", verified_days_ago=30)
    assert evaluate(doc, [recent], now=NOW).eligible


def test_age_and_assurance_limits_inside_an_all_apply_to_its_subtree() -> None:
    doc = policy(
        {
            "all": [
                {"all": [citizenship_any("US"), {"min_assurance": "IAL3"}]},
                {"all": [status_any("us_citizen"), {"max_evidence_age_days": 7}]},
            ]
        }
    )
    facts = [
        fact("citizenship", "US", "IAL2", verified_days_ago=1),
        fact("us_person_status", "us_citizen", "IAL3", verified_days_ago=8),
    ]
    decision = evaluate(doc, facts, now=NOW)
    assert codes(decision) == [
        ("assurance_too_low", "$.rule.all[0].all[0]"),
        ("evidence_too_old", "$.rule.all[1].all[0]"),
    ]
    assert "IAL3" in decision.reasons[0].message
    assert "7 days" in decision.reasons[1].message
    fixed = [
        fact("citizenship", "US", "IAL3", verified_days_ago=1),
        fact("us_person_status", "us_citizen", "IAL1", verified_days_ago=2),
    ]
    eligible = evaluate(doc, fixed, now=NOW)
    assert eligible.eligible
    assert eligible.assurance == "IAL1"


def test_a_nested_limit_cannot_loosen_the_document_limit() -> None:
    doc = policy(
        {"all": [status_any("us_citizen"), {"min_assurance": "IAL1"}]}, min_assurance="IAL3"
    )
    decision = evaluate(doc, [fact("us_person_status", "us_citizen", "IAL2")], now=NOW)
    assert codes(decision) == [("assurance_too_low", "$.rule.all[0]")]


def test_none_of_denies_a_dual_national_even_on_weak_evidence() -> None:
    doc = policy(
        {"all": [status_any("us_citizen"), citizenship_none("KP", "IR")]}, min_assurance="IAL2"
    )
    facts = [
        fact("us_person_status", "us_citizen", "IAL3"),
        fact("citizenship", "US", "IAL3"),
        fact("citizenship", "IR", "IAL1", verified_days_ago=3000, valid_days=4000),
    ]
    decision = evaluate(doc, facts, now=NOW)
    assert codes(decision) == [("attribute_forbidden", "$.rule.all[1]")]
    assert "IR" in decision.reasons[0].message
    assert "US" not in decision.reasons[0].message.replace("us_", "")


def test_expired_forbidden_fact_no_longer_denies() -> None:
    doc = policy({"all": [status_any("us_citizen"), citizenship_none("IR")]})
    facts = [
        fact("us_person_status", "us_citizen"),
        fact("citizenship", "IR", verified_days_ago=20, valid_days=10),
    ]
    assert evaluate(doc, facts, now=NOW).eligible


def test_any_passes_on_one_child_and_reports_all_children_when_none_passes() -> None:
    doc = policy({"any": [status_any("us_citizen"), citizenship_any("US", "CA")]})
    assert evaluate(doc, [fact("citizenship", "CA")], now=NOW).eligible
    denied = evaluate(
        doc,
        [
            fact("us_person_status", "none"),
            fact("citizenship", "FR"),
        ],
        now=NOW,
    )
    assert denied.eligible is False
    assert codes(denied) == [
        ("attribute_missing", "$.rule.any[0]"),
        ("attribute_missing", "$.rule.any[1]"),
    ]
    strict = policy(doc["rule"], min_assurance="IAL2")
    denied = evaluate(strict, [fact("citizenship", "CA", "IAL1")], now=NOW)
    assert codes(denied) == [
        ("attribute_missing", "$.rule.any[0]"),
        ("assurance_too_low", "$.rule.any[1]"),
    ]


def test_all_needs_every_child() -> None:
    doc = policy({"all": [status_any("us_citizen"), citizenship_any("US")]})
    only_status = evaluate(doc, [fact("us_person_status", "us_citizen")], now=NOW)
    assert codes(only_status) == [("attribute_missing", "$.rule.all[1]")]
    both = evaluate(
        doc,
        [fact("us_person_status", "us_citizen", "IAL3"), fact("citizenship", "US", "IAL2")],
        now=NOW,
    )
    assert both.eligible
    assert both.assurance == "IAL2"  # the weakest link of an "all"


def test_any_holds_at_its_strongest_satisfied_branch() -> None:
    doc = policy({"any": [status_any("us_citizen"), citizenship_any("US")]})
    facts = [fact("us_person_status", "us_citizen", "IAL1"), fact("citizenship", "US", "IAL3")]
    assert evaluate(doc, facts, now=NOW).assurance == "IAL3"


def test_every_reason_is_reported() -> None:
    doc = policy(
        {
            "all": [
                status_any("us_citizen"),
                citizenship_any("US"),
                citizenship_none("KP"),
                {"any": [citizenship_any("CA"), citizenship_any("MX")]},
            ]
        },
        min_assurance="IAL2",
        max_evidence_age_days=100,
    )
    facts = [
        fact("us_person_status", "us_citizen", verified_days_ago=50, valid_days=40),
        fact("citizenship", "US", "IAL1", verified_days_ago=200, valid_days=900),
        fact("citizenship", "KP", "IAL1"),
    ]
    decision = evaluate(doc, facts, now=NOW, revoked=True)
    assert codes(decision) == [
        ("subject_revoked", "$"),
        ("evidence_expired", "$.rule.all[0]"),
        ("evidence_too_old", "$.rule.all[1]"),
        ("assurance_too_low", "$.rule.all[1]"),
        ("attribute_forbidden", "$.rule.all[2]"),
        ("attribute_missing", "$.rule.all[3].any[0]"),
        ("attribute_missing", "$.rule.all[3].any[1]"),
    ]
    for reason in decision.reasons:
        assert reason.message.endswith(".")


def test_revoked_subject_is_never_eligible() -> None:
    decision = evaluate(
        NATIONALS, [fact("us_person_status", "us_citizen", "IAL3")], now=NOW, revoked=True
    )
    assert decision.eligible is False
    assert decision.assurance is None
    assert codes(decision) == [("subject_revoked", "$")]


def test_reasons_do_not_depend_on_fact_order() -> None:
    doc = policy({"all": [status_any("us_citizen"), citizenship_none("KP", "IR", "SY")]})
    facts = [
        fact("citizenship", "SY", evidence_id="a"),
        fact("us_person_status", "us_citizen", evidence_id="b"),
        fact("citizenship", "IR", evidence_id="c"),
    ]
    forward = evaluate(doc, facts, now=NOW)
    backward = evaluate(doc, list(reversed(facts)), now=NOW)
    assert forward == backward
    assert "IR, SY" in forward.reasons[0].message


def test_decision_names_the_policy_version_and_digest() -> None:
    doc = policy(status_any("us_citizen"))
    decision = evaluate(doc, [], now=NOW)
    assert (decision.policy, decision.policy_version) == ("test-policy", 3)
    assert decision.policy_digest == policy_digest(doc)


def test_invalid_policy_is_refused_not_evaluated() -> None:
    with pytest.raises(PolicyDocumentError):
        evaluate(policy(citizenship_none("KP")), [], now=NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(NATIONALS, [], now=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "change",
    [
        {"attribute": "age"},
        {"assurance": "IAL4"},
        {"verified_at": datetime(2026, 1, 1)},
        {"reverify_at": datetime(2026, 1, 1)},
    ],
)
def test_malformed_facts_are_refused(change: dict[str, Any]) -> None:
    good = fact("citizenship", "US")
    with pytest.raises(ValueError, match=r"unknown|timezone-aware"):
        Fact(**{**dataclasses.asdict(good), **change})


def test_evaluation_near_the_minimum_datetime_does_not_overflow() -> None:
    doc = policy(status_any("us_citizen"), max_evidence_age_days=36500)
    early = datetime(2, 1, 1, tzinfo=NOW.tzinfo)
    evidence = Fact("us_person_status", "us_citizen", "IAL2", early, early + timedelta(days=1), "e")
    assert evaluate(doc, [evidence], now=early).eligible


def test_a_validated_document_is_recognised_only_by_its_exact_content() -> None:
    """evaluate() remembers validated documents by canonical form: a changed document,
    even one changed in place after an evaluation, is validated again."""
    facts = [fact("us_person_status", "us_citizen", "IAL2")]
    document = copy.deepcopy(NATIONALS)
    assert evaluate(document, facts, now=NOW).eligible
    document["rule"] = {"attribute": "us_person_status", "any_of": []}  # invalid: empty any_of
    with pytest.raises(PolicyDocumentError):
        evaluate(document, facts, now=NOW)
    document["rule"] = status_any("us_national")
    document["version"] = 2
    decision = evaluate(document, facts, now=NOW)
    assert not decision.eligible
    assert (decision.policy_version, decision.policy_digest) == (2, policy_digest(document))
    # the same content again, as a fresh object with another key order: same decision
    shuffled = dict(reversed(list(document.items())))
    assert evaluate(shuffled, facts, now=NOW) == decision
    # a document that has no canonical JSON form at all is refused, not evaluated
    with pytest.raises(PolicyDocumentError):
        evaluate({**document, "version": float("nan")}, facts, now=NOW)
