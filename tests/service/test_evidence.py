"""Evidence: manual review, four-eyes approval, rejection of inconsistent claims, bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from attest_testing.service import assert_problem, event_types, submit, token_for
from attest_testing.support import US_PASSPORT, Actors


def test_ial2_review_needs_a_second_different_reviewer(
    operator: httpx.Client,
    reviewer: httpx.Client,
    actors: Actors,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    subject = onboard()
    evidence = submit(operator, subject["id"], US_PASSPORT)
    assert evidence["status"] == "pending_approval"
    assert evidence["verified_at"] is None
    url = f"/v1/evidence/{evidence['id']}/approvals"

    # The submitting client, even holding the review scope, cannot approve its own evidence.
    key = actors.key("evidence:write", "evidence:review", "subjects:write")
    with actors.live.client(key) as self_reviewer:
        own = submit(self_reviewer, subject["id"], US_PASSPORT)
        assert_problem(
            self_reviewer.post(f"/v1/evidence/{own['id']}/approvals", json={}), 403, "four-eyes"
        )
    # An operator without the review scope is refused by scope.
    assert_problem(operator.post(url, json={}), 403, "insufficient-scope")

    approved = reviewer.post(url, json={"comment": "checked"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["id"] == evidence["id"]
    assert body["status"] == "verified"
    assert body["approved_by"] is not None
    assert body["verified_at"] is not None

    assert_problem(reviewer.post(url, json={}), 409, "conflict")
    types = event_types(admin, subject["id"])
    assert types.count("evidence.pending_approval") == 2
    assert types.count("evidence.approved") == 1


def test_approval_body_may_be_empty(
    operator: httpx.Client, reviewer: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    evidence = submit(operator, onboard()["id"], US_PASSPORT)
    response = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals")
    assert response.status_code == 200, response.text


def test_approving_unknown_or_rejected_evidence(
    operator: httpx.Client, reviewer: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    assert_problem(
        reviewer.post("/v1/evidence/00000000-0000-4000-8000-000000000000/approvals", json={}), 404
    )
    assert_problem(reviewer.post("/v1/evidence/not-a-uuid/approvals", json={}), 404)
    bad = dict(US_PASSPORT, attributes={"citizenship": ["FR"], "us_person_status": "us_citizen"})
    rejected = submit(operator, onboard()["id"], bad)
    assert rejected["status"] == "rejected"
    assert_problem(reviewer.post(f"/v1/evidence/{rejected['id']}/approvals", json={}), 409)


def test_ial1_review_is_verified_at_once_but_too_weak_for_the_demo_policy(
    operator: httpx.Client, admin: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    subject = onboard()
    evidence = submit(operator, subject["id"], dict(US_PASSPORT, assurance="IAL1"))
    assert evidence["status"] == "verified"
    assert evidence["verified_at"] is not None
    assert evidence["reverify_at"] is not None
    assert "evidence.verified" in event_types(admin, subject["id"])
    denied = token_for(operator, subject["id"], "model:fable-5")
    body = assert_problem(denied, 403, "not-eligible")
    assert body["reasons"]
    assert "assurance_too_low" in [r["code"] for r in body["reason_details"]]


@pytest.mark.parametrize(
    ("document_type", "attributes"),
    [
        ("us_passport", {"citizenship": ["FR"], "us_person_status": "us_citizen"}),
        ("us_passport", {"us_person_status": "lawful_permanent_resident"}),
        ("permanent_resident_card", {"citizenship": ["US"]}),
        ("foreign_passport", {"us_person_status": "us_citizen"}),
        ("other", {"citizenship": ["US"], "us_person_status": "none"}),
    ],
)
def test_inconsistent_claims_are_rejected_with_reasons(
    operator: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
    document_type: str,
    attributes: dict[str, Any],
) -> None:
    subject = onboard()
    response = operator.post(
        f"/v1/subjects/{subject['id']}/evidence",
        json={
            "type": "manual_review",
            "document_type": document_type,
            "attributes": attributes,
            "assurance": "IAL2",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "rejected"
    assert body["reasons"]
    assert all(isinstance(r, str) and r for r in body["reasons"])
    assert event_types(admin, subject["id"]) == ["subject.onboarded", "evidence.rejected"]
    # Rejected evidence never establishes an attribute.
    assert operator.get(f"/v1/subjects/{subject['id']}").json()["attributes"] == {}


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"attributes": {"citizenship": ["us"]}}, "$.citizenship[0]"),
    ({"attributes": {"citizenship": ["ZZ"]}}, "$.citizenship[0]"),
    ({"attributes": {"citizenship": "US"}}, "$.citizenship"),
    ({"attributes": {"citizenship": []}}, "$.citizenship"),
    ({"attributes": {"citizenship": ["US", "US"]}}, "$.citizenship[1]"),
    ({"attributes": {"eye_colour": "blue"}}, "$.eye_colour"),
    ({"attributes": {"us_person_status": "alien"}}, "$.us_person_status"),
    ({"attributes": {}}, "$.attributes"),
    ({"document_type": "library_card"}, "$.document_type"),
    ({"document_type": None}, "$.document_type"),
    ({"type": "selfie"}, "$.type"),
    ({"type": "document_mrz"}, "$.mrz"),
    ({"type": "document_mrz", "mrz": "P<D<<X"}, "$.mrz"),
    ({"mrz": "P<D<<X"}, "$.mrz"),
    ({"type": "idp_assertion"}, "$.assertion"),
    ({"assertion": "a.b.c"}, "$.assertion"),
]


@pytest.mark.parametrize(("change", "field"), MALFORMED)
def test_malformed_evidence_is_422_and_records_nothing(
    operator: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
    change: dict[str, Any],
    field: str,
) -> None:
    subject = onboard()
    response = operator.post(
        f"/v1/subjects/{subject['id']}/evidence", json={**US_PASSPORT, **change}
    )
    body = assert_problem(response, 422)
    assert body["errors"]
    assert any(e["field"] == field for e in body["errors"]), body["errors"]
    assert event_types(admin, subject["id"]) == ["subject.onboarded"]
    assert operator.get(f"/v1/subjects/{subject['id']}").json()["evidence"] == []


@pytest.mark.parametrize(
    "body",
    [
        {**US_PASSPORT, "assurance": "IAL4"},
        {**US_PASSPORT, "assurance": "ial2"},
        {**US_PASSPORT, "attributes": ["US"]},
        {**US_PASSPORT, "surprise": True},
        {"document_type": "us_passport"},
    ],
)
def test_wrong_shapes_are_400_problems(
    operator: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
    body: dict[str, Any],
) -> None:
    subject = onboard()
    response = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=body)
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)
    assert event_types(admin, subject["id"]) == ["subject.onboarded"]


MISSING = "00000000-0000-4000-8000-000000000000"


def test_evidence_for_unknown_subject_is_404(operator: httpx.Client) -> None:
    assert_problem(
        operator.post(
            "/v1/subjects/00000000-0000-4000-8000-000000000000/evidence", json=US_PASSPORT
        ),
        404,
    )
    assert_problem(operator.post("/v1/subjects/xyz/evidence", json=US_PASSPORT), 404)


def test_concurrent_approvals_verify_once(
    actors: Actors,
    operator: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    subject = onboard()
    evidence = submit(operator, subject["id"], US_PASSPORT)
    keys = [actors.key("evidence:review", name=f"reviewer-{i}") for i in range(6)]

    def approve(key: str) -> httpx.Response:
        with actors.live.client(key) as http:
            return http.post(f"/v1/evidence/{evidence['id']}/approvals", json={})

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(approve, keys))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 5, [r.text for r in responses]
    assert event_types(admin, subject["id"]).count("evidence.approved") == 1
