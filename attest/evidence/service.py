"""Evidence use cases: submit (one subject or a batch), approve (four-eyes), reject,
withdraw, and a subject's profile (its evidence and the attributes that count now).

Every change locks the subject row FOR UPDATE before it touches evidence, and records its
audit event in the same transaction: a token decision in flight for the subject (which
holds the row FOR SHARE) finishes before the change, and every later decision sees it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from attest.audit import service as audit
from attest.clients import service as clients
from attest.clients.models import Client
from attest.db import Conn
from attest.errors import Conflict, FourEyesViolation, NotFound, UnprocessableInput
from attest.evidence import repository
from attest.evidence.batch import BatchItemResult, BatchRequest, PlannedItem, plan_batch, refs_of
from attest.evidence.idp import (
    AssertionResult,
    IdpReason,
    TrustedProvider,
    check_assertion,
    header_reasons,
    read_header,
)
from attest.evidence.intake import (
    Assessed,
    SubmitEvidence,
    assess_submission,
    audit_data,
    document_in_use_outcome,
    idp_outcome,
    precheck_idp,
)
from attest.evidence.models import Evidence, NewEvidence
from attest.evidence.rules import (
    approval_reverify_at,
    check_four_eyes,
    current_attributes,
    document_conflicts,
)
from attest.ids import parse_uuid
from attest.settings import Settings
from attest.status import service as status_lists
from attest.subjects import service as subjects
from attest.subjects.models import Subject
from attest.verify import InvalidToken

__all__ = ["EvidenceService", "Profile", "verified_for_subject"]

Providers = Mapping[tuple[str, str], TrustedProvider]


@dataclass(frozen=True, slots=True)
class Profile:
    """A subject with all its evidence and the attribute values that count now."""

    subject: Subject
    evidence: list[Evidence]
    attributes: dict[str, list[dict[str, Any]]]


async def verified_for_subject(conn: Conn, subject_id: uuid.UUID) -> list[Evidence]:
    """The subject's verified evidence (for a decision, inside the caller's transaction)."""
    return await repository.verified_for_subject(conn, subject_id)


def _new(subject_id: uuid.UUID, body: SubmitEvidence, assessed: Assessed) -> NewEvidence:
    outcome = assessed.outcome
    return NewEvidence(
        id=uuid.uuid4(),
        subject_id=subject_id,
        type=body.type,
        document_type=body.document_type,
        attributes=assessed.attributes,
        assurance=assessed.assurance,
        status=outcome.status,
        reasons=outcome.reasons,
        verified_at=outcome.verified_at,
        reverify_at=outcome.reverify_at,
        document_hash=assessed.document_hash,
    )


async def _settle_document_reuse(
    conn: Conn, tenant: str, claims: list[tuple[uuid.UUID, Assessed]]
) -> list[Assessed]:
    """Apply the document-reuse rule (rules.document_conflicts) under the documents'
    advisory locks: a document already backing another subject's evidence is rejected."""
    hashes = [a.document_hash for _, a in claims if a.document_hash is not None]
    await repository.lock_documents(conn, tenant, hashes)
    holders = await repository.document_holders(conn, tenant, hashes)
    conflicts = document_conflicts([(s, a.document_hash) for s, a in claims], holders)
    return [
        document_in_use_outcome() if conflict else assessed
        for (_, assessed), conflict in zip(claims, conflicts, strict=True)
    ]


class EvidenceService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        *,
        pairwise_key: bytes,
        providers: Providers,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._pairwise_key = pairwise_key
        self._providers = providers

    # -- submission ---------------------------------------------------------------------

    async def submit(
        self, client: Client, subject_id: str, data: SubmitEvidence, now: datetime
    ) -> Evidence:
        checked: AssertionResult | None = None
        if data.type == "idp_assertion":
            async with self._pool.acquire() as conn:
                found = await subjects.resolve(conn, client, subject_id=subject_id)
            # Outside any transaction: the provider's key set may be fetched over the network.
            checked = await self._check_assertion(data, found.tenant, now)
        async with self._pool.acquire() as conn, conn.transaction():
            subject = await subjects.resolve(conn, client, subject_id=subject_id, lock="update")
            if checked is not None:
                assessed = await self._consume_assertion(conn, checked, subject.tenant, now)
            else:
                assessed = assess_submission(
                    data,
                    tenant=subject.tenant,
                    now=now,
                    settings=self._settings,
                    pairwise_key=self._pairwise_key,
                )
            [assessed] = await _settle_document_reuse(
                conn, subject.tenant, [(subject.id, assessed)]
            )
            stored = await repository.insert_evidence(
                conn,
                _new(subject.id, data, assessed),
                tenant=subject.tenant,
                submitted_by=client.id,
                now=now,
            )
            # Attribute names only: the values (nationalities) are personal data.
            await audit.record(
                conn,
                f"evidence.{stored.status}",
                occurred_at=now,
                actor=client.id,
                tenant=subject.tenant,
                subject_id=subject.id,
                data=audit_data(str(stored.id), data, assessed),
            )
        return stored

    async def _check_assertion(
        self, data: SubmitEvidence, tenant: str, now: datetime
    ) -> AssertionResult:
        """Check an identity provider's assertion for a subject of ``tenant``."""
        token = precheck_idp(data)
        parsed = read_header(token)
        if parsed is None:
            raise UnprocessableInput(
                "The evidence is malformed.",
                errors=[{"field": "$.assertion", "message": "not a JWS in compact serialisation"}],
            )
        header, unverified = parsed
        issuer = unverified.get("iss")
        provider = self._providers.get((tenant, issuer)) if isinstance(issuer, str) else None
        if provider is None:
            return AssertionResult(
                [
                    IdpReason(
                        "untrusted_issuer", "The tenant trusts no identity provider by this iss."
                    )
                ]
            )
        problem = header_reasons(header, provider.typ)
        if problem is not None:
            return AssertionResult([problem])
        try:
            # A remote key set may be fetched: off the event loop.
            key = await asyncio.to_thread(provider.keys.get, header["kid"], now.timestamp())
        except InvalidToken as exc:
            return AssertionResult(
                [
                    IdpReason(
                        "key_source_unavailable",
                        f"The provider's keys are unavailable ({exc.code}).",
                    )
                ]
            )
        return check_assertion(
            header, token, provider, key, audience=self._settings.issuer, now=now
        )

    async def _consume_assertion(
        self, conn: Conn, result: AssertionResult, tenant: str, now: datetime
    ) -> Assessed:
        """Record the ``jti`` of a checked assertion (in the evidence's transaction), so that
        a second use is rejected as a replay; then decide the outcome."""
        if result.issuer is not None and result.jti is not None and result.expires_at is not None:
            fresh = await repository.use_assertion(
                conn, result.issuer, result.jti, tenant, now, result.expires_at
            )
            if not fresh:
                result = AssertionResult(
                    [IdpReason("replayed", "This assertion (iss and jti) was used before.")]
                )
        validity = timedelta(days=self._settings.validity_days_for("idp_assertion"))
        return idp_outcome(result, now=now, validity=validity)

    # -- review ---------------------------------------------------------------------------

    async def _locked(self, conn: Conn, client: Client, evidence_id: str) -> Evidence:
        """The evidence, locked with its subject (subject first: the order issuance uses)."""
        ident = parse_uuid(evidence_id, "evidence")
        found = await repository.get_evidence(conn, ident)
        if found is None or not client.can_see(found.tenant):
            raise NotFound("No evidence with this id.")
        await subjects.lock(conn, found.subject_id)
        locked = await repository.get_evidence(conn, ident, for_update=True)
        assert locked is not None  # noqa: S101 - evidence is never deleted
        return locked

    async def approve(
        self, client: Client, evidence_id: str, *, comment: str | None, now: datetime
    ) -> Evidence:
        """A second, different reviewer approves evidence awaiting approval."""
        async with self._pool.acquire() as conn, conn.transaction():
            found = await self._locked(conn, client, evidence_id)
            if found.status != "pending_approval":
                raise Conflict(f"The evidence is '{found.status}', not awaiting approval.")
            related = await clients.related(conn, found.submitted_by, client.id)
            check_four_eyes(found, client.id, related=related)
            validity = timedelta(days=self._settings.validity_days_for(found.type))
            reverify_at = approval_reverify_at(found, now, validity)
            updated = await repository.approve(conn, found.id, client.id, now, reverify_at, comment)
            if updated is None:
                raise Conflict("The evidence changed while it was being approved.")
            # The comment is free text (it may hold personal data): the event says only
            # whether one was given; the text stays on the evidence.
            await audit.record(
                conn,
                "evidence.approved",
                occurred_at=now,
                actor=client.id,
                tenant=found.tenant,
                subject_id=found.subject_id,
                data={
                    "evidence_id": str(found.id),
                    "assurance": found.assurance,
                    "comment_given": comment is not None,
                },
            )
        return updated

    async def reject(
        self, client: Client, evidence_id: str, *, reason: str | None, now: datetime
    ) -> Evidence:
        """A reviewer rejects evidence awaiting approval; it never counts."""
        return await self._close(
            client,
            evidence_id,
            reason,
            now,
            status="rejected",
            from_statuses=("pending_approval",),
            event="evidence.rejected",
        )

    async def withdraw(
        self, client: Client, evidence_id: str, *, reason: str | None, now: datetime
    ) -> Evidence:
        """A reviewer withdraws verified (or pending) evidence; from now on it no longer
        counts."""
        return await self._close(
            client,
            evidence_id,
            reason,
            now,
            status="withdrawn",
            from_statuses=("verified", "pending_approval"),
            event="evidence.withdrawn",
        )

    async def _close(
        self,
        client: Client,
        evidence_id: str,
        reason: str | None,
        now: datetime,
        *,
        status: str,
        from_statuses: tuple[str, ...],
        event: str,
    ) -> Evidence:
        async with self._pool.acquire() as conn, conn.transaction():
            found = await self._locked(conn, client, evidence_id)
            if found.status not in from_statuses:
                raise Conflict(
                    f"The evidence is '{found.status}'; only {' or '.join(from_statuses)} "
                    f"evidence can be {status}."
                )
            note = f"{status}_by_reviewer" + (f": {reason}" if reason else "")
            updated = await repository.close(
                conn,
                found.id,
                status=status,
                closed_by=client.id,
                now=now,
                reasons=[note],
                from_statuses=from_statuses,
            )
            if updated is None:
                raise Conflict("The evidence changed while it was being closed.")
            # Tokens that relied on this evidence become INVALID, with the event.
            tokens = await status_lists.mark(conn, "evidence", found.id, now)
            # The reviewer's free text may hold personal data: the audit event says only
            # whether one was given.
            await audit.record(
                conn,
                event,
                occurred_at=now,
                actor=client.id,
                tenant=found.tenant,
                subject_id=found.subject_id,
                data={
                    "evidence_id": str(found.id),
                    "type": found.type,
                    "previous_status": found.status,
                    "by_reviewer": True,
                    "reason_given": bool(reason),
                    "tokens_revoked": tokens,
                },
            )
        return updated

    # -- reads ----------------------------------------------------------------------------

    async def reviewable(self, client: Client, *, limit: int = 200) -> list[Evidence]:
        """The reviewer queue: evidence awaiting approval in the client's tenant (admin:
        every tenant), oldest first, that ``client`` may approve under the rule
        :meth:`approve` applies (check_four_eyes): never its own submissions, nor those of a
        client related to it. Of the ``limit`` oldest pending items not its own."""
        tenant = None if client.is_admin else client.tenant
        async with self._pool.acquire() as conn:
            pending = await repository.pending_for_review(conn, tenant, client.id, limit)
            allowed: dict[uuid.UUID, bool] = {}
            for item in pending:
                if item.submitted_by in allowed:
                    continue
                related = await clients.related(conn, item.submitted_by, client.id)
                try:
                    check_four_eyes(item, client.id, related=related)
                except FourEyesViolation:
                    allowed[item.submitted_by] = False
                else:
                    allowed[item.submitted_by] = True
        return [item for item in pending if allowed[item.submitted_by]]

    async def profile(self, client: Client, subject_id: str, now: datetime) -> Profile:
        async with self._pool.acquire() as conn:
            subject = await subjects.resolve(conn, client, subject_id=subject_id)
            evidence = await repository.list_for_subject(conn, subject.id)
        return Profile(subject, evidence, current_attributes(evidence, now))

    # -- batch onboarding -------------------------------------------------------------------

    async def onboard_batch(
        self, client: Client, request: BatchRequest, now: datetime
    ) -> list[BatchItemResult]:
        """Onboard up to ``batch_max_items`` subjects, each with optional evidence; one
        result per item (created, existing or invalid, with errors)."""
        limit = self._settings.batch_max_items
        if len(request.items) > limit:
            raise UnprocessableInput(
                f"A batch holds at most {limit} items.",
                errors=[{"field": "$.items", "message": f"at most {limit} items"}],
            )
        tenant = subjects.target_tenant(client, request.tenant)
        async with self._pool.acquire() as conn, conn.transaction():
            known = await subjects.ids_by_external_refs(conn, tenant, refs_of(request.items))
            planned = plan_batch(
                request.items,
                tenant=tenant,
                now=now,
                settings=self._settings,
                pairwise_key=self._pairwise_key,
                may_submit_evidence="evidence:write" in client.scopes,
                existing=frozenset(known),
            )
            refs = [str(item.external_ref) for item in planned if item.valid]
            created = await subjects.create_many(
                conn, tenant, [ref for ref in refs if ref not in known], now
            )
            # A subject onboarded by a concurrent request since the lookup is "existing".
            missing = [ref for ref in refs if ref not in known and ref not in created]
            existing = known | await subjects.ids_by_external_refs(conn, tenant, missing)
            submitted = await self._submit_for_created(
                conn, client.id, tenant, now, planned, created
            )
        results = []
        for item in planned:
            ref = str(item.external_ref)
            if not item.valid:
                status, ident = "invalid", None
            elif ref in created:
                status, ident = "created", created[ref]
            else:
                status, ident = "existing", existing.get(ref)
            results.append(BatchItemResult(item, status, ident, submitted.get(item.index, [])))
        return results

    async def _submit_for_created(
        self,
        conn: Conn,
        actor: uuid.UUID,
        tenant: str,
        now: datetime,
        planned: list[PlannedItem],
        created: dict[str, uuid.UUID],
    ) -> dict[int, list[NewEvidence]]:
        """Evidence and audit events for the subjects this batch created, in item order.

        Subjects that already existed get nothing: a re-sent batch changes nothing.
        """
        fresh = [item for item in planned if item.valid and str(item.external_ref) in created]
        claims = [
            (created[str(item.external_ref)], assessed)
            for item in fresh
            for _, assessed in item.evidence
        ]
        settled = iter(await _settle_document_reuse(conn, tenant, claims))
        events: list[dict[str, object]] = []
        records: list[NewEvidence] = []
        submitted: dict[int, list[NewEvidence]] = {}
        for item in fresh:
            subject_id = created[str(item.external_ref)]
            events.append({"type": "subject.onboarded", "subject_id": str(subject_id), "data": {}})
            for body, _ in item.evidence:
                assessed = next(settled)
                new = _new(subject_id, body, assessed)
                records.append(new)
                events.append(
                    {
                        "type": f"evidence.{new.status}",
                        "subject_id": str(subject_id),
                        "data": audit_data(str(new.id), body, assessed),
                    }
                )
                submitted.setdefault(item.index, []).append(new)
        await repository.insert_many(conn, records, tenant=tenant, submitted_by=actor, now=now)
        await audit.record_many(conn, events, occurred_at=now, actor=actor, tenant=tenant)
        return submitted
