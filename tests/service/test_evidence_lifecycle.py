"""Evidence lifecycle: reviewer rejection and withdrawal (audit events), four-eyes per tenant
and per assurance level, re-verification dates per evidence type, expiry in policy reasons."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from attest_testing.mrz import mrz_evidence, td3, unique_number
from attest_testing.service import assert_problem, event_types, events, submit, token_for
from attest_testing.support import (
    OPERATOR_SCOPES,
    US_PASSPORT,
    Actors,
    Clock,
    LiveServer,
    make_settings,
    start_server,
)

FABLE = "model:fable-5"
STRICT = f"t-strict-{uuid.uuid4().hex[:8]}"  # four-eyes from IAL1 up
RELAXED = f"t-relaxed-{uuid.uuid4().hex[:8]}"  # never four-eyes


@pytest.fixture(scope="module")
def tuned(
    live: LiveServer, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A second instance on the same database with per-tenant and per-type settings."""
    settings = make_settings(
        database_url,
        tmp_path_factory.mktemp("tuned"),
        keystore=live.settings.keystore,
        keystore_passphrase=live.settings.keystore_passphrase,
        pairwise_secret=live.settings.pairwise_secret,
        bootstrap_admin_key=live.settings.bootstrap_admin_key,
        four_eyes_by_tenant=f"{STRICT}=IAL1,{RELAXED}=never",
        evidence_validity_by_type="manual_review=10,document_mrz=20",
    )
    server = start_server(settings, Clock())
    try:
        yield server
    finally:
        server.stop()


def _verified_subject(
    operator: httpx.Client, reviewer: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    subject = onboard()
    evidence = submit(operator, subject["id"], US_PASSPORT)
    approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
    assert approved.status_code == 200, approved.text
    return subject, approved.json()


def test_reviewer_rejects_pending_evidence(
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    subject = onboard()
    evidence = submit(operator, subject["id"], US_PASSPORT)
    url = f"/v1/evidence/{evidence['id']}/rejections"
    assert_problem(operator.post(url, json={}), 403, "insufficient-scope")
    response = reviewer.post(url, json={"reason": "photo does not match Jane Doe"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "rejected"
    assert body["closed_by"] is not None
    assert body["closed_at"] is not None
    assert body["reasons"] == ["rejected_by_reviewer: photo does not match Jane Doe"]
    # Rejected evidence can be neither approved nor rejected again.
    assert_problem(reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={}), 409)
    assert_problem(reviewer.post(url, json={}), 409, "conflict")
    event = events(admin, subject_id=subject["id"], type="evidence.rejected")[-1]
    assert event["data"]["by_reviewer"] is True
    assert event["data"]["previous_status"] == "pending_approval"
    assert event["data"]["reason_given"] is True
    # The reviewer's free text (possibly personal data) stays out of the audit trail.
    assert "Jane" not in str(events(admin, subject_id=subject["id"]))
    assert_problem(token_for(operator, subject["id"], FABLE), 403, "not-eligible")


def test_verified_evidence_cannot_be_rejected_only_withdrawn(
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    subject, evidence = _verified_subject(operator, reviewer, onboard)
    assert token_for(operator, subject["id"], FABLE).status_code == 201
    assert_problem(reviewer.post(f"/v1/evidence/{evidence['id']}/rejections"), 409, "conflict")

    withdrawn = reviewer.post(f"/v1/evidence/{evidence['id']}/withdrawals")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["reasons"] == ["withdrawn_by_reviewer"]
    assert operator.get(f"/v1/subjects/{subject['id']}").json()["attributes"] == {}
    denied = assert_problem(token_for(operator, subject["id"], FABLE), 403, "not-eligible")
    assert "attribute_missing" in [r["code"] for r in denied["reason_details"]]
    assert_problem(reviewer.post(f"/v1/evidence/{evidence['id']}/withdrawals"), 409)
    types = event_types(admin, subject["id"])
    assert types.count("evidence.withdrawn") == 1
    event = events(admin, subject_id=subject["id"], type="evidence.withdrawn")[0]
    assert event["data"]["previous_status"] == "verified"
    assert event["data"]["reason_given"] is False


def test_closing_is_tenant_isolated_and_validates_input(
    operator: httpx.Client,
    reviewer: httpx.Client,
    actors: Actors,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    evidence = submit(operator, onboard()["id"], US_PASSPORT)
    stranger = actors.client("evidence:review", tenant=f"t-other-{uuid.uuid4().hex[:8]}")
    for action in ("rejections", "withdrawals"):
        url = f"/v1/evidence/{evidence['id']}/{action}"
        assert_problem(stranger.post(url, json={}), 404, "not-found")
        assert_problem(reviewer.post("/v1/evidence/not-a-uuid/" + action, json={}), 404)
        for bad in ({"reason": ""}, {"reason": "x" * 501}, {"reason": 5}, {"other": 1}):
            response = reviewer.post(url, json=bad)
            assert response.status_code in (400, 422), response.text
            assert_problem(response, response.status_code)
    assert (
        operator.get(f"/v1/subjects/{evidence['subject_id']}").json()["evidence"][0]["status"]
        == "pending_approval"
    )


def _tenant_clients(
    tuned: LiveServer, actors: Actors, tenant: str
) -> tuple[httpx.Client, httpx.Client]:
    operator = tuned.client(actors.key(*OPERATOR_SCOPES, "evidence:review", tenant=tenant))
    reviewer = tuned.client(actors.key("evidence:review", "subjects:read", tenant=tenant))
    return operator, reviewer


def _onboard(client: httpx.Client) -> str:
    response = client.post("/v1/subjects", json={"external_ref": f"hr-{uuid.uuid4().hex}"})
    assert response.status_code == 201, response.text
    subject_id: str = response.json()["id"]
    return subject_id


@pytest.mark.parametrize(
    ("tenant", "assurance", "status"),
    [
        (STRICT, "IAL1", "pending_approval"),
        (STRICT, "IAL3", "pending_approval"),
        (RELAXED, "IAL1", "verified"),
        (RELAXED, "IAL3", "verified"),
        (None, "IAL1", "verified"),  # the global threshold (IAL2) for tenants not named
        (None, "IAL2", "pending_approval"),
    ],
    # Fixed ids: the tenant names are random per process, and pytest-xdist requires every
    # worker to collect the same test ids.
    ids=["strict-IAL1", "strict-IAL3", "relaxed-IAL1", "relaxed-IAL3", "none-IAL1", "none-IAL2"],
)
def test_four_eyes_per_tenant_and_assurance(
    tuned: LiveServer, actors: Actors, tenant: str | None, assurance: str, status: str
) -> None:
    operator, _ = _tenant_clients(tuned, actors, tenant or actors.tenant)
    with operator:
        sid = _onboard(operator)
        manual = submit(operator, sid, dict(US_PASSPORT, assurance=assurance))
        assert manual["status"] == status
        document = submit(operator, sid, mrz_evidence(td3(number=unique_number()), assurance))
        assert document["status"] == status


def test_reverification_date_per_evidence_type(tuned: LiveServer, actors: Actors) -> None:
    operator, reviewer = _tenant_clients(tuned, actors, RELAXED)
    with operator, reviewer:
        sid = _onboard(operator)
        manual = submit(operator, sid, dict(US_PASSPORT, assurance="IAL1"))
        document = submit(operator, sid, mrz_evidence(td3(number=unique_number())))
        for evidence, days in ((manual, 10), (document, 20)):
            verified = datetime.fromisoformat(evidence["verified_at"])
            assert datetime.fromisoformat(evidence["reverify_at"]) - verified == timedelta(
                days=days
            )
        # After 10 days the manual review stops counting, after 20 the document too.
        try:
            tuned.clock.advance(days=11)
            attributes = operator.get(f"/v1/subjects/{sid}").json()["attributes"]
            assert set(attributes) == {"citizenship"}
            assert [a["evidence_id"] for a in attributes["citizenship"]] == [document["id"]]
            tuned.clock.advance(days=10)
            assert operator.get(f"/v1/subjects/{sid}").json()["attributes"] == {}
        finally:
            tuned.clock.offset = timedelta()
