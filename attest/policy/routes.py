"""Policies and audiences over HTTP: read, publish a version, dry-run, bind audiences."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Request, Response, get, post, put
from litestar.params import FromPath, JSONBody

from attest.audit import service as audit
from attest.clients.guards import current_client, requires
from attest.errors import Conflict, NotFound, UnprocessableInput
from attest.http.bodies import Body, Ref, TenantName
from attest.http.context import app_context
from attest.policy import repository
from attest.policy.document import PolicyDocumentError, policy_digest, validate_policy_document
from attest.settings import HARD_MAX_TOKEN_LIFETIME
from attest.subjects.service import resolve_subject
from attest.tokens.routes import decide

__all__ = [
    "evaluate_policy",
    "publish_policy",
    "read_audience",
    "read_policy",
    "read_policy_version",
    "update_audience",
]

Lifetime = Annotated[int, msgspec.Meta(ge=10, le=HARD_MAX_TOKEN_LIFETIME)]


class EvaluateRequest(Body):
    subject_id: str | None = None
    external_ref: Ref | None = None
    tenant: TenantName | None = None


class AudienceBody(Body):
    policy: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    token_lifetime: Lifetime | None = None
    binding_required: bool = False


def policy_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "name": row["name"],
        "version": row["version"],
        "digest": row["digest"],
        "created_at": row["created_at"].isoformat(),
        "document": row["document"],
    }


def audience_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "audience": row["audience"],
        "policy": row["policy_name"],
        "token_lifetime": row["token_lifetime"],
        "binding_required": row["binding_required"],
        "updated_at": row["updated_at"].isoformat(),
    }


@get("/v1/policies/{name:str}", guards=[requires("policies:read")])
async def read_policy(request: Request[Any, Any, Any], name: FromPath[str]) -> dict[str, Any]:
    ctx = app_context(request)
    async with ctx.pool.acquire() as conn:
        row = await repository.latest_policy(conn, name)
        if row is None:
            raise NotFound(f"No policy named '{name}'.")
        versions = await repository.list_versions(conn, name)
    view = policy_view(row)
    view["versions"] = [
        {"version": v["version"], "digest": v["digest"], "created_at": v["created_at"].isoformat()}
        for v in versions
    ]
    return view


@get("/v1/policies/{name:str}/versions/{version:int}", guards=[requires("policies:read")])
async def read_policy_version(
    request: Request[Any, Any, Any], name: FromPath[str], version: FromPath[int]
) -> dict[str, Any]:
    ctx = app_context(request)
    row = None
    # Versions are PostgreSQL integers: a larger number cannot exist (and would not bind).
    if 1 <= version <= 2**31 - 1:
        async with ctx.pool.acquire() as conn:
            row = await repository.get_policy(conn, name, version)
    if row is None:
        raise NotFound(f"No version {version} of policy '{name}'.")
    return policy_view(row)


@put("/v1/policies/{name:str}", guards=[requires("policies:write")])
async def publish_policy(
    request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[dict[str, Any]]
) -> Response[Any]:
    """Publish the next version. The body is the document; its version is the next one."""
    client = current_client(request)
    ctx = app_context(request)
    document = dict(data)
    if document.get("name", name) != name:
        raise UnprocessableInput(
            "The document's name differs from the path.",
            errors=[{"field": "$.name", "message": f"must be '{name}'"}],
        )
    document["name"] = name
    async with ctx.pool.acquire() as conn, conn.transaction():
        latest = await repository.latest_policy(conn, name)
        next_version = 1 if latest is None else latest["version"] + 1
        requested = document.get("version")
        if requested is not None and requested != next_version:
            raise Conflict(
                f"The next version of '{name}' is {next_version}; omit 'version' or send it.",
                next_version=next_version,
            )
        document["version"] = next_version
        try:
            document = validate_policy_document(document)
        except PolicyDocumentError as exc:
            raise UnprocessableInput(
                "The policy document is invalid.",
                errors=[{"field": exc.path, "message": exc.message}],
            ) from None
        digest = policy_digest(document)
        row = await repository.insert_policy(conn, document, digest, client.id)
        if row is None:
            raise Conflict("Another version was published at the same time; retry.")
        await audit.record(
            conn,
            "policy.published",
            occurred_at=ctx.now(),
            actor=client.id,
            tenant=None,
            data={"policy": name, "version": next_version, "digest": digest},
        )
    return Response(policy_view(row), status_code=201)


@post("/v1/policies/{name:str}/evaluate", guards=[requires("policies:read")], status_code=200)
async def evaluate_policy(
    request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[EvaluateRequest]
) -> dict[str, Any]:
    """Dry run: the decision and every reason; nothing is issued or recorded."""
    client = current_client(request)
    ctx = app_context(request)
    if (data.subject_id is None) == (data.external_ref is None):
        raise UnprocessableInput("Name the subject by exactly one of subject_id and external_ref.")
    async with ctx.pool.acquire() as conn:
        if await repository.latest_policy(conn, name) is None:
            raise NotFound(f"No policy named '{name}'.")
        subject = await resolve_subject(
            conn,
            client,
            subject_id=data.subject_id,
            external_ref=data.external_ref,
            tenant=data.tenant,
        )
        decision, _ = await decide(conn, ctx, subject, name)
    return {
        "eligible": decision.eligible,
        "decision": "eligible" if decision.eligible else "not_eligible",
        "policy": decision.policy,
        "policy_version": decision.policy_version,
        "policy_digest": decision.policy_digest,
        "assurance": decision.assurance,
        "reasons": [r.message for r in decision.reasons],
        "reason_details": [
            {"code": r.code, "message": r.message, "rule": r.path} for r in decision.reasons
        ],
    }


@get("/v1/audiences/{audience:str}", guards=[requires("audiences:read")])
async def read_audience(request: Request[Any, Any, Any], audience: FromPath[str]) -> dict[str, Any]:
    ctx = app_context(request)
    async with ctx.pool.acquire() as conn:
        row = await repository.get_audience(conn, audience)
    if row is None:
        raise NotFound(f"The audience '{audience}' is not registered.")
    return audience_view(row)


@put("/v1/audiences/{audience:str}", guards=[requires("audiences:write")])
async def update_audience(
    request: Request[Any, Any, Any], audience: FromPath[str], data: JSONBody[AudienceBody]
) -> Response[Any]:
    client = current_client(request)
    ctx = app_context(request)
    if not 1 <= len(audience) <= 256:
        raise UnprocessableInput("An audience name has 1 to 256 characters.")
    async with ctx.pool.acquire() as conn, conn.transaction():
        if await repository.latest_policy(conn, data.policy) is None:
            raise UnprocessableInput(
                f"No policy named '{data.policy}'.",
                errors=[{"field": "$.policy", "message": "unknown policy"}],
            )
        existing = await repository.get_audience(conn, audience)
        lifetime = data.token_lifetime or ctx.settings.default_token_lifetime
        settings = ctx.settings
        if lifetime + settings.key_leeway > settings.key_retiring_window:
            # A retired key must outlive every token it signed (DESIGN.md, "Keys").
            longest = settings.key_retiring_window - settings.key_leeway
            raise UnprocessableInput(
                f"A token lifetime of {lifetime} s would outlive the key that signed it: "
                f"at most {longest} s with ATTEST_KEY_RETIRING_WINDOW "
                f"{settings.key_retiring_window} s and ATTEST_KEY_LEEWAY {settings.key_leeway} s.",
                errors=[{"field": "$.token_lifetime", "message": f"at most {longest}"}],
            )
        row = await repository.upsert_audience(
            conn, audience, data.policy, lifetime, data.binding_required
        )
        await audit.record(
            conn,
            "audience.updated",
            occurred_at=ctx.now(),
            actor=client.id,
            tenant=None,
            data={
                "audience": audience,
                "policy": data.policy,
                "token_lifetime": lifetime,
                "binding_required": data.binding_required,
                "created": existing is None,
            },
        )
    return Response(audience_view(row), status_code=201 if existing is None else 200)
