"""The OpenAPI document at ``/schema``, completed in one place from the routes themselves.

Litestar derives paths, parameters and bodies from the handlers; this module adds what it
cannot know, by walking every route handler once the application is built:

- the ``bearer`` security scheme (``Authorization: Bearer attest_<key id>_<secret>``) and,
  per operation, the scope its :func:`attest.http.auth.requires` guard admits (public
  operations declare ``security: []``);
- the ``Problem`` schema (RFC 9457) and every problem status the operation can return,
  as ``application/problem+json``;
- the real media types of the non-JSON answers (JWKS, status lists, checkpoints, tiles,
  metrics), the ``304`` of the ETag endpoints, and the success statuses the handlers
  really answer with when they choose them at run time (200 or 201).

Problem statuses follow from how every request is handled (see attest.http.problems):
any parameter or body can be malformed (400) or well-formed but unacceptable (422);
guarded operations answer 401, 403 and 429; what a path, a query or a body names may
not exist (404); bodies can be too large (413) or not JSON (415); writes can conflict
(409); the database can be unavailable (503).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType
from litestar.routes import HTTPRoute

from attest.http.auth import guard_scope
from attest.http.problems import PROBLEM_MEDIA_TYPE

__all__ = ["SCHEME", "complete_openapi"]

#: The name of the security scheme in components.securitySchemes.
SCHEME = "bearer"

_PROBLEM_REF = Reference(ref="#/components/schemas/Problem")

_PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    description="RFC 9457 problem details; `type` is stable per error (urn:attest:problem:...).",
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.OBJECT),
            description="Per-field errors: the JSON path or field and a message.",
        ),
        "reasons": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.STRING),
            description="Why a subject is not eligible (403 not-eligible).",
        ),
    },
)

_DESCRIPTIONS = {
    304: "Not modified (the If-None-Match ETag matches)",
    400: "Malformed request (bad JSON, duplicate member, wrong types)",
    401: "No or invalid API key",
    403: "Insufficient scope, or refused by a rule (reasons in the problem)",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "Content-Type is not application/json",
    422: "Well-formed but unacceptable input",
    429: "Too many requests (Retry-After)",
    503: "A dependency is unavailable (Retry-After)",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """What an operation answers besides problems: media type, extra statuses."""

    media_type: str | None = None
    schema: Schema | None = None
    success: tuple[int, ...] = ()  # statuses replacing the one Litestar derived
    not_modified: bool = False
    extra: dict[int, str] = field(default_factory=dict)  # non-problem answers (readyz 503)


_BINARY = Schema(
    type=OpenAPIType.STRING, format=None, content_media_type="application/octet-stream"
)
_TEXT = Schema(type=OpenAPIType.STRING)

#: Operations whose answers Litestar cannot infer, by (method, path).
_ANSWERS: dict[tuple[str, str], Answer] = {
    ("GET", "/.well-known/jwks.json"): Answer(
        "application/jwk-set+json", Schema(type=OpenAPIType.OBJECT), not_modified=True
    ),
    ("GET", "/v1/status-lists/{list_id}"): Answer(
        "application/statuslist+jwt", _TEXT, not_modified=True
    ),
    ("GET", "/v1/log/checkpoint"): Answer("text/plain", _TEXT),
    ("GET", "/v1/log/tile/{path}"): Answer("application/octet-stream", _BINARY),
    ("GET", "/v1/log/tile/entries/{path}"): Answer("application/octet-stream", _BINARY),
    ("GET", "/metrics"): Answer("text/plain", _TEXT),
    ("GET", "/readyz"): Answer(extra={503: "Not ready (the checks say which failed)"}),
    ("POST", "/v1/subjects"): Answer(success=(200, 201)),
    ("PUT", "/v1/audiences/{audience}"): Answer(success=(200, 201)),
    ("PUT", "/v1/policies/{name}"): Answer(success=(201,)),
    ("POST", "/v1/evidence/{evidence_id}/approvals"): Answer(success=(200,)),
    ("POST", "/v1/evidence/{evidence_id}/rejections"): Answer(success=(200,)),
    ("POST", "/v1/evidence/{evidence_id}/withdrawals"): Answer(success=(200,)),
}

#: Operations that touch no dependency (no 503).
_NO_DEPENDENCY = {("GET", "/healthz"), ("GET", "/metrics")}


def _problem(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=_DESCRIPTIONS[status],
        content={PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=_PROBLEM_REF)},
    )


def _problem_statuses(method: str, operation: Operation, scope: str | None) -> set[int]:
    params = operation.parameters or []
    in_path = any(getattr(p, "param_in", None) == "path" for p in params)
    statuses: set[int] = set()
    if params or operation.request_body is not None:
        statuses |= {400, 422}
    if scope is not None:
        statuses |= {401, 403, 429}
    if in_path or params or operation.request_body is not None:
        # What a path, a query or a body names may not exist (a subject, an audience, a
        # tree size past the checkpoint).
        statuses.add(404)
    if operation.request_body is not None:
        statuses |= {413, 415}
    if scope is not None and method in {"POST", "PUT", "DELETE"}:
        statuses.add(409)
    return statuses


def _complete(method: str, path: str, operation: Operation, scope: str | None) -> None:
    operation.security = [{SCHEME: [scope]}] if scope is not None else []
    responses: dict[str, OpenAPIResponse | Reference] = dict(operation.responses or {})
    answer = _ANSWERS.get((method, path), Answer())
    success = [code for code in responses if code.startswith("2")]
    if answer.success:
        template = responses[success[0]] if success else OpenAPIResponse(description="OK")
        for code in success:
            del responses[code]
        for status in answer.success:
            responses[str(status)] = template
        success = [str(status) for status in answer.success]
    if answer.media_type is not None:
        for code in success:
            responses[code] = OpenAPIResponse(
                description="OK",
                content={answer.media_type: OpenAPIMediaType(schema=answer.schema or _TEXT)},
            )
    if answer.not_modified:
        responses["304"] = OpenAPIResponse(description=_DESCRIPTIONS[304])
    for status, description in answer.extra.items():
        template = responses[success[0]]
        assert isinstance(template, OpenAPIResponse)  # noqa: S101 - built above by Litestar
        responses[str(status)] = OpenAPIResponse(description=description, content=template.content)
    statuses = _problem_statuses(method, operation, scope)
    if (method, path) not in _NO_DEPENDENCY:
        statuses.add(503)
    for status in sorted(statuses):
        if status not in answer.extra:
            responses[str(status)] = _problem(status)
    operation.responses = dict(sorted(responses.items()))


def _scopes(app: Litestar) -> dict[tuple[str, str], str | None]:
    scopes: dict[tuple[str, str], str | None] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            found = [s for s in (guard_scope(g) for g in handler.resolve_guards()) if s]
            for method in handler.http_methods:
                scopes[(method, route.path_format)] = found[0] if found else None
    return scopes


def complete_openapi(app: Litestar) -> Litestar:
    """Add security, scopes, problems and media types to ``app``'s document (in place)."""
    document = app.openapi_schema
    components = document.components
    if not isinstance(components, Components):
        components = document.components = Components()
    components.security_schemes = {
        SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            description=(
                "An API key, `attest_<key id>_<secret>`, in `Authorization: Bearer <api key>` "
                "(never in the query string). Each operation lists the scope it needs."
            ),
        )
    }
    schemas: dict[str, Any] = dict(components.schemas or {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    components.schemas = schemas
    scopes = _scopes(app)
    for path, item in (document.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if isinstance(operation, Operation):
                _complete(method.upper(), path, operation, scopes.get((method.upper(), path)))
    return app
