"""Subjects: idempotent onboarding, tenant isolation, no external_ref in the audit trail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from attest_testing.service import (
    AuditTrail,
    assert_problem,
    event_types,
    events,
    submit,
    token_for,
    unique,
)
from attest_testing.support import OPERATOR_SCOPES, US_PASSPORT, Actors


def test_onboarding_is_idempotent_by_external_ref(
    operator: httpx.Client, admin: httpx.Client, tenant: str
) -> None:
    ref = unique("hr")
    first = operator.post("/v1/subjects", json={"external_ref": ref})
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) >= {"id", "external_ref", "tenant"}
    assert body["external_ref"] == ref
    assert body["tenant"] == tenant
    again = operator.post("/v1/subjects", json={"external_ref": ref})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == body["id"]
    assert event_types(admin, body["id"]).count("subject.onboarded") == 1
    # A different reference is a different subject.
    other = operator.post("/v1/subjects", json={"external_ref": ref + "-2"})
    assert other.status_code == 201
    assert other.json()["id"] != body["id"]


def test_same_external_ref_in_two_tenants_is_two_subjects(actors: Actors) -> None:
    ref = unique("hr")
    one = actors.client("subjects:write")
    two = actors.client("subjects:write", tenant=unique("t"))
    a = one.post("/v1/subjects", json={"external_ref": ref})
    b = two.post("/v1/subjects", json={"external_ref": ref})
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert a.json()["tenant"] != b.json()["tenant"]


def test_audit_events_never_contain_the_external_ref(
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    audit_trail: AuditTrail,
    actors: Actors,
) -> None:
    mark = audit_trail.mark()
    ref = unique("secret-ref")
    subject = operator.post("/v1/subjects", json={"external_ref": ref}).json()
    operator.post("/v1/subjects", json={"external_ref": ref})
    evidence = submit(operator, subject["id"], US_PASSPORT)
    reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
    issued = operator.post("/v1/tokens", json={"external_ref": ref, "audience": "model:fable-5"})
    assert issued.status_code == 201, issued.text
    revoker = actors.client("subjects:revoke")
    assert revoker.post(f"/v1/subjects/{subject['id']}/revocations", json={}).status_code == 201
    denied = operator.post("/v1/tokens", json={"external_ref": ref, "audience": "model:fable-5"})
    assert denied.status_code == 403
    mine = events(admin, subject_id=subject["id"])
    assert {e["type"] for e in mine} >= {
        "subject.onboarded",
        "evidence.pending_approval",
        "evidence.approved",
        "token.issued",
        "subject.revoked",
        "token.denied",
    }
    # Every event this test caused, in any tenant: all of them come after the mark.
    assert ref not in json.dumps(audit_trail.since(mark))


def test_read_subject_shows_attributes_and_evidence(
    operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    response = operator.get(f"/v1/subjects/{eligible_subject['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == eligible_subject["id"]
    assert [a["value"] for a in body["attributes"]["us_person_status"]] == ["us_citizen"]
    assert [a["value"] for a in body["attributes"]["citizenship"]] == ["US"]
    assert body["attributes"]["citizenship"][0]["assurance"] == "IAL2"
    assert [e["status"] for e in body["evidence"]] == ["verified"]


def test_pending_evidence_gives_no_attributes(
    operator: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    subject = onboard()
    submit(operator, subject["id"], US_PASSPORT)
    body = operator.get(f"/v1/subjects/{subject['id']}").json()
    assert body["attributes"] == {}
    assert [e["status"] for e in body["evidence"]] == ["pending_approval"]


def test_revocation(
    actors: Actors, admin: httpx.Client, eligible_subject: dict[str, Any], operator: httpx.Client
) -> None:
    revoker = actors.client("subjects:revoke")
    sid = eligible_subject["id"]
    first = revoker.post(f"/v1/subjects/{sid}/revocations", json={"reason": "left"})
    assert first.status_code == 201, first.text
    assert first.json()["revoked"] is True
    again = revoker.post(f"/v1/subjects/{sid}/revocations")
    assert again.status_code == 201
    assert again.json()["revoked_at"] == first.json()["revoked_at"]
    assert event_types(admin, sid).count("subject.revoked") == 1
    assert operator.get(f"/v1/subjects/{sid}").json()["revoked"] is True
    assert_problem(operator.post(f"/v1/subjects/{sid}/revocations", json={}), 403)


# --- tenant isolation ---------------------------------------------------------------


def test_other_tenant_gets_404_everywhere(
    actors: Actors,
    operator: httpx.Client,
    reviewer: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
    eligible_subject: dict[str, Any],
) -> None:
    other = unique("t")
    intruder = actors.client(
        *OPERATOR_SCOPES, "evidence:review", "subjects:revoke", "audit:read", tenant=other
    )
    sid = eligible_subject["id"]
    issued = token_for(operator, sid, "model:fable-5")
    assert issued.status_code == 201
    jti = issued.json()["jti"]
    pending = submit(operator, onboard()["id"], US_PASSPORT)

    assert_problem(intruder.get(f"/v1/subjects/{sid}"), 404, "not-found")
    assert_problem(intruder.post(f"/v1/subjects/{sid}/evidence", json=US_PASSPORT), 404)
    assert_problem(intruder.post(f"/v1/evidence/{pending['id']}/approvals", json={}), 404)
    assert_problem(token_for(intruder, sid, "model:fable-5"), 404)
    assert_problem(intruder.get(f"/v1/audit/attestations/{jti}"), 404)
    assert_problem(intruder.post(f"/v1/subjects/{sid}/revocations", json={}), 404)
    assert_problem(
        intruder.post("/v1/policies/us-nationals-only/evaluate", json={"subject_id": sid}), 404
    )
    # An id that does not exist answers exactly the same way.
    missing = "00000000-0000-4000-8000-000000000000"
    a = intruder.get(f"/v1/subjects/{sid}").json()
    b = intruder.get(f"/v1/subjects/{missing}").json()
    assert {k: v for k, v in a.items() if k != "instance"} == {
        k: v for k, v in b.items() if k != "instance"
    }
    # Nothing leaked: still pending, not revoked, and the intruder's audit view is empty of it.
    assert operator.get(f"/v1/subjects/{sid}").json()["revoked"] is False
    listed = intruder.get("/v1/audit/events", params={"subject_id": sid}).json()
    assert listed["events"] == []
    assert reviewer.post(f"/v1/evidence/{pending['id']}/approvals", json={}).status_code == 200


def test_external_ref_lookup_is_per_tenant(
    actors: Actors, operator: httpx.Client, eligible_subject: dict[str, Any]
) -> None:
    ref = eligible_subject["external_ref"]
    ask = {"external_ref": ref, "audience": "model:fable-5"}
    assert operator.post("/v1/tokens", json=ask).status_code == 201
    intruder = actors.client(*OPERATOR_SCOPES, tenant=unique("t"))
    assert_problem(intruder.post("/v1/tokens", json=ask), 404)
    # Naming the other tenant explicitly is refused for a non-admin client.
    assert_problem(
        intruder.post("/v1/tokens", json={**ask, "tenant": eligible_subject["tenant"]}), 403
    )
    # The same ref in the intruder's tenant is the intruder's own, ineligible subject.
    own = intruder.post("/v1/subjects", json={"external_ref": ref})
    assert own.status_code == 201
    assert own.json()["id"] != eligible_subject["id"]
    assert_problem(intruder.post("/v1/tokens", json=ask), 403, "not-eligible")


def test_concurrent_onboarding_makes_one_subject(
    actors: Actors, admin: httpx.Client, tenant: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ref = unique("race")
    key = actors.key("subjects:write")

    def post(_: int) -> httpx.Response:
        with actors.live.client(key) as http:
            return http.post("/v1/subjects", json={"external_ref": ref})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(post, range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 7 + [201], [r.text for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert event_types(admin, ids.pop()).count("subject.onboarded") == 1
