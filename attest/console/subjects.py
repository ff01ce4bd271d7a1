"""Subjects: find one by id or external_ref; its current attributes and evidence, the
dry-run decision for every registered audience, its tokens and their status; revoke a
token or the subject (each behind a confirmation).

Each section needs the scope its API route needs: the page ``subjects:read``, the
decisions ``policies:read``, revoking a token ``tokens:revoke``, the subject
``subjects:revoke``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from attest.console.reviews import free_text
from attest.console.web import BASE, MissingScope, page_scope, principal, render
from attest.errors import NotFound, UnprocessableInput
from attest.evidence.service import EvidenceService
from attest.policy.service import PolicyService
from attest.principal import Client
from attest.subjects.service import SubjectService
from attest.tokens.listing import TokenListing
from attest.tokens.service import TokenService

__all__ = ["HANDLERS"]

READ = "subjects:read"
_DONE = {
    "token-revoked": "The token was revoked.",
    "subject-revoked": "The subject's eligibility was revoked.",
}


def _looks_like_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@get("/subjects", guards=[page_scope(READ)], name="console-subjects")
async def search(
    request: Request[Any, Any, Any],
    subject_service: NamedDependency[SubjectService],
    q: FromQuery[str | None] = None,
) -> Response[Any]:
    """Look a subject up by its id or its external_ref (the tenant's own reference)."""
    query = (q or "").strip()
    if query:
        client = principal(request)
        try:
            if _looks_like_uuid(query):
                found = await subject_service.find(client, subject_id=query)
            else:
                found = await subject_service.find(client, external_ref=query)
        except NotFound:
            return render(request, "subjects.html", nav="subjects", query=query, missing=True)
        return Redirect(f"{BASE}/subjects/{found.id}", status_code=303)
    return render(request, "subjects.html", nav="subjects", query="", missing=False)


async def _decisions(
    policy_service: PolicyService, client: Client, subject_id: str, now: datetime
) -> list[dict[str, Any]]:
    """The dry run (as ``POST /v1/policies/{name}/evaluate``) for every audience."""
    rows = []
    for audience in sorted(await policy_service.audiences(), key=lambda a: a.audience):
        eligibility = await policy_service.evaluate(
            client,
            audience.policy_name,
            subject_id=subject_id,
            external_ref=None,
            tenant=None,
            now=now,
        )
        decision = eligibility.decision
        rows.append(
            {
                "audience": audience.audience,
                "suspended": audience.suspended,
                "policy": decision.policy,
                "policy_version": decision.policy_version,
                "eligible": decision.eligible,
                "assurance": decision.assurance,
                "reasons": decision.reasons,
            }
        )
    return rows


@get("/subjects/{subject_id:str}", guards=[page_scope(READ)], name="console-subject")
async def subject_page(
    request: Request[Any, Any, Any],
    subject_id: FromPath[str],
    evidence_service: NamedDependency[EvidenceService],
    policy_service: NamedDependency[PolicyService],
    token_listing: NamedDependency[TokenListing],
    now: NamedDependency[datetime],
    done: FromQuery[str | None] = None,
) -> Template:
    client = principal(request)
    profile = await evidence_service.profile(client, subject_id, now)
    subject = profile.subject
    decisions = None
    if "policies:read" in client.scopes:
        decisions = await _decisions(policy_service, client, str(subject.id), now)
    tokens = await token_listing.of_subject(client, subject.id, now)
    return render(
        request,
        "subject.html",
        nav="subjects",
        subject=subject,
        attributes=sorted(profile.attributes.items()),
        evidence=profile.evidence,
        decisions=decisions,
        tokens=tokens,
        can_revoke_tokens="tokens:revoke" in client.scopes,
        can_revoke_subject="subjects:revoke" in client.scopes,
        notice=_DONE.get(done or ""),
        now=now,
    )


def _confirmed(form: Any) -> None:
    if form.get("confirm") != "yes":
        raise UnprocessableInput("Tick the confirmation box to revoke.")


def _require(client: Client, scope: str) -> None:
    if scope not in client.scopes:
        raise MissingScope(f"This action needs the scope '{scope}', which this key lacks.")


@post(
    "/subjects/{subject_id:str}/tokens/{jti:str}/revoke",
    guards=[page_scope(READ)],
    status_code=303,
)
async def revoke_token(
    request: Request[Any, Any, Any],
    subject_id: FromPath[str],
    jti: FromPath[str],
    token_service: NamedDependency[TokenService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    """Revoke one token (as ``POST /v1/tokens/{jti}/revocations``)."""
    client = principal(request)
    _require(client, "tokens:revoke")
    form = await request.form()
    _confirmed(form)
    found = await token_service.attestation(client, jti)
    if str(found.record.subject_id) != subject_id:
        raise NotFound("No attestation with this jti for this subject.")
    await token_service.revoke(client, jti, reason_given=False, now=now)
    return Redirect(f"{BASE}/subjects/{subject_id}?done=token-revoked", status_code=303)


@post("/subjects/{subject_id:str}/revoke", guards=[page_scope(READ)], status_code=303)
async def revoke_subject(
    request: Request[Any, Any, Any],
    subject_id: FromPath[str],
    subject_service: NamedDependency[SubjectService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    """Revoke the subject's eligibility (as ``POST /v1/subjects/{id}/revocations``)."""
    client = principal(request)
    _require(client, "subjects:revoke")
    form = await request.form()
    _confirmed(form)
    reason = free_text(form, "reason", required=False)
    revoked = await subject_service.revoke(
        client, subject_id, reason_given=reason is not None, now=now
    )
    return Redirect(f"{BASE}/subjects/{revoked.id}?done=subject-revoked", status_code=303)


HANDLERS = [search, subject_page, revoke_token, revoke_subject]
