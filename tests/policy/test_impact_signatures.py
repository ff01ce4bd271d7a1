"""The impact preview's reduction is exact: a policy judges the representative facts of a
signature exactly as it judges the real facts behind it (Hypothesis, on the pure engine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from attest.policy import Fact, evaluate
from attest.policy.impact import Group, age_limits, representative_facts, tally

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def signature(facts: list[Fact], limits: list[int]) -> str:
    """What FACT_SIGNATURES computes in SQL, written again in Python."""
    parts = []
    for f in facts:
        current = int(f.reverify_at > NOW)
        satisfied = sum(f.verified_at >= NOW - timedelta(days=t) for t in limits)
        parts.append(f"{f.attribute}={f.value}|{f.assurance}|{current}|{satisfied}")
    return ";".join(sorted(parts))


facts_strategy = st.lists(
    st.builds(
        lambda attribute_value, assurance, age, ahead: Fact(
            attribute=attribute_value[0],
            value=attribute_value[1],
            assurance=assurance,
            verified_at=NOW - timedelta(hours=age),
            reverify_at=NOW + timedelta(hours=ahead),
            evidence_id="e",
        ),
        st.sampled_from(
            [
                ("citizenship", "US"),
                ("citizenship", "MX"),
                ("citizenship", "IR"),
                ("us_person_status", "us_citizen"),
                ("us_person_status", "us_national"),
                ("us_person_status", "lawful_permanent_resident"),
                ("us_person_status", "none"),
            ]
        ),
        st.sampled_from(["IAL1", "IAL2", "IAL3"]),
        st.integers(min_value=0, max_value=24 * 800),
        st.integers(min_value=-48, max_value=24 * 400),
    ),
    max_size=4,
)


def document(max_age: int | None, inner_age: int | None, min_assurance: str) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "any": [
            {"attribute": "us_person_status", "any_of": ["us_citizen", "us_national"]},
            {"attribute": "us_person_status", "any_of": ["lawful_permanent_resident"]},
        ]
    }
    if inner_age is not None:
        rule = {"all": [{"max_evidence_age_days": inner_age}, rule]}
    rule = {"all": [rule, {"attribute": "citizenship", "none_of": ["IR"]}]}
    doc: dict[str, Any] = {"name": "p", "version": 1, "min_assurance": min_assurance, "rule": rule}
    if max_age is not None:
        doc["max_evidence_age_days"] = max_age
    return doc


@settings(max_examples=300, deadline=None)
@given(
    facts=facts_strategy,
    revoked=st.booleans(),
    max_age=st.one_of(st.none(), st.integers(min_value=1, max_value=700)),
    inner_age=st.one_of(st.none(), st.integers(min_value=1, max_value=700)),
    min_assurance=st.sampled_from(["IAL1", "IAL2"]),
)
def test_representative_facts_decide_as_the_real_ones(
    facts: list[Fact], revoked: bool, max_age: int | None, inner_age: int | None, min_assurance: str
) -> None:
    doc = document(max_age, inner_age, min_assurance)
    limits = age_limits(doc)
    stand_ins = representative_facts(signature(facts, limits), NOW, limits)
    real = evaluate(doc, facts, now=NOW, revoked=revoked)
    reduced = evaluate(doc, stand_ins, now=NOW, revoked=revoked)
    assert real.eligible == reduced.eligible
    assert sorted({r.code for r in real.reasons}) == sorted({r.code for r in reduced.reasons})


def test_tally_counts_gains_losses_and_reasons() -> None:
    citizen = "us_person_status=us_citizen|IAL2|1|0"
    resident = "us_person_status=lawful_permanent_resident|IAL2|1|0"
    groups = [
        Group(False, citizen, 3),
        Group(False, resident, 2),
        Group(False, "", 4),
        Group(True, citizen, 1),
    ]
    nationals = {
        "name": "p",
        "version": 1,
        "rule": {"attribute": "us_person_status", "any_of": ["us_citizen", "us_national"]},
    }
    persons = {
        **nationals,
        "rule": {
            "attribute": "us_person_status",
            "any_of": ["us_citizen", "us_national", "lawful_permanent_resident"],
        },
    }
    result = tally(groups, nationals, persons, now=NOW, limits=[])
    assert (result.subjects, result.eligible_now, result.eligible_after) == (10, 3, 5)
    assert (result.gain, result.lose) == (2, 0)
    back = tally(groups, persons, nationals, now=NOW, limits=[])
    assert (back.gain, back.lose, back.lose_by_reason) == (0, 2, {"attribute_missing": 2})
    nobody = tally(groups, None, nationals, now=NOW, limits=[])
    assert (nobody.eligible_now, nobody.gain) == (0, 3)
