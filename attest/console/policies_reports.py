"""What the policy and audience pages show, composed from the policy and audit services.

Which version governed which audience, and when, is computed (purely, by
:mod:`attest.policy.history`) from the versions' publication and ``effective_at`` times and
from the ``audience.updated`` events of the audit trail, which every binding records in
the transaction that makes it. Those are platform events: every tenant's auditors read
them (``include_platform``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from attest.audit.models import AuditEvent, AuditQuery
from attest.audit.service import AuditService
from attest.errors import NotFound, UnprocessableInput
from attest.policy.diff import DocumentDiff, diff_documents
from attest.policy.document import PolicyDocumentError, effective_at
from attest.policy.history import Binding, Governed, VersionSpan, bindings, governed, version_spans
from attest.policy.models import Audience, PolicyVersion
from attest.policy.service import PolicyService
from attest.principal import Client

__all__ = [
    "AudiencePage",
    "PolicyPage",
    "VersionRow",
    "audience_page",
    "policy_list",
    "policy_page",
]

#: Audit events read per page while collecting audience bindings.
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: PolicyVersion
    effective_at: datetime | None
    span: VersionSpan | None
    #: Where this version decided: per audience, over which interval.
    governed: list[Governed]


@dataclass(frozen=True, slots=True)
class PolicyPage:
    name: str
    versions: list[VersionRow]
    audiences_now: list[Audience]
    old: int | None
    new: int | None
    diff: DocumentDiff | None


@dataclass(frozen=True, slots=True)
class AudiencePage:
    audience: Audience
    bindings: list[Binding]
    governed: list[Governed]


async def _binding_events(client: Client, audit_service: AuditService) -> list[AuditEvent]:
    """Every ``audience.updated`` event in the client's view (platform events included)."""
    found: list[AuditEvent] = []
    cursor = 0
    while True:
        page = await audit_service.events(
            AuditQuery(
                tenant=None if client.is_admin else client.tenant,
                event_type="audience.updated",
                from_index=cursor,
                limit=_PAGE,
                include_platform=True,
            )
        )
        found.extend(page)
        last = page[-1].log_index if page else None
        if len(page) < _PAGE or last is None:
            return found
        cursor = last + 1


def _bindings(events: list[AuditEvent]) -> list[Binding]:
    return bindings(
        (str(e.data.get("audience")), str(e.data.get("policy")), e.occurred_at)
        for e in events
        if isinstance(e.data.get("audience"), str) and isinstance(e.data.get("policy"), str)
    )


def _effective(version: PolicyVersion) -> datetime | None:
    try:
        return effective_at(version.document)
    except PolicyDocumentError:
        return None  # published documents were validated; an old one without it: at once


def _spans(name: str, versions: list[PolicyVersion]) -> list[VersionSpan]:
    return version_spans(name, ((v.version, v.created_at, _effective(v)) for v in versions))


async def policy_list(policy_service: PolicyService) -> tuple[list[PolicyVersion], list[Audience]]:
    """Every policy's latest version, and every audience with the policy it is bound to."""
    return await policy_service.policies(), await policy_service.audiences()


async def policy_page(
    name: str,
    *,
    client: Client,
    old: int | None,
    new: int | None,
    policy_service: PolicyService,
    audit_service: AuditService,
) -> PolicyPage:
    """A policy's versions, where and when each governed, and the diff of two of them
    (by default the latest against the one before it)."""
    versions = await policy_service.versions(name)
    by_number = {v.version: v for v in versions}
    if old is None and new is None and len(versions) > 1:
        old, new = versions[-2].version, versions[-1].version
    diff = None
    if old is not None or new is not None:
        if old is None or new is None:
            raise UnprocessableInput("Choose two versions to compare.")
        if old not in by_number or new not in by_number:
            raise NotFound(f"No such version of policy '{name}'.")
        diff = diff_documents(
            by_number[old].document,
            by_number[new].document,
            old_label=f"version {old}",
            new_label=f"version {new}",
        )
    spans = _spans(name, versions)
    bound = [b for b in _bindings(await _binding_events(client, audit_service)) if b.policy == name]
    decided = governed({name: spans}, bound)
    span_of = {s.version: s for s in spans}
    rows = [
        VersionRow(
            v,
            _effective(v),
            span_of.get(v.version),
            [g for g in decided if g.version == v.version],
        )
        for v in reversed(versions)
    ]
    audiences = [a for a in await policy_service.audiences() if a.policy_name == name]
    return PolicyPage(name, rows, audiences, old, new, diff)


async def audience_page(
    audience: str,
    *,
    client: Client,
    policy_service: PolicyService,
    audit_service: AuditService,
) -> AudiencePage:
    """An audience now, its bindings over time, and the versions that decided for it."""
    current = await policy_service.audience(audience)
    bound = [
        b for b in _bindings(await _binding_events(client, audit_service)) if b.audience == audience
    ]
    spans: dict[str, list[VersionSpan]] = {}
    for policy in {b.policy for b in bound}:
        try:
            spans[policy] = _spans(policy, await policy_service.versions(policy))
        except NotFound:
            spans[policy] = []
    return AudiencePage(current, bound, governed(spans, bound))
