"""Audit trail: one event per decision, none for bad input; filters, pagination, attestations."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from attest_testing.service import (
    LPR_CARD,
    AuditTrail,
    assert_problem,
    event_types,
    events,
    jwks,
    submit,
    token_for,
    wait_sequenced,
)
from attest_testing.support import US_PASSPORT, Actors, LiveServer

FABLE = "model:fable-5"


def test_every_decision_is_an_event(
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    subject = onboard()
    sid = subject["id"]
    assert event_types(admin, sid) == ["subject.onboarded"]
    token_for(operator, sid, FABLE)
    pending = submit(operator, sid, US_PASSPORT)
    submit(operator, sid, dict(US_PASSPORT, attributes={"citizenship": ["FR"]}))
    submit(operator, sid, dict(US_PASSPORT, assurance="IAL1"))
    reviewer.post(f"/v1/evidence/{pending['id']}/approvals", json={})
    issued = token_for(operator, sid, FABLE)
    assert issued.status_code == 201
    assert event_types(admin, sid) == [
        "subject.onboarded",
        "token.denied",
        "evidence.pending_approval",
        "evidence.rejected",
        "evidence.verified",
        "evidence.approved",
        "token.issued",
    ]
    trail = events(admin, subject_id=sid)
    assert len({e["event_id"] for e in trail}) == len(trail)
    assert trail[-1]["data"]["jti"] == issued.json()["jti"]
    assert (
        trail[-1]["data"]["token_sha256"]
        == hashlib.sha256(issued.json()["token"].encode()).hexdigest()
    )
    assert all(e["tenant"] == subject["tenant"] for e in trail)
    # Values of attributes (nationalities) stay out of the trail.
    assert '"FR"' not in str([e["data"] for e in trail]).replace("'", '"')


BAD_REQUESTS: list[tuple[str, Any]] = [
    ("evidence", {**US_PASSPORT, "attributes": {"citizenship": ["us"]}}),
    ("evidence", {**US_PASSPORT, "type": "document_mrz"}),
    ("evidence", {**US_PASSPORT, "extra": 1}),
    ("token", {"audience": FABLE}),
    ("token", {"audience": FABLE, "subject_id": "{sid}", "holder_jwk": {"kty": "oct", "k": "AA"}}),
    ("token", {"audience": FABLE, "subject_id": "{sid}", "admin": True}),
    ("approval", {"comment": 5}),
    ("revocation", {"reason": ""}),
]


@pytest.mark.parametrize(("what", "body"), BAD_REQUESTS)
def test_rejected_input_writes_no_event(
    actors: Actors,
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    audit_trail: AuditTrail,
    onboard: Callable[..., dict[str, Any]],
    what: str,
    body: Any,
) -> None:
    subject = onboard()
    sid = subject["id"]
    pending = submit(operator, sid, US_PASSPORT)
    mark = audit_trail.mark()
    before = events(admin, subject_id=sid)
    if isinstance(body, dict) and body.get("subject_id") == "{sid}":
        body = {**body, "subject_id": sid}
    if what == "evidence":
        response = operator.post(f"/v1/subjects/{sid}/evidence", json=body)
    elif what == "token":
        response = operator.post("/v1/tokens", json=body)
    elif what == "approval":
        response = reviewer.post(f"/v1/evidence/{pending['id']}/approvals", json=body)
    else:
        revoker = actors.client("subjects:revoke")
        mark = audit_trail.mark()  # after the client.created event of the revoker
        response = revoker.post(f"/v1/subjects/{sid}/revocations", json=body)
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)
    assert events(admin, subject_id=sid) == before
    # Nothing at all was appended, in any tenant (the other tests on this server run
    # serially in this worker): no event after the mark.
    assert audit_trail.since(mark) == []


def test_filters_by_type_subject_and_time(
    live: LiveServer,
    admin: httpx.Client,
    operator: httpx.Client,
    eligible_subject: dict[str, Any],
    onboard: Callable[..., dict[str, Any]],
) -> None:
    sid = eligible_subject["id"]
    other = onboard()
    live.clock.advance(days=1)
    token_for(operator, sid, FABLE)
    live.clock.advance(days=1)
    token_for(operator, other["id"], FABLE)

    mine = events(admin, subject_id=sid)
    assert [e["type"] for e in mine] == [
        "subject.onboarded",
        "evidence.pending_approval",
        "evidence.approved",
        "token.issued",
    ]
    assert all(e["subject_id"] == sid for e in mine)
    typed = events(admin, subject_id=sid, type="token.issued")
    assert [e["id"] for e in typed] == [mine[-1]["id"]]
    denied_other = events(admin, subject_id=other["id"], type="token.denied")
    assert len(denied_other) == 1
    assert events(admin, subject_id=other["id"], type="token.issued") == []

    issued_at = mine[-1]["occurred_at"]
    since = events(admin, subject_id=sid, since=issued_at)
    until = events(admin, subject_id=sid, until=issued_at)
    assert [e["id"] for e in since] == [mine[-1]["id"]]
    assert [e["id"] for e in until] == [e["id"] for e in mine[:-1]]
    window = events(admin, since=issued_at, until=denied_other[0]["occurred_at"])
    assert mine[-1]["id"] in [e["id"] for e in window]
    assert denied_other[0]["id"] not in [e["id"] for e in window]


def test_tenant_client_sees_only_its_tenant(
    actors: Actors, admin: httpx.Client, eligible_subject: dict[str, Any], tenant: str
) -> None:
    auditor = actors.client("audit:read")
    seen = auditor.get("/v1/audit/events", params={"limit": 1000}).json()["events"]
    assert seen
    assert {e["tenant"] for e in seen} == {tenant}
    # The admin sees more than the tenant's events: asking it for one more than the tenant
    # sees fills the page (the same fact as counting the whole trail, in one request).
    more = admin.get("/v1/audit/events", params={"limit": len(seen) + 1}).json()["events"]
    assert len(more) == len(seen) + 1


def test_pagination_returns_every_event_once(
    admin: httpx.Client, operator: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    subject = onboard()
    for _ in range(6):
        token_for(operator, subject["id"], FABLE)
    # Pages follow the log order; wait until the sequencer has given every event its place.
    everything = wait_sequenced(admin, subject_id=subject["id"], limit=1000)
    assert len(everything) == 7
    for limit in (1, 2, 3, 7):
        seen: list[int] = []
        params: dict[str, Any] = {"subject_id": subject["id"], "limit": limit}
        pages = 0
        while True:
            page = admin.get("/v1/audit/events", params=params).json()
            pages += 1
            assert len(page["events"]) <= limit
            seen.extend(e["id"] for e in page["events"])
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
            assert pages < 20
        assert seen == [e["id"] for e in everything]
    positions = [e["log_index"] for e in everything]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "abc"},
        {"limit": "-1"},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "1.5"},
        {"cursor": "-1"},
        {"cursor": "x"},
        {"cursor": str(2**70)},
        {"since": "yesterday"},
        {"until": "2024-01-01T00:00:00"},
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"subject_id": "not-a-uuid"},
        {"type": "x" * 65},
    ],
)
def test_bad_query_params_are_problems(admin: httpx.Client, params: dict[str, str]) -> None:
    response = admin.get("/v1/audit/events", params=params)
    assert 400 <= response.status_code < 500, response.text
    assert_problem(response, response.status_code)


def test_attestation_record_and_signature(
    live: LiveServer,
    operator: httpx.Client,
    actors: Actors,
    eligible_subject: dict[str, Any],
) -> None:
    issued = token_for(operator, eligible_subject["id"], FABLE).json()
    token = issued["token"]
    auditor = actors.client("audit:read")
    response = auditor.get(f"/v1/audit/attestations/{issued['jti']}")
    assert response.status_code == 200, response.text
    record = response.json()
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    assert record["jti"] == issued["jti"]
    assert record["audience"] == FABLE
    assert record["kid"] == header["kid"]
    assert record["sub"] == claims["sub"]
    assert record["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    policy = record["policy"]
    assert policy["name"] == "us-nationals-only"
    assert policy["version"] == claims["eligibility"]["policy_version"]
    assert policy["digest"] == claims["eligibility"]["policy_digest"]
    from attest.policy.document import policy_digest

    assert policy_digest(policy["document"]) == policy["digest"]
    assert record["evidence_ids"]

    published = {k["kid"]: k for k in jwks(live)["keys"]}
    key = jwt.PyJWK(published[record["kid"]]).key
    signed = jwt.decode(
        record["signature"],
        key,
        algorithms=["ES256"],
        options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
    )
    assert jwt.get_unverified_header(record["signature"])["kid"] == record["kid"]
    assert signed["jti"] == record["jti"]
    assert signed["audience"] == record["audience"]
    assert signed["sub"] == record["sub"]
    assert signed["subject_id"] == record["subject_id"]
    assert signed["kid"] == record["kid"]
    assert signed["token_sha256"] == record["token_sha256"]
    assert signed["evidence_ids"] == record["evidence_ids"]
    assert signed["policy"] == {k: policy[k] for k in ("name", "version", "digest")}
    assert signed["iat"] == claims["iat"]
    assert signed["exp"] == claims["exp"]
    # The public key in the record is the published one.
    assert record["public_jwk"]["x"] == published[record["kid"]]["x"]
    # A tampered signature does not verify.
    head, body, sig = record["signature"].split(".")
    forged = f"{head}.{body}.{sig[:-4]}AAAA"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key, algorithms=["ES256"], options={"verify_aud": False})


@pytest.mark.parametrize("jti", ["unknown-jti", "A" * 22, "x" * 65, "..%2F..%2Fetc", "%20"])
def test_unknown_attestation_is_404(admin: httpx.Client, jti: str) -> None:
    assert_problem(admin.get(f"/v1/audit/attestations/{jti}"), 404)


def test_lpr_denial_event_names_the_policy(
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    subject = onboard()
    evidence = submit(operator, subject["id"], LPR_CARD)
    reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
    assert token_for(operator, subject["id"], FABLE).status_code == 403
    denied = events(admin, subject_id=subject["id"], type="token.denied")
    assert len(denied) == 1
    data = denied[0]["data"]
    assert data["policy"] == "us-nationals-only"
    assert data["policy_version"] >= 1
    assert len(data["policy_digest"]) == 64
    assert "MX" not in str(data)


@pytest.mark.parametrize(
    ("since", "until"),
    [("0001-01-01T00:00:00+00:00", None), (None, "9999-12-31T23:59:59+00:00")],
)
def test_extreme_but_valid_times_are_accepted(
    admin: httpx.Client, eligible_subject: dict[str, Any], since: str | None, until: str | None
) -> None:
    found = events(admin, subject_id=eligible_subject["id"], since=since, until=until)
    assert len(found) == 3
