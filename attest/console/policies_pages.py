"""Policy and audience pages: versions, the diff of two versions, and which version
governed which audience and when. Policies need ``policies:read``, audiences
``audiences:read``; both read through :mod:`attest.console.policies_reports`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from attest.audit.service import AuditService
from attest.console import policies_reports
from attest.console.web import page_scope, principal, render
from attest.policy.service import PolicyService

__all__ = ["HANDLERS"]

VERSION = QueryParameter(ge=1, le=2**31 - 1)


@get("/policies", guards=[page_scope("policies:read")], name="console-policies")
async def policies(
    request: Request[Any, Any, Any], policy_service: NamedDependency[PolicyService]
) -> Template:
    listed, audiences = await policies_reports.policy_list(policy_service)
    return render(
        request, "policies/list.html", nav="policies", policies=listed, audiences=audiences
    )


@get("/policies/{name:str}", guards=[page_scope("policies:read")], name="console-policy")
async def policy(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    policy_service: NamedDependency[PolicyService],
    audit_service: NamedDependency[AuditService],
    old: Annotated[int | None, VERSION] = None,
    new: Annotated[int | None, VERSION] = None,
) -> Template:
    page = await policies_reports.policy_page(
        name,
        client=principal(request),
        old=old,
        new=new,
        policy_service=policy_service,
        audit_service=audit_service,
    )
    return render(request, "policies/detail.html", nav="policies", page=page)


@get("/audiences/{audience:str}", guards=[page_scope("audiences:read")], name="console-audience")
async def audience(
    request: Request[Any, Any, Any],
    audience: FromPath[str],
    policy_service: NamedDependency[PolicyService],
    audit_service: NamedDependency[AuditService],
) -> Template:
    page = await policies_reports.audience_page(
        audience,
        client=principal(request),
        policy_service=policy_service,
        audit_service=audit_service,
    )
    return render(request, "policies/audience.html", nav="policies", page=page)


HANDLERS = [policies, policy, audience]
