"""POST /v1/policies/{name}/impact: who a draft would let in and shut out, per governed
audience, in the caller's view, without publishing or recording anything."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from attest_testing.service import assert_problem, submit
from attest_testing.support import US_PASSPORT, Actors

LPR_CARD = {
    "type": "manual_review",
    "document_type": "permanent_resident_card",
    "attributes": {"citizenship": ["MX"], "us_person_status": "lawful_permanent_resident"},
    "assurance": "IAL2",
}


@pytest.fixture
def population(admin: httpx.Client, actors: Actors) -> tuple[httpx.Client, str, dict[str, Any]]:
    """(a tenant analyst, a policy of the test's own bound to two audiences, its document):
    3 citizens, 2 permanent residents, 1 without evidence, 1 revoked citizen."""
    operator = actors.client("subjects:write", "evidence:write", "subjects:revoke", name="operator")
    reviewer = actors.client("evidence:review", name="reviewer")
    for kind, count in (("citizen", 3), ("resident", 2), ("none", 1), ("revoked", 1)):
        for _ in range(count):
            made = operator.post("/v1/subjects", json={"external_ref": f"{kind}-{uuid.uuid4()}"})
            sid = made.json()["id"]
            if kind == "none":
                continue
            evidence = submit(operator, sid, LPR_CARD if kind == "resident" else US_PASSPORT)
            approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
            assert approved.status_code == 200, approved.text
            if kind == "revoked":
                assert operator.post(f"/v1/subjects/{sid}/revocations", json={}).status_code == 201
    name = f"imp-{uuid.uuid4().hex[:8]}"
    base = admin.get("/v1/policies/us-nationals-only").json()["document"]
    document = {k: v for k, v in base.items() if k not in ("name", "version")}
    assert admin.put(f"/v1/policies/{name}", json=document).status_code == 201
    for audience in (f"model:{name}-a", f"model:{name}-b"):
        assert admin.put(f"/v1/audiences/{audience}", json={"policy": name}).status_code == 201
    analyst = actors.client("policies:read", name="analyst")
    return analyst, name, document


def test_a_draft_is_previewed_per_audience_in_the_callers_tenant(
    admin: httpx.Client, population: tuple[httpx.Client, str, dict[str, Any]]
) -> None:
    analyst, name, document = population
    persons = admin.get("/v1/policies/us-persons").json()["document"]
    draft = {**document, "rule": persons["rule"]}
    response = analyst.post(f"/v1/policies/{name}/impact", json=draft)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["policy"] == name
    assert body["current_version"] == 1
    assert [a["audience"] for a in body["audiences"]] == [f"model:{name}-a", f"model:{name}-b"]
    for audience in body["audiences"]:
        assert audience["subjects"] == 7
        assert (audience["eligible_now"], audience["eligible_after"]) == (3, 5)
        assert (audience["gain"], audience["lose"], audience["lose_by_reason"]) == (2, 0, {})

    # The other way round: the residents would lose, for want of a qualifying attribute.
    narrowed = analyst.post(
        f"/v1/policies/{name}/impact",
        json={**document, "rule": {"attribute": "us_person_status", "any_of": ["us_national"]}},
    ).json()["audiences"][0]
    assert (narrowed["eligible_now"], narrowed["eligible_after"]) == (3, 0)
    assert (narrowed["lose"], narrowed["lose_by_reason"]) == (3, {"attribute_missing": 3})

    # Nothing was published.
    assert admin.get(f"/v1/policies/{name}").json()["version"] == 1
    # An admin sees every tenant: at least this tenant's seven subjects.
    everyone = admin.post(f"/v1/policies/{name}/impact", json=draft).json()["audiences"][0]
    assert everyone["subjects"] >= 7


def test_bad_drafts_and_unknown_policies_are_problems(
    population: tuple[httpx.Client, str, dict[str, Any]],
) -> None:
    analyst, name, document = population
    assert_problem(analyst.post("/v1/policies/no-such-policy/impact", json=document), 404)
    bad = {**document, "rule": {"attribute": "citizenship", "none_of": ["US"]}}
    assert_problem(analyst.post(f"/v1/policies/{name}/impact", json=bad), 422)
    other = {**document, "name": "someone-else"}
    assert_problem(analyst.post(f"/v1/policies/{name}/impact", json=other), 422)


def test_attest_policies_impact_prints_a_table(
    live: Any,
    population: tuple[httpx.Client, str, dict[str, Any]],
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    actors: Actors,
) -> None:
    import json

    from attest.cli import main

    _, name, document = population
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps({**document, "rule": {"attribute": "us_person_status",
                                                       "any_of": ["us_national"]}}))  # fmt: skip
    key = tmp_path / "key"
    key.write_text(actors.key("policies:read", name="cli"))
    code = main(["policies", "impact", name, str(draft), "--url", live.base_url,
                 "--api-key-file", str(key)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "AUDIENCE" in out
    assert f"model:{name}-a" in out
    assert "attribute_missing 3" in out
    assert "nothing was published" in out
