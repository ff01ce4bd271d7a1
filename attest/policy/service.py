"""Policies and audiences: read, publish a version, dry-run a decision, bind audiences.

``decide`` is the one place where a subject's eligibility is decided, for a token and for
a dry run alike: the latest version of the policy, evaluated (purely) on the subject's
verified evidence, read on the caller's connection. Issuance calls it inside its recording
transaction after :func:`audience_for_decision` has taken the audience's lock shared;
publishing a version of a policy, or rebinding an audience, takes that lock exclusive, so
a decision in flight finishes first and every later one sees the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from attest.audit import service as audit
from attest.clients import service as clients
from attest.clients.models import Client
from attest.db import Conn
from attest.errors import Conflict, Forbidden, NotFound, UnprocessableInput
from attest.evidence import service as evidence
from attest.evidence.models import Evidence
from attest.keys.lifecycle import KeyPolicy, check_token_lifetime
from attest.policy import repository
from attest.policy.document import (
    PolicyDocumentError,
    effective_at,
    policy_digest,
    validate_policy_document,
)
from attest.policy.engine import Validated, evaluate, validated
from attest.policy.facts import facts_from_evidence
from attest.policy.impact import Tally, age_limits, tally
from attest.policy.models import Audience, Eligibility, PolicyVersion, VersionSummary
from attest.settings import Settings
from attest.status import service as status
from attest.status.models import Status
from attest.subjects import service as subjects
from attest.subjects.models import Subject

__all__ = [
    "DecisionContext",
    "Impact",
    "PolicyService",
    "audience_for_decision",
    "decide",
    "decide_under",
    "decision_contexts",
    "decision_locks",
    "eligibility_on",
]


@dataclass(frozen=True, slots=True)
class Impact:
    """A draft's effect on the subjects in view, the same for each governed audience."""

    policy: str
    current_version: int | None
    draft_digest: str
    audiences: list[str]
    counts: Tally


async def decide(conn: Conn, subject: Subject, policy_name: str, now: datetime) -> Eligibility:
    """Evaluate the latest version of a policy for a subject (pure evaluation on data read
    on ``conn``); the evidence ids are those current at ``now``."""
    # The version in effect at now: a scheduled version governs from its effective_at.
    policy = await repository.governing_policy(conn, policy_name, now)
    return await decide_under(conn, subject, policy, policy_name, now)


#: Policy documents by digest. A version is immutable and its digest is the SHA-256 of its
#: canonical form, so an entry can never be stale: kept for the life of the process.
_DOCUMENTS: dict[str, dict[str, Any]] = {}
_DOCUMENTS_MAX = 1024


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What a decision for an audience needs, read inside the recording transaction after
    the audience's lock was taken shared: the audience and the policy version governing it."""

    audience: Audience
    policy: PolicyVersion | None


def decision_locks(audiences: list[str]) -> tuple[list[str], int]:
    """The audiences' advisory locks (keys in name order, seed), for the caller to take
    shared until the end of its transaction (see the module docstring) in a statement of
    its own, before :func:`decision_contexts` reads."""
    keys = [repository.audience_lock_key(a) for a in sorted(set(audiences))]
    return keys, repository.AUDIENCE_LOCK_SEED


async def decision_contexts(
    conn: Conn, found: list[tuple[Audience, VersionSummary | None] | None]
) -> list[DecisionContext | None]:
    """The decision contexts of audiences read with their policy versions (number and
    digest) after the :func:`decision_locks` were taken (a batch reads them with
    ``repository.decision_contexts_part`` in its read statement); the documents come from
    the cache of immutable versions (one more round trip for each version not cached yet).
    None stays None: an audience that is not registered."""
    contexts: list[DecisionContext | None] = []
    for bound_version in found:
        if bound_version is None:
            contexts.append(None)
            continue
        bound, version = bound_version
        if version is None:
            contexts.append(DecisionContext(bound, None))
            continue
        document = _DOCUMENTS.get(version.digest)
        if document is None:
            document = await repository.policy_document(
                conn, bound.policy_name, version.version, version.digest
            )
            if len(_DOCUMENTS) >= _DOCUMENTS_MAX:
                _DOCUMENTS.clear()
            _DOCUMENTS[version.digest] = document
        policy = PolicyVersion(
            bound.policy_name, version.version, document, version.digest, version.created_at
        )
        contexts.append(DecisionContext(bound, policy))
    return contexts


async def decide_under(
    conn: Conn, subject: Subject, policy: PolicyVersion | None, policy_name: str, now: datetime
) -> Eligibility:
    """Evaluate ``policy`` (read in the caller's transaction) for a subject on its verified
    evidence read on ``conn``."""
    if policy is None:
        raise UnprocessableInput(f"The policy '{policy_name}' does not exist.")
    verified = await evidence.verified_for_subject(conn, subject.id)
    return eligibility_on(policy, subject, verified, now)


#: Validated documents by the digest of their version (immutable, as _DOCUMENTS): each
#: decision evaluates one, and canonicalising it for its digest every time would repeat
#: the same work.
_CHECKED: dict[str, Validated] = {}


def eligibility_on(
    policy: PolicyVersion, subject: Subject, verified: list[Evidence], now: datetime
) -> Eligibility:
    """The decision of ``policy`` for a subject on its verified evidence (pure)."""
    checked = _CHECKED.get(policy.digest)
    if checked is None:
        checked = validated(policy.document)
        if len(_CHECKED) >= _DOCUMENTS_MAX:
            _CHECKED.clear()
        _CHECKED[policy.digest] = checked
    decision = evaluate(checked, facts_from_evidence(verified), now=now, revoked=subject.revoked)
    current = [e.id for e in verified if e.reverify_at is not None and e.reverify_at > now]
    return Eligibility(decision, current)


async def audience_for_decision(conn: Conn, audience: str) -> Audience | None:
    """The audience, read after taking its lock shared until the end of the caller's
    transaction (see the module docstring)."""
    await repository.lock_audience(conn, audience, "share")
    return await repository.get_audience(conn, audience)


class PolicyService:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._key_policy = KeyPolicy.from_settings(settings)

    async def latest(self, name: str) -> tuple[PolicyVersion, list[VersionSummary]]:
        async with self._pool.acquire() as conn:
            latest = await repository.latest_policy(conn, name)
            if latest is None:
                raise NotFound(f"No policy named '{name}'.")
            return latest, await repository.list_versions(conn, name)

    async def version(self, name: str, version: int) -> PolicyVersion:
        found = None
        # Versions are PostgreSQL integers: a larger number cannot exist (and would not bind).
        if 1 <= version <= 2**31 - 1:
            async with self._pool.acquire() as conn:
                found = await repository.get_policy(conn, name, version)
        if found is None:
            raise NotFound(f"No version {version} of policy '{name}'.")
        return found

    async def publish(
        self, client: Client, name: str, document: dict[str, Any], now: datetime
    ) -> PolicyVersion:
        """Publish the next version. The document's version, if given, must be the next."""
        clients.require_admin(client, "Publishing a policy")
        document = dict(document)
        if document.get("name", name) != name:
            raise UnprocessableInput(
                "The document's name differs from the path.",
                errors=[{"field": "$.name", "message": f"must be '{name}'"}],
            )
        document["name"] = name
        async with self._pool.acquire() as conn, conn.transaction():
            # Decisions in flight under this policy finish first; later ones see the version.
            governed = await repository.audiences_of_policy(conn, name)
            for audience in governed:
                await repository.lock_audience(conn, audience, "exclusive")
            latest = await repository.latest_policy(conn, name)
            next_version = 1 if latest is None else latest.version + 1
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
            starts = effective_at(document)
            if starts is not None and starts <= now:
                raise UnprocessableInput(
                    "A scheduled version must take effect in the future.",
                    errors=[{"field": "$.effective_at", "message": "must be in the future"}],
                )
            published = await repository.insert_policy(conn, document, digest, client.id, starts)
            if published is None:
                raise Conflict("Another version was published at the same time; retry.")
            await audit.record(
                conn,
                "policy.published",
                occurred_at=now,
                actor=client.id,
                tenant=None,
                data={
                    "policy": name,
                    "version": next_version,
                    "digest": digest,
                    "effective_at": starts.isoformat() if starts else None,
                },
            )
            # Outstanding tokens of the audiences it governs are decided again (one instance,
            # within one status-list ttl) and revoked where no longer eligible.
            await status.schedule_reevaluation(
                conn, governed, f"policy {name} v{next_version}", now, not_before=starts
            )
        return published

    async def evaluate(
        self,
        client: Client,
        name: str,
        *,
        subject_id: str | None,
        external_ref: str | None,
        tenant: str | None,
        now: datetime,
    ) -> Eligibility:
        """Dry run: the decision and every reason; nothing is issued or recorded."""
        if (subject_id is None) == (external_ref is None):
            raise UnprocessableInput(
                "Name the subject by exactly one of subject_id and external_ref."
            )
        async with self._pool.acquire() as conn:
            if await repository.latest_policy(conn, name) is None:
                raise NotFound(f"No policy named '{name}'.")
            subject = await subjects.resolve(
                conn, client, subject_id=subject_id, external_ref=external_ref, tenant=tenant
            )
            return await decide(conn, subject, name, now)

    async def impact(
        self, client: Client, name: str, draft: dict[str, Any], now: datetime
    ) -> Impact:
        """Preview a draft document against every subject in the caller's view (admin: every
        tenant) for each audience the policy governs; nothing is published or recorded."""
        document = dict(draft)
        if document.get("name", name) != name:
            raise UnprocessableInput(
                "The document's name differs from the path.",
                errors=[{"field": "$.name", "message": f"must be '{name}'"}],
            )
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            latest = await repository.latest_policy(conn, name)
            if latest is None:
                raise NotFound(f"No policy named '{name}'.")
            document["name"] = name
            document["version"] = latest.version + 1
            try:
                document = validate_policy_document(document)
            except PolicyDocumentError as exc:
                raise UnprocessableInput(
                    "The policy document is invalid.",
                    errors=[{"field": exc.path, "message": exc.message}],
                ) from None
            current = await repository.governing_policy(conn, name, now)
            current_doc = current.document if current is not None else None
            limits = age_limits(current_doc, document)
            tenant = None if client.is_admin else client.tenant
            groups = await repository.fact_signatures(conn, tenant, now, limits)
            audiences = await repository.audiences_of_policy(conn, name)
        counts = tally(groups, current_doc, document, now=now, limits=limits)
        return Impact(
            policy=name,
            current_version=current.version if current is not None else None,
            draft_digest=policy_digest(document),
            audiences=audiences,
            counts=counts,
        )

    async def policies(self) -> list[PolicyVersion]:
        """Every policy's latest version, by name."""
        return await repository.list_policies(self._pool)

    async def versions(self, name: str) -> list[PolicyVersion]:
        """Every version of a policy with its document, oldest first (404 if none)."""
        found = await repository.policy_versions(self._pool, name)
        if not found:
            raise NotFound(f"No policy named '{name}'.")
        return found

    async def audience(self, audience: str) -> Audience:
        async with self._pool.acquire() as conn:
            found = await repository.get_audience(conn, audience)
        if found is None:
            raise NotFound(f"The audience '{audience}' is not registered.")
        return found

    async def audiences(self) -> list[Audience]:
        return await repository.list_audiences(self._pool)

    async def list_audiences(self) -> list[dict[str, Any]]:
        """Discovery's view of the audiences (keys.service.AudienceDirectory)."""
        return [
            {
                "audience": a.audience,
                "policy": a.policy_name,
                "token_lifetime": a.token_lifetime,
                "binding_required": a.binding_required,
            }
            for a in await self.audiences()
        ]

    async def bind_audience(
        self,
        client: Client,
        audience: str,
        *,
        policy: str,
        token_lifetime: int | None,
        binding_required: bool,
        now: datetime,
        max_holder_keys: int | None = None,
    ) -> tuple[Audience, bool]:
        """Register or rebind an audience; True when it was created."""
        clients.require_admin(client, "Binding an audience")
        if not 1 <= len(audience) <= 256:
            raise UnprocessableInput("An audience name has 1 to 256 characters.")
        async with self._pool.acquire() as conn, conn.transaction():
            await repository.lock_audience(conn, audience, "exclusive")
            if await repository.latest_policy(conn, policy) is None:
                raise UnprocessableInput(
                    f"No policy named '{policy}'.",
                    errors=[{"field": "$.policy", "message": "unknown policy"}],
                )
            existing = await repository.get_audience(conn, audience)
            lifetime = token_lifetime or self._settings.default_token_lifetime
            # A retired key must outlive every token it signed (DESIGN.md, "Keys").
            check_token_lifetime(lifetime, self._key_policy)
            bound = await repository.upsert_audience(
                conn, audience, policy, lifetime, binding_required, max_holder_keys
            )
            if existing is not None and existing.policy_name != policy:
                await status.schedule_reevaluation(
                    conn, [audience], f"audience rebound to {policy}", now
                )
            await audit.record(
                conn,
                "audience.updated",
                occurred_at=now,
                actor=client.id,
                tenant=None,
                data={
                    "audience": audience,
                    "policy": policy,
                    "token_lifetime": lifetime,
                    "binding_required": binding_required,
                    "max_holder_keys": max_holder_keys,
                    "created": existing is None,
                },
            )
        return bound, existing is None

    async def suspend(
        self, client: Client, audience: str, *, reason_given: bool, now: datetime
    ) -> tuple[Audience, int]:
        """Suspend an audience at once: no new tokens (a decision in flight finishes first:
        the audience lock), and its outstanding tokens SUSPENDED in their status lists, with
        the audit event. The number of tokens suspended."""
        _platform(client, "Suspending an audience")
        return await self._set_suspension(
            client, audience, now, suspend=True, data={"reason_given": reason_given}
        )

    async def resume(self, client: Client, audience: str, *, now: datetime) -> tuple[Audience, int]:
        """Lift a suspension: tokens SUSPENDED by it are VALID again, unless something else
        revoked them meanwhile (INVALID is final). The number of tokens made VALID."""
        _platform(client, "Lifting a suspension")
        return await self._set_suspension(client, audience, now, suspend=False, data={})

    async def _set_suspension(
        self,
        client: Client,
        audience: str,
        now: datetime,
        *,
        suspend: bool,
        data: dict[str, Any],
    ) -> tuple[Audience, int]:
        async with self._pool.acquire() as conn, conn.transaction():
            await repository.lock_audience(conn, audience, "exclusive")
            found = await repository.get_audience(conn, audience)
            if found is None:
                raise NotFound(f"The audience '{audience}' is not registered.")
            if found.suspended == suspend:
                return found, 0  # already so: nothing changes, nothing is recorded
            changed = await repository.set_suspended(conn, audience, now if suspend else None)
            assert changed is not None  # noqa: S101 - locked and read above
            target = Status.SUSPENDED if suspend else Status.VALID
            tokens = await status.mark(conn, "audience", audience, now, target)
            counted = "tokens_suspended" if suspend else "tokens_restored"
            await audit.record(
                conn,
                "audience.suspended" if suspend else "audience.resumed",
                occurred_at=now,
                actor=client.id,
                tenant=None,
                data={"audience": audience, **data, counted: tokens},
            )
        return changed, tokens


def _platform(client: Client, what: str) -> None:
    """Platform configuration (every tenant's decisions depend on it) needs an admin."""
    if not client.is_admin:
        raise Forbidden(f"{what} is platform configuration: it needs an admin client.")
