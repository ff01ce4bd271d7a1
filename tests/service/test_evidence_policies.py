"""Policies as data over evidence: a new version flips a decision for the same subject, and
tokens before and after name their version; a dual national is denied under none-of."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from attest_testing.mrz import mrz_evidence, td3, unique_number
from attest_testing.service import assert_problem, events, submit, token_for, verifier
from attest_testing.support import LiveServer

CITIZENS = {
    "description": "US citizens (test)",
    "min_assurance": "IAL2",
    "rule": {"attribute": "us_person_status", "any_of": ["us_citizen"]},
}
# Embargoed nationalities deny even a dual national, whatever the assurance of that evidence.
CITIZENS_NOT_EMBARGOED = {
    "description": "US citizens without an embargoed nationality (test)",
    "min_assurance": "IAL2",
    "rule": {
        "all": [
            {"attribute": "us_person_status", "any_of": ["us_citizen"]},
            {"attribute": "citizenship", "none_of": ["IR", "KP"]},
        ]
    },
}


def _dual_national(operator: httpx.Client, eligible_subject: dict[str, Any]) -> dict[str, Any]:
    """The eligible US citizen also presents an Iranian passport (IAL1, verified at once)."""
    iranian = mrz_evidence(td3(number=unique_number(), nationality="IRN", state="IRN"))
    evidence = submit(operator, eligible_subject["id"], iranian)
    assert evidence["status"] == "verified", evidence
    assert evidence["attributes"] == {"citizenship": ["IR"]}
    return eligible_subject


def test_a_new_policy_version_flips_the_decision_and_tokens_name_their_version(
    live: LiveServer,
    admin: httpx.Client,
    operator: httpx.Client,
    eligible_subject: dict[str, Any],
) -> None:
    subject = _dual_national(operator, eligible_subject)
    name = f"p-{uuid.uuid4().hex[:12]}"
    audience = f"model:test-{uuid.uuid4()}"
    v1 = admin.put(f"/v1/policies/{name}", json=CITIZENS).json()
    assert admin.put(f"/v1/audiences/{audience}", json={"policy": name}).status_code == 201

    before = token_for(operator, subject["id"], audience)
    assert before.status_code == 201, before.text
    claims = verifier(live, audience).verify(before.json()["token"])
    assert (claims["eligibility"]["policy_version"], claims["eligibility"]["policy_digest"]) == (
        1,
        v1["digest"],
    )

    v2 = admin.put(f"/v1/policies/{name}", json=CITIZENS_NOT_EMBARGOED).json()
    assert v2["version"] == 2
    denied = assert_problem(token_for(operator, subject["id"], audience), 403, "not-eligible")
    assert [(r["code"], r["rule"]) for r in denied["reason_details"]] == [
        ("attribute_forbidden", "$.rule.all[1]")
    ]
    recorded = events(admin, subject_id=subject["id"], type="token.denied")[-1]
    assert recorded["data"]["policy_version"] == 2

    # Publishing the old rules again is a third version, and the next token names it.
    v3 = admin.put(f"/v1/policies/{name}", json=CITIZENS).json()
    assert v3["version"] == 3
    after = token_for(operator, subject["id"], audience)
    assert after.status_code == 201, after.text
    claims = verifier(live, audience).verify(after.json()["token"])
    assert claims["eligibility"]["policy_version"] == 3
    assert before.json()["jti"] != after.json()["jti"]
    published = [
        e["data"]["version"]
        for e in events(admin, type="policy.published")
        if e["data"]["policy"] == name
    ]
    assert published == [1, 2, 3]


def test_a_dual_national_is_denied_under_none_of(
    admin: httpx.Client, operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    name = f"p-{uuid.uuid4().hex[:12]}"
    assert admin.put(f"/v1/policies/{name}", json=CITIZENS_NOT_EMBARGOED).status_code == 201
    evaluate = f"/v1/policies/{name}/evaluate"
    body = {"subject_id": eligible_subject["id"]}
    assert operator.post(evaluate, json=body).json()["decision"] == "eligible"

    _dual_national(operator, eligible_subject)
    dry = operator.post(evaluate, json=body).json()
    assert dry["decision"] == "not_eligible"
    assert [r["code"] for r in dry["reason_details"]] == ["attribute_forbidden"]
    assert any("IR" in reason for reason in dry["reasons"])
