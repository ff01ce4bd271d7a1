"""The OpenAPI document at /schema is the contract (DESIGN.md): it names the bearer scheme
and each operation's scope, every problem answer with its schema, and the real media types.
(tests/contract/run_schemathesis.sh checks a live server against it; .ci/run runs that.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from attest_testing.support import LiveServer

from attest.app import create_app
from attest.http.auth import guard_scope
from attest.settings import Settings

PROBLEM = "application/problem+json"
METHODS = ("get", "put", "post", "delete")


@pytest.fixture(scope="module")
def document(live: LiveServer) -> dict[str, Any]:
    response = httpx.get(f"{live.base_url}/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def test_the_bearer_scheme_and_the_problem_schema_are_declared(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert "attest_<key id>_<secret>" in scheme["description"]
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


def test_every_operation_names_the_scope_its_guard_requires(document: dict[str, Any]) -> None:
    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1/none"))
    expected: dict[tuple[str, str], str | None] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            scopes = [s for s in map(guard_scope, handler.resolve_guards()) if s]
            for method in handler.http_methods:
                expected[(method, route.path_format)] = scopes[0] if scopes else None
    seen = 0
    for method, path, operation in operations(document):
        scope = expected[(method, path)]
        assert operation["security"] == ([{"bearer": [scope]}] if scope else []), (method, path)
        seen += scope is not None
    assert seen >= 30
    ops = {(m, p): op for m, p, op in operations(document)}
    assert ops[("POST", "/v1/tokens")]["security"] == [{"bearer": ["tokens:issue"]}]
    assert ops[("GET", "/v1/status-lists/{list_id}")]["security"] == []


def test_problem_answers_are_declared_as_problem_json(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        for status, response in responses.items():
            if int(status) >= 400 and (method, path) != ("GET", "/readyz"):
                schema = response["content"][PROBLEM]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path)
        if operation["security"]:
            assert {"401", "403", "429"} <= set(responses), (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= set(responses), (method, path)


@pytest.mark.parametrize(
    ("path", "status", "media_type"),
    [
        ("/.well-known/jwks.json", "200", "application/jwk-set+json"),
        ("/v1/status-lists/{list_id}", "200", "application/statuslist+jwt"),
        ("/v1/log/checkpoint", "200", "text/plain"),
        ("/v1/log/tile/{path}", "200", "application/octet-stream"),
        ("/v1/log/tile/entries/{path}", "200", "application/octet-stream"),
        ("/metrics", "200", "text/plain"),
    ],
)
def test_non_json_answers_declare_their_real_media_type(
    document: dict[str, Any], path: str, status: str, media_type: str
) -> None:
    assert list(document["paths"][path]["get"]["responses"][status]["content"]) == [media_type]


def test_etag_endpoints_declare_304_and_runtime_statuses_are_declared(
    document: dict[str, Any],
) -> None:
    paths = document["paths"]
    assert "304" in paths["/.well-known/jwks.json"]["get"]["responses"]
    assert "304" in paths["/v1/status-lists/{list_id}"]["get"]["responses"]
    assert {"200", "201"} <= set(paths["/v1/subjects"]["post"]["responses"])
    assert {"200", "201"} <= set(paths["/v1/audiences/{audience}"]["put"]["responses"])
    assert "201" in paths["/v1/policies/{name}"]["put"]["responses"]
    approvals = paths["/v1/evidence/{evidence_id}/approvals"]["post"]["responses"]
    assert "200" in approvals
    assert "201" not in approvals
    assert "503" in paths["/readyz"]["get"]["responses"]
