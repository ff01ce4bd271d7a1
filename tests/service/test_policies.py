"""Policies and audiences: read, publish versions, dry-run evaluation, tokens name the version."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from attest_testing.service import (
    LPR_CARD,
    AuditTrail,
    approved_subject,
    assert_problem,
    events,
    token_for,
    verifier,
)
from attest_testing.support import Actors, LiveServer

from attest.policy.document import policy_digest

CITIZENS = {
    "description": "US citizens only (test)",
    "min_assurance": "IAL2",
    "rule": {"attribute": "us_person_status", "any_of": ["us_citizen"]},
}
PERSONS = {
    "description": "US persons (test)",
    "min_assurance": "IAL2",
    "rule": {
        "attribute": "us_person_status",
        "any_of": ["us_citizen", "us_national", "lawful_permanent_resident"],
    },
}


def _name() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


def test_builtin_policy(operator: httpx.Client) -> None:
    response = operator.get("/v1/policies/us-nationals-only")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "us-nationals-only"
    assert body["version"] == 1
    assert body["digest"] == policy_digest(body["document"])
    assert body["document"]["version"] == 1
    assert body["versions"][0]["version"] == 1
    persons = operator.get("/v1/policies/us-persons").json()
    assert persons["digest"] == policy_digest(persons["document"])
    assert "lawful_permanent_resident" in persons["document"]["rule"]["any_of"]


def test_unknown_policy_is_404(operator: httpx.Client) -> None:
    assert_problem(operator.get(f"/v1/policies/{_name()}"), 404)
    assert_problem(operator.get("/v1/policies/us-nationals-only/versions/99"), 404)
    assert_problem(operator.get("/v1/policies/us-nationals-only/versions/abc"), 404)
    assert_problem(operator.get("/v1/policies/us-nationals-only/versions/0"), 404)
    assert_problem(operator.get("/v1/policies/us-nationals-only/versions/-1"), 404)
    assert_problem(operator.get("/v1/policies/us-nationals-only/versions/3000000000"), 404)
    huge = operator.get("/v1/policies/us-nationals-only/versions/" + "9" * 30)
    assert huge.status_code in (400, 404)
    assert_problem(huge, huge.status_code)


def test_publish_versions(admin: httpx.Client, operator: httpx.Client) -> None:
    name = _name()
    first = admin.put(f"/v1/policies/{name}", json=CITIZENS)
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1
    assert first.json()["digest"] == policy_digest(first.json()["document"])
    second = admin.put(f"/v1/policies/{name}", json={**PERSONS, "name": name, "version": 2})
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2
    assert second.json()["digest"] != first.json()["digest"]

    latest = operator.get(f"/v1/policies/{name}").json()
    assert latest["version"] == 2
    assert [v["version"] for v in latest["versions"]] == [1, 2]
    old = operator.get(f"/v1/policies/{name}/versions/1")
    assert old.status_code == 200
    assert old.json()["document"]["rule"] == CITIZENS["rule"]
    assert old.json()["digest"] == first.json()["digest"]

    published = [
        e["data"] for e in events(admin, type="policy.published") if e["data"].get("policy") == name
    ]
    assert [p["version"] for p in published] == [1, 2]
    # A stale version number is a conflict; a mismatched name is refused.
    assert_problem(admin.put(f"/v1/policies/{name}", json={**CITIZENS, "version": 2}), 409)
    assert_problem(admin.put(f"/v1/policies/{name}", json={**CITIZENS, "name": "other"}), 422)
    assert operator.get(f"/v1/policies/{name}").json()["version"] == 2


def test_publishing_needs_policies_write(operator: httpx.Client) -> None:
    assert_problem(
        operator.put(f"/v1/policies/{_name()}", json=CITIZENS), 403, "insufficient-scope"
    )


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"rule": {"attribute": "citizenship", "any_of": ["ZZ"]}}, "$.rule"),
        ({"min_assurance": "IAL9", "rule": CITIZENS["rule"]}, "$.min_assurance"),
        ({"rule": {"attribute": "shoe_size", "any_of": ["42"]}}, "$.rule"),
        ({"rule": {}}, "$.rule"),
        ({}, "$"),
        ({"rule": CITIZENS["rule"], "surprise": 1}, "$"),
        ({"rule": {"all": [{"min_assurance": "IAL2"}]}}, "$.rule"),
        ({"rule": CITIZENS["rule"], "max_evidence_age_days": 0}, "$.max_evidence_age_days"),
    ],
)
def test_invalid_document_is_422_with_path(
    admin: httpx.Client, document: dict[str, Any], path: str
) -> None:
    name = _name()
    body = assert_problem(admin.put(f"/v1/policies/{name}", json=document), 422)
    assert body["errors"]
    field = body["errors"][0]["field"]
    assert field.startswith(path), body["errors"]
    assert_problem(admin.get(f"/v1/policies/{name}"), 404)


@pytest.mark.parametrize("name", ["Upper", "-lead", "x" * 64, "a b", "a%2Fb"])
def test_invalid_policy_names(admin: httpx.Client, name: str) -> None:
    response = admin.put(f"/v1/policies/{name}", json=CITIZENS)
    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)


def test_evaluate_is_a_dry_run(
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    audit_trail: AuditTrail,
    onboard: Callable[..., dict[str, Any]],
    eligible_subject: dict[str, Any],
) -> None:
    lpr = approved_subject(operator, reviewer, onboard, LPR_CARD)
    mark = audit_trail.mark()

    yes = operator.post(
        "/v1/policies/us-nationals-only/evaluate", json={"subject_id": eligible_subject["id"]}
    )
    assert yes.status_code == 200, yes.text
    assert yes.json()["decision"] == "eligible"
    assert yes.json()["reasons"] == []
    assert yes.json()["policy_version"] == 1

    no = operator.post("/v1/policies/us-nationals-only/evaluate", json={"subject_id": lpr["id"]})
    assert no.status_code == 200
    assert no.json()["decision"] == "not_eligible"
    assert no.json()["reasons"]
    assert "attribute_missing" in [r["code"] for r in no.json()["reason_details"]]

    by_ref = operator.post(
        "/v1/policies/us-persons/evaluate", json={"external_ref": lpr["external_ref"]}
    )
    assert by_ref.json()["decision"] == "eligible"

    # No event at all (so no token.issued) was appended, in any tenant.
    assert audit_trail.since(mark, type="token.issued") == []
    assert audit_trail.since(mark) == []
    assert "token" not in yes.json()


def test_evaluate_errors(operator: httpx.Client, eligible_subject: dict[str, Any]) -> None:
    sid = eligible_subject["id"]
    assert_problem(operator.post(f"/v1/policies/{_name()}/evaluate", json={"subject_id": sid}), 404)
    response = operator.post("/v1/policies/us-persons/evaluate", json={})
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


def test_token_names_the_policy_version_in_force(
    live: LiveServer,
    admin: httpx.Client,
    operator: httpx.Client,
    reviewer: httpx.Client,
    actors: Actors,
    onboard: Callable[..., dict[str, Any]],
    eligible_subject: dict[str, Any],
) -> None:
    name = _name()
    v1 = admin.put(f"/v1/policies/{name}", json=CITIZENS).json()
    audience = f"model:test-{uuid.uuid4()}"
    bound = admin.put(f"/v1/audiences/{audience}", json={"policy": name})
    assert bound.status_code == 201, bound.text
    lpr = approved_subject(operator, reviewer, onboard, LPR_CARD)

    first = token_for(operator, eligible_subject["id"], audience)
    assert first.status_code == 201
    claims = verifier(live, audience).verify(first.json()["token"])
    assert claims["eligibility"]["policy"] == name
    assert claims["eligibility"]["policy_version"] == 1
    assert claims["eligibility"]["policy_digest"] == v1["digest"]
    assert_problem(token_for(operator, lpr["id"], audience), 403, "not-eligible")

    v2 = admin.put(f"/v1/policies/{name}", json=PERSONS).json()
    assert v2["version"] == 2
    second = token_for(operator, lpr["id"], audience)
    assert second.status_code == 201, second.text
    claims = verifier(live, audience).verify(second.json()["token"])
    assert claims["eligibility"]["policy_version"] == 2
    assert claims["eligibility"]["policy_digest"] == v2["digest"]
    record = actors.client("audit:read").get(f"/v1/audit/attestations/{claims['jti']}").json()
    assert record["policy"]["version"] == 2
    assert record["policy"]["document"]["rule"] == PERSONS["rule"]
    # The first token's attestation still names version 1.
    first_jti = first.json()["jti"]
    old = actors.client("audit:read").get(f"/v1/audit/attestations/{first_jti}").json()
    assert old["policy"]["version"] == 1
    assert old["policy"]["document"]["rule"] == CITIZENS["rule"]


def test_audience_change_is_audited_and_rebinding_works(
    admin: httpx.Client, operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    audience = f"model:test-{uuid.uuid4()}"
    created = admin.put(f"/v1/audiences/{audience}", json={"policy": "us-persons"})
    assert created.status_code == 201
    updated = admin.put(
        f"/v1/audiences/{audience}", json={"policy": "us-nationals-only", "token_lifetime": 60}
    )
    assert updated.status_code == 200
    assert updated.json()["policy"] == "us-nationals-only"
    assert updated.json()["token_lifetime"] == 60
    changes = [
        e["data"]
        for e in events(admin, type="audience.updated")
        if e["data"]["audience"] == audience
    ]
    assert [c["created"] for c in changes] == [True, False]
    assert_problem(operator.put(f"/v1/audiences/{audience}", json={"policy": "us-persons"}), 403)
    assert_problem(admin.get(f"/v1/audiences/model:test-{uuid.uuid4()}"), 404)
    assert token_for(operator, eligible_subject["id"], audience).status_code == 201
