"""RFC 9457 problems for every error, and never a 500 for bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from attest_testing.service import AuditTrail, assert_problem
from attest_testing.support import OPERATOR_SCOPES, US_PASSPORT, Actors, LiveServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def power(actors: Actors) -> httpx.Client:
    """A tenant client with every scope the core loop needs."""
    return actors.client(
        *OPERATOR_SCOPES,
        "evidence:review",
        "subjects:revoke",
        "audit:read",
        "policies:write",
        "audiences:read",
        "audiences:write",
    )


def _problem_4xx(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    return assert_problem(response, response.status_code)


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"external_ref": "x"',
        b"",
        b"[]",
        b'["x"]',
        b'"x"',
        b"null",
        b"42",
        b'{"external_ref": 123}',
        b'{"external_ref": null}',
        b'{"external_ref": ["x"]}',
        b'{"external_ref": "x", "admin": true}',
        b'{"external_ref": ""}',
        b'{"external_ref": "a\\u0000b"}',
        b'{"external_ref": "a\\nb"}',
        b'{"external_ref": "\\u007f"}',
        json.dumps({"external_ref": "x" * 257}).encode(),
        b'{"external_ref": "\\ud800"}',
        b"\xff\xfe{}",
        b'{"external_ref": "x", "external_ref": 1}',
    ],
)
def test_bad_subject_bodies_are_400_problems(
    operator: httpx.Client, audit_trail: AuditTrail, tenant: str, content: bytes
) -> None:
    mark = audit_trail.mark()
    response = operator.post(
        "/v1/subjects", content=content, headers={"content-type": "application/json"}
    )
    body = _problem_4xx(response)
    assert response.status_code in (400, 415, 422)
    assert body["detail"]
    assert audit_trail.since(mark, type="subject.onboarded") == []  # in no tenant


def test_malformed_json_has_its_own_type(operator: httpx.Client) -> None:
    response = operator.post(
        "/v1/subjects", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-json")


def test_validation_errors_name_the_field_without_echoing_input(operator: httpx.Client) -> None:
    secret = "do-not-echo-" + "x" * 300
    body = assert_problem(operator.post("/v1/subjects", json={"external_ref": secret}), 400)
    assert secret not in json.dumps(body)
    assert any("external_ref" in e["field"] for e in body.get("errors", [])), body


def test_long_valid_ref_is_accepted(operator: httpx.Client) -> None:
    ref = "é" * 256
    response = operator.post("/v1/subjects", json={"external_ref": ref})
    assert response.status_code == 201, response.text
    assert response.json()["external_ref"] == ref


def test_oversized_body_is_413(operator: httpx.Client) -> None:
    big = {"external_ref": "x", "pad": "y" * (64 * 1024 + 10)}
    assert_problem(operator.post("/v1/subjects", json=big), 413, "payload-too-large")
    assert_problem(
        operator.post("/v1/subjects/" + MISSING + "/evidence", content=b"{" + b" " * 70_000 + b"}"),
        413,
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/subjects/not-a-uuid"),
        ("GET", "/v1/subjects/" + MISSING),
        ("GET", "/v1/subjects/" + MISSING.upper() + "0"),
        ("GET", "/v1/subjects/%00"),
        ("POST", "/v1/subjects/12345/evidence"),
        ("POST", "/v1/subjects/12345/revocations"),
        ("POST", "/v1/evidence/12345/approvals"),
        ("GET", "/v1/audit/attestations/nope"),
        ("GET", "/v1/nothing-here"),
        ("GET", "/"),
        ("GET", "/v2/tokens"),
        ("POST", "/v1/subjects/" + MISSING + "/nothing"),
    ],
)
def test_unknown_things_are_404(power: httpx.Client, method: str, path: str) -> None:
    body = US_PASSPORT if path.endswith("/evidence") else {}
    response = power.request(method, path, json=body if method == "POST" else None)
    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/tokens"),
        ("DELETE", "/v1/subjects/" + MISSING),
        ("PUT", "/v1/subjects"),
        ("PATCH", "/v1/clients"),
        ("POST", "/.well-known/jwks.json"),
        ("DELETE", "/v1/audit/events"),
    ],
)
def test_wrong_method_is_405(power: httpx.Client, method: str, path: str) -> None:
    assert_problem(power.request(method, path), 405, "method-not-allowed")


def test_wrong_content_type_is_a_problem(operator: httpx.Client) -> None:
    response = operator.post(
        "/v1/subjects", content=b"external_ref=x", headers={"content-type": "text/plain"}
    )
    _problem_4xx(response)


def _nested(depth: int) -> bytes:
    return b'{"rule":' + b'{"all":[' * depth + b"{}" + b"]}" * depth + b"}"


@pytest.mark.parametrize("depth", [20, 200, 3000, 6000])
def test_deeply_nested_policy_is_a_problem(admin: httpx.Client, depth: int) -> None:
    response = admin.put(
        "/v1/policies/deep-nesting",
        content=_nested(depth),
        headers={"content-type": "application/json"},
    )
    _problem_4xx(response)
    assert_problem(admin.get("/v1/policies/deep-nesting"), 404)


@pytest.mark.parametrize("depth", [3000, 10000])
def test_deeply_nested_bodies_elsewhere(operator: httpx.Client, depth: int) -> None:
    content = b'{"external_ref":' + b"[" * depth + b"]" * depth + b"}"
    response = operator.post(
        "/v1/subjects", content=content, headers={"content-type": "application/json"}
    )
    _problem_4xx(response)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/policies/a%00b", None),
        ("GET", "/v1/policies/a%00b/versions/1", None),
        ("GET", "/v1/audiences/a%00b", None),
        ("PUT", "/v1/audiences/a%00b", {"policy": "us-persons"}),
        ("PUT", "/v1/audiences/model:test-nul", {"policy": "us-\u0000persons"}),
        ("POST", "/v1/policies/a%00b/evaluate", {"external_ref": "x"}),
        ("PUT", "/v1/policies/a%00b", {"rule": {"attribute": "citizenship", "any_of": ["US"]}}),
        (
            "PUT",
            "/v1/policies/nul-description",
            {"description": "a\u0000b", "rule": {"attribute": "citizenship", "any_of": ["US"]}},
        ),
        ("GET", "/v1/audit/events?type=a%00b", None),
        ("GET", "/v1/audit/attestations/a%00b", None),
        ("POST", "/v1/clients", {"name": "a\u0000b", "scopes": ["audit:read"]}),
        ("POST", "/v1/tokens", {"external_ref": "x\u0000", "audience": "model:fable-5"}),
        ("POST", "/v1/tokens", {"external_ref": "x", "audience": "model:\u0000"}),
        ("POST", f"/v1/subjects/{MISSING}/revocations", {"reason": "a\u0000b"}),
    ],
)
def test_nul_characters_are_never_a_500(
    admin: httpx.Client, method: str, path: str, body: Any
) -> None:
    response = admin.request(method, path, json=body)
    _problem_4xx(response)


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=-1",
        "limit=0",
        "cursor=-5",
        "limit=",
        "cursor=%00",
        "limit=99999999999999999999999999",
        "since=2024-13-01T00:00:00Z",
        "until=%00",
    ],
)
def test_bad_audit_query_params(admin: httpx.Client, query: str) -> None:
    response = admin.get("/v1/audit/events?" + query)
    _problem_4xx(response)


def test_every_error_has_the_problem_shape(power: httpx.Client, live: LiveServer) -> None:
    anonymous = httpx.Client(base_url=live.base_url)
    responses = [
        anonymous.get("/v1/subjects/" + MISSING),
        power.post("/v1/clients", json={"name": "x", "scopes": ["audit:read"]}),
        power.post("/v1/tokens", json={"audience": "model:fable-5"}),
        power.get("/v1/policies/no-such-policy"),
        power.put("/v1/policies/x", json={"version": 7, "rule": {}}),
    ]
    anonymous.close()
    for response in responses:
        body = _problem_4xx(response)
        assert set(body) >= {"type", "title", "status", "detail"}


# --- Hypothesis: arbitrary JSON values never produce a 500 --------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "external_ref",
                    "subject_id",
                    "audience",
                    "tenant",
                    "holder_jwk",
                    "type",
                    "document_type",
                    "attributes",
                    "assurance",
                    "citizenship",
                    "us_person_status",
                    "kty",
                    "crv",
                    "x",
                    "y",
                    "d",
                ]
            )
            | st.text(max_size=10),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)

body_shaped = st.fixed_dictionaries(
    {},
    optional={
        "external_ref": json_values,
        "subject_id": json_values,
        "audience": st.sampled_from(["model:fable-5", "model:mythos-5"]) | json_values,
        "holder_jwk": json_values,
        "type": st.sampled_from(["manual_review", "document_mrz"]) | json_values,
        "document_type": st.sampled_from(["us_passport", "other"]) | json_values,
        "attributes": json_values,
        "assurance": st.sampled_from(["IAL1", "IAL2", "IAL3"]) | json_values,
    },
)


@pytest.fixture
def fuzz_target(
    operator: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> tuple[httpx.Client, str]:
    return operator, onboard()["id"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=json_values | body_shaped, route=st.sampled_from(["subjects", "tokens", "evidence"]))
def test_arbitrary_json_never_500(
    fuzz_target: tuple[httpx.Client, str], payload: Any, route: str
) -> None:
    client, subject_id = fuzz_target
    path = {
        "subjects": "/v1/subjects",
        "tokens": "/v1/tokens",
        "evidence": f"/v1/subjects/{subject_id}/evidence",
    }[route]
    if route == "tokens" and isinstance(payload, dict) and payload.get("subject_id") == "":
        payload = {**payload, "subject_id": subject_id}
    response = client.post(
        path, content=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, (payload, response.text)
    if response.status_code >= 400:
        assert_problem(response, response.status_code)
    else:
        assert response.headers["content-type"].startswith("application/json")


def test_evidence_fuzz_seeds(fuzz_target: tuple[httpx.Client, str]) -> None:
    client, subject_id = fuzz_target
    seeds: list[Any] = [
        {**US_PASSPORT, "attributes": {"citizenship": [1]}},
        {**US_PASSPORT, "attributes": {"citizenship": [None, "US"]}},
        {**US_PASSPORT, "attributes": {"citizenship": [["US"]]}},
        {**US_PASSPORT, "attributes": {"us_person_status": ["us_citizen"]}},
        {**US_PASSPORT, "attributes": {"us_person_status": {"a": 1}}},
        {**US_PASSPORT, "attributes": {"": 1}},
        {**US_PASSPORT, "attributes": {"\u0000": 1}},
        {**US_PASSPORT, "attributes": {"citizenship": ["US"], "x\u0000": 1}},
        {**US_PASSPORT, "document_type": "us_passport\u0000"},
        {**US_PASSPORT, "type": "manual_review\u0000"},
        {**US_PASSPORT, "document_type": 5},
    ]
    for seed in seeds:
        response = client.post(f"/v1/subjects/{subject_id}/evidence", json=seed)
        assert response.status_code < 500, (seed, response.text)
        if response.status_code >= 400:
            assert_problem(response, response.status_code)
