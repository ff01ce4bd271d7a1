"""Hypothesis properties of policy evaluation over generated valid documents and facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from attest.evidence import ASSURANCE_LEVELS, US_PERSON_STATUSES
from attest.policy import REASON_CODES, Fact, evaluate, validate_policy_document

# A few codes, so that generated facts and rules often name the same values.
COUNTRIES = ("US", "CA", "FR", "KP", "IR", "MX")
VALUES = {"citizenship": COUNTRIES, "us_person_status": US_PERSON_STATUSES}
ATTRIBUTE = st.sampled_from(sorted(VALUES))

Rule = dict[str, Any]


def _attribute_rule(kind: str) -> st.SearchStrategy[Rule]:
    return ATTRIBUTE.flatmap(
        lambda attribute: st.lists(
            st.sampled_from(VALUES[attribute]), min_size=1, max_size=3, unique=True
        ).map(lambda values: {"attribute": attribute, kind: values})
    )


ANY_OF = _attribute_rule("any_of")
NONE_OF = _attribute_rule("none_of")
CONSTRAINT = st.one_of(
    st.sampled_from(ASSURANCE_LEVELS).map(lambda level: {"min_assurance": level}),
    st.integers(1, 800).map(lambda days: {"max_evidence_age_days": days}),
)


def evidence_rule(depth: int = 1) -> st.SearchStrategy[Rule]:
    """Rules that can only be satisfied through evidence (what validation demands)."""
    if depth >= 4:
        return ANY_OF
    child = evidence_rule(depth + 1)
    extra = st.one_of(NONE_OF, CONSTRAINT, child)
    all_rule = st.tuples(child, st.lists(extra, max_size=2)).flatmap(
        lambda parts: st.permutations([parts[0], *parts[1]]).map(lambda kids: {"all": kids})
    )
    any_rule = st.lists(child, min_size=1, max_size=3).map(lambda kids: {"any": kids})
    return st.one_of(ANY_OF, all_rule, any_rule)


@st.composite
def documents(draw: st.DrawFn, rule: st.SearchStrategy[Rule] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "generated",
        "version": draw(st.integers(1, 5)),
        "rule": draw(rule if rule is not None else evidence_rule()),
    }
    if draw(st.booleans()):
        doc["min_assurance"] = draw(st.sampled_from(ASSURANCE_LEVELS))
    if draw(st.booleans()):
        doc["max_evidence_age_days"] = draw(st.integers(1, 800))
    return doc


NOW = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda moment: moment.replace(tzinfo=UTC)
)


@st.composite
def facts_near(draw: st.DrawFn, now: datetime) -> Fact:
    attribute = draw(ATTRIBUTE)
    verified_at = now - timedelta(days=draw(st.integers(-5, 1000)))
    return Fact(
        attribute=attribute,
        value=draw(st.sampled_from(VALUES[attribute])),
        assurance=draw(st.sampled_from(ASSURANCE_LEVELS)),
        verified_at=verified_at,
        reverify_at=verified_at + timedelta(days=draw(st.integers(-5, 1000))),
        evidence_id=draw(st.text(max_size=8)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], list[Fact], datetime]:
    now = draw(NOW)
    return draw(documents()), draw(st.lists(facts_near(now), max_size=8)), now


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios(), revoked=st.booleans(), data=st.data())
def test_evaluation_is_total_consistent_and_order_independent(
    scenario: tuple[dict[str, Any], list[Fact], datetime], revoked: bool, data: st.DataObject
) -> None:
    doc, facts, now = scenario
    assert validate_policy_document(doc) == doc  # the generator only makes valid documents
    decision = evaluate(doc, facts, now=now, revoked=revoked)
    assert decision.eligible == (not decision.reasons)
    assert (decision.assurance is not None) == decision.eligible
    assert decision.assurance in (None, *ASSURANCE_LEVELS)
    assert {reason.code for reason in decision.reasons} <= set(REASON_CODES)
    assert all(reason.path.startswith("$") for reason in decision.reasons)
    if revoked:
        assert not decision.eligible
        assert decision.reasons[0].code == "subject_revoked"
    shuffled = data.draw(st.permutations(facts))
    assert evaluate(doc, shuffled, now=now, revoked=revoked) == decision


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios())
def test_expired_facts_never_change_eligibility(
    scenario: tuple[dict[str, Any], list[Fact], datetime],
) -> None:
    doc, facts, now = scenario
    current = [fact for fact in facts if fact.reverify_at > now]
    with_expired = evaluate(doc, facts, now=now)
    without = evaluate(doc, current, now=now)
    assert with_expired.eligible == without.eligible
    assert with_expired.assurance == without.assurance


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios(), forbidden=NONE_OF, data=st.data())
def test_adding_a_forbidden_fact_never_makes_a_subject_eligible(
    scenario: tuple[dict[str, Any], list[Fact], datetime],
    forbidden: Rule,
    data: st.DataObject,
) -> None:
    doc, facts, now = scenario
    doc = {**doc, "rule": {"all": [doc["rule"], forbidden]}}
    before = evaluate(doc, facts, now=now)
    value = data.draw(st.sampled_from(forbidden["none_of"]))
    verified_at = now - timedelta(days=data.draw(st.integers(-5, 5000)))
    extra = Fact(
        attribute=forbidden["attribute"],
        value=value,
        assurance=data.draw(st.sampled_from(ASSURANCE_LEVELS)),
        verified_at=verified_at,
        reverify_at=now + timedelta(seconds=data.draw(st.integers(1, 10**8))),
        evidence_id="forbidden",
    )
    position = data.draw(st.integers(0, len(facts)))
    after = evaluate(doc, [*facts[:position], extra, *facts[position:]], now=now)
    assert not after.eligible
    assert ("attribute_forbidden", "$.rule.all[1]") in [(r.code, r.path) for r in after.reasons]
    if not before.eligible:
        assert before.reasons  # a denial always says why
