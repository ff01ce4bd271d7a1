"""Policies and audiences over HTTP: read, publish a version, dry-run, bind audiences."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from attest.http.auth import current_client, delete, get, post, put, requires
from attest.http.bodies import Body, Ref, TenantName
from attest.policy.models import Audience, PolicyVersion
from attest.policy.service import PolicyService
from attest.settings import HARD_MAX_TOKEN_LIFETIME

__all__ = [
    "audience_view",
    "evaluate_policy",
    "policy_impact",
    "publish_policy",
    "read_audience",
    "read_policy",
    "read_policy_version",
    "resume_audience",
    "suspend_audience",
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
    #: Distinct holder keys per subject in a sliding 24 h window (a sharing signal).
    max_holder_keys: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None


class Suspension(Body):
    #: Why; kept out of the audit trail (free text), which records only whether one was given.
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None


def policy_view(policy: PolicyVersion) -> dict[str, Any]:
    return {
        "name": policy.name,
        "version": policy.version,
        "digest": policy.digest,
        "created_at": policy.created_at.isoformat(),
        "document": policy.document,
    }


def audience_view(audience: Audience) -> dict[str, Any]:
    return {
        "audience": audience.audience,
        "policy": audience.policy_name,
        "token_lifetime": audience.token_lifetime,
        "binding_required": audience.binding_required,
        "max_holder_keys": audience.max_holder_keys,
        "suspended": audience.suspended,
        "suspended_at": audience.suspended_at.isoformat() if audience.suspended_at else None,
        "updated_at": audience.updated_at.isoformat(),
    }


@get("/v1/policies/{name:str}", guards=[requires("policies:read")])
async def read_policy(
    name: FromPath[str], policy_service: NamedDependency[PolicyService]
) -> dict[str, Any]:
    latest, versions = await policy_service.latest(name)
    view = policy_view(latest)
    view["versions"] = [
        {"version": v.version, "digest": v.digest, "created_at": v.created_at.isoformat()}
        for v in versions
    ]
    return view


@get("/v1/policies/{name:str}/versions/{version:int}", guards=[requires("policies:read")])
async def read_policy_version(
    name: FromPath[str], version: FromPath[int], policy_service: NamedDependency[PolicyService]
) -> dict[str, Any]:
    return policy_view(await policy_service.version(name, version))


@put("/v1/policies/{name:str}", guards=[requires("policies:write")])
async def publish_policy(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    data: JSONBody[dict[str, Any]],
    policy_service: NamedDependency[PolicyService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    """Publish the next version. The body is the document; its version is the next one."""
    published = await policy_service.publish(current_client(request), name, data, now)
    return Response(policy_view(published), status_code=201)


@post("/v1/policies/{name:str}/evaluate", guards=[requires("policies:read")], status_code=200)
async def evaluate_policy(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    data: JSONBody[EvaluateRequest],
    policy_service: NamedDependency[PolicyService],
    now: NamedDependency[datetime],
) -> dict[str, Any]:
    """Dry run: the decision and every reason; nothing is issued or recorded."""
    decision = (
        await policy_service.evaluate(
            current_client(request),
            name,
            subject_id=data.subject_id,
            external_ref=data.external_ref,
            tenant=data.tenant,
            now=now,
        )
    ).decision
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


@post("/v1/policies/{name:str}/impact", guards=[requires("policies:read")], status_code=200)
async def policy_impact(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    data: JSONBody[dict[str, Any]],
    policy_service: NamedDependency[PolicyService],
    now: NamedDependency[datetime],
) -> dict[str, Any]:
    """Preview a draft document: per audience the policy governs, how many subjects are
    eligible now and would be after, who gains and who loses, and why; nothing is published
    or recorded. Tenant clients see their tenant's subjects, admin clients every tenant's."""
    impact = await policy_service.impact(current_client(request), name, data, now)
    counts = impact.counts
    return {
        "policy": impact.policy,
        "current_version": impact.current_version,
        "draft_digest": impact.draft_digest,
        "audiences": [
            {
                "audience": audience,
                "subjects": counts.subjects,
                "eligible_now": counts.eligible_now,
                "eligible_after": counts.eligible_after,
                "gain": counts.gain,
                "lose": counts.lose,
                "lose_by_reason": dict(sorted(counts.lose_by_reason.items())),
            }
            for audience in impact.audiences
        ],
    }


@get("/v1/audiences/{audience:str}", guards=[requires("audiences:read")])
async def read_audience(
    audience: FromPath[str], policy_service: NamedDependency[PolicyService]
) -> dict[str, Any]:
    return audience_view(await policy_service.audience(audience))


@put("/v1/audiences/{audience:str}", guards=[requires("audiences:write")])
async def update_audience(
    request: Request[Any, Any, Any],
    audience: FromPath[str],
    data: JSONBody[AudienceBody],
    policy_service: NamedDependency[PolicyService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    bound, created = await policy_service.bind_audience(
        current_client(request),
        audience,
        policy=data.policy,
        token_lifetime=data.token_lifetime,
        binding_required=data.binding_required,
        max_holder_keys=data.max_holder_keys,
        now=now,
    )
    return Response(audience_view(bound), status_code=201 if created else 200)


@post(
    "/v1/audiences/{audience:str}/suspension",
    guards=[requires("audiences:write")],
    status_code=201,
)
async def suspend_audience(
    request: Request[Any, Any, Any],
    audience: FromPath[str],
    policy_service: NamedDependency[PolicyService],
    now: NamedDependency[datetime],
    data: JSONBody[Suspension | None] = None,
) -> dict[str, Any]:
    """Suspend an audience at once (admin): no new tokens; outstanding ones SUSPENDED."""
    suspended, tokens = await policy_service.suspend(
        current_client(request), audience, reason_given=bool(data and data.reason), now=now
    )
    return {**audience_view(suspended), "tokens_suspended": tokens}


@delete(
    "/v1/audiences/{audience:str}/suspension",
    guards=[requires("audiences:write")],
    status_code=200,
)
async def resume_audience(
    request: Request[Any, Any, Any],
    audience: FromPath[str],
    policy_service: NamedDependency[PolicyService],
    now: NamedDependency[datetime],
) -> dict[str, Any]:
    """Lift a suspension (admin): its tokens are VALID again unless otherwise revoked."""
    resumed, tokens = await policy_service.resume(current_client(request), audience, now=now)
    return {**audience_view(resumed), "tokens_restored": tokens}
