"""Token issuance, in one use case: decide, sign, record, or deny and record.

The decision is made on data read inside the transaction that records the token: the
requests that arrive together are decided and recorded in one transaction (group commit,
attest/tokens/batcher.py), by attest/tokens/issuance.py, which takes the audience and
subject locks before it reads what the decision rests on. So an eligibility change that
commits first is always seen, and one that arrives while a decision is in flight waits for
it to commit: no token is recorded after a revocation, withdrawal or policy change of the
subject it was decided for.
"""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from attest.audit import service as audit
from attest.clients.models import Client
from attest.db import Conn
from attest.errors import InvalidInput, NotFound, ServiceUnavailable
from attest.evidence.service import EvidenceService, Profile
from attest.keys.keyring import Keyring
from attest.metrics import Metrics
from attest.policy import service as policies
from attest.policy.models import Audience
from attest.settings import Settings
from attest.status import service as status
from attest.subjects import service as subjects
from attest.tokens import repository
from attest.tokens.batch import Ask, BatchSigner, Denied
from attest.tokens.batcher import CONNECTION_ERRORS, Batcher, CommitUnknown, Failed, NotCommitted
from attest.tokens.claims import holder_thumbprint
from attest.tokens.issuance import SHARING_WINDOW, Issuance
from attest.tokens.models import (
    Attestation,
    HolderKey,
    IssuedToken,
    IssueRequest,
    Revoked,
)

__all__ = ["IssuanceOutcomeUnknown", "TokenService"]

log = logging.getLogger(__name__)


class IssuanceOutcomeUnknown(ServiceUnavailable):
    """The token's transaction was sent to commit and no answer came back, and no other
    connection could tell whether it landed: the token may or may not be recorded. The
    problem names the ``jti``: ``GET /v1/audit/attestations/{jti}`` tells (404: not
    issued). The token itself is never returned unless its record is known to exist."""

    code = "outcome-unknown"
    title = "Issuance outcome unknown"


def _outcome_unknown(result: object) -> ServiceUnavailable:
    if isinstance(result, IssuedToken):
        return IssuanceOutcomeUnknown(
            "The database connection was lost while the token was being committed; it may "
            "or may not be recorded. Look it up by jti (GET /v1/audit/attestations/{jti}) "
            "before asking again.",
            jti=result.jti,
        )
    return IssuanceOutcomeUnknown(
        "The database connection was lost while this request's decision was being "
        "committed; whether the denial was recorded is unknown."
    )


#: A batch that did not commit, or could not be recorded at all: no token.
_NOT_RECORDED: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    NotCommitted,
    *CONNECTION_ERRORS,
)

#: How long the check of a batch whose COMMIT went unanswered may take before its requests
#: are told the outcome is unknown (seconds).
LANDED_CHECK_SECONDS = 2.0


class TokenService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        *,
        keyring: Keyring,
        pairwise_key: bytes,
        metrics: Metrics,
        evidence: EvidenceService | None = None,
    ) -> None:
        self._pool = pool
        self._evidence = evidence
        self._metrics = metrics
        issuance = Issuance(settings, pairwise_key=pairwise_key, metrics=metrics)
        self._batcher: Batcher[BatchSigner, Ask, IssuedToken | Denied] = Batcher(
            pool,
            prepare=lambda conn: BatchSigner(keyring, conn),
            record=issuance.record,
            landed=self._landed,
            max_batch=settings.issue_batch_max,
            window_ms=settings.issue_batch_window_ms,
            workers=settings.issue_batch_workers,
            observe=self._observe,
        )

    async def issue(self, client: Client, request: IssueRequest, now: datetime) -> IssuedToken:
        """A signed, recorded eligibility token, or NotEligible (recorded) with reasons.

        The request is recorded in a group commit (attest/tokens/batcher.py): with the
        requests that arrive at the same time, in one transaction, under its own savepoint;
        it is answered only once that transaction committed."""
        if (request.subject_id is None) == (request.external_ref is None):
            raise InvalidInput(
                "Name the subject by exactly one of subject_id and external_ref.",
                errors=[
                    {"field": "$.subject_id", "message": "exactly one of subject_id, external_ref"}
                ],
            )
        cnf_jkt = holder_thumbprint(request.holder_jwk) if request.holder_jwk is not None else None
        order = (request.audience, request.subject_id or request.external_ref or "")
        try:
            outcome = await self._batcher.submit(Ask(client, request, cnf_jkt, now), order)
        except asyncpg.DataError:
            raise  # a value the request sent that PostgreSQL cannot hold: a 400 problem
        except CommitUnknown as exc:
            raise _outcome_unknown(exc.result) from exc
        except _NOT_RECORDED as exc:
            # No record, no token: the token is dropped here and never leaves the service.
            log.warning("token not recorded, not returned: %s", type(exc).__name__)
            raise ServiceUnavailable("The token could not be recorded; none was issued.") from exc
        if isinstance(outcome, Denied):
            self._metrics.tokens_denied.labels(request.audience).inc()
            raise outcome.error
        self._metrics.tokens_issued.labels(request.audience).inc()
        return outcome

    async def _landed(self, results: list[IssuedToken | Denied | Failed]) -> bool | None:
        """Whether a batch whose COMMIT went unanswered committed, asked on another
        connection: its tokens are all recorded or none is. None when it holds no token
        (its denials leave nothing to look up by)."""
        jtis = [r.jti for r in results if isinstance(r, IssuedToken)]
        if not jtis:
            return None
        async with self._pool.acquire(timeout=LANDED_CHECK_SECONDS) as conn:
            return bool(await repository.recorded(conn, jtis, LANDED_CHECK_SECONDS))

    def _observe(self, size: int, depth: int) -> None:
        self._metrics.issue_batch_size.observe(size)
        self._metrics.issue_queue_depth.set(depth)

    async def close(self) -> None:
        await self._batcher.close()

    async def attestation(self, client: Client, jti: str) -> Attestation:
        """The signed attestation behind a token, for an auditor who may see its tenant."""
        found = None
        if len(jti) <= 64:
            async with self._pool.acquire() as conn:
                found = await repository.get_attestation(conn, jti)
        if found is None or not client.can_see(found.record.tenant):
            raise NotFound("No attestation with this jti.")
        return found

    async def revoke(
        self, client: Client, jti: str, *, reason_given: bool, now: datetime
    ) -> Revoked:
        """Revoke one issued token through its status-list entry (INVALID, final)."""
        found = await self.attestation(client, jti)
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await status.mark(conn, "jti", jti, now)
            await audit.record(
                conn,
                "token.revoked",
                occurred_at=now,
                actor=client.id,
                tenant=found.record.tenant,
                subject_id=found.record.subject_id,
                data={"jti": jti, "changed": changed > 0, "reason_given": reason_given},
            )
        return Revoked(jti, now, changed > 0)

    async def reevaluate_next(self, now: datetime, batch: int = 500) -> int | None:
        """One batch of the oldest pending re-evaluation: the outstanding tokens of its
        audience are decided again (latest policy version, current evidence) and those no
        longer eligible are revoked. One instance holds a job at a time (SKIP LOCKED); each
        batch commits with the job's cursor, so a dead instance's job resumes elsewhere.
        The number of tokens checked, or None when no job is pending."""
        async with self._pool.acquire() as conn, conn.transaction():
            job = await status.claim_reevaluation(conn, now)
            if job is None:
                return None
            tokens = await status.outstanding_of_audience(
                conn, job.audience, job.after_jti, now, batch
            )
            audience = await policies.audience_for_decision(conn, job.audience)
            verdicts: dict[object, bool] = {}
            revoke: list[str] = []
            for jti, subject_id in tokens:
                if subject_id not in verdicts:
                    verdicts[subject_id] = await self._still_eligible(
                        conn, audience, subject_id, now
                    )
                if not verdicts[subject_id]:
                    revoke.append(jti)
            revoked = await status.mark(conn, "jtis", revoke, now) if revoke else 0
            done = len(tokens) < batch
            last = tokens[-1][0] if tokens else job.after_jti
            await status.finish_batch(conn, job.id, last, len(tokens), revoked, done, now)
            if done:
                await audit.record(
                    conn,
                    "tokens.reevaluated",
                    occurred_at=now,
                    actor=None,
                    tenant=None,
                    data={"audience": job.audience, "cause": job.cause},
                )
            if revoke:
                log.info("re-evaluation %s revoked %d tokens of %s", job.id, revoked, job.audience)
        return len(tokens)

    async def _still_eligible(
        self, conn: Conn, audience: Audience | None, subject_id: object, now: datetime
    ) -> bool:
        if audience is None:
            return False  # the audience is gone: nothing governs its tokens any more
        subject = await subjects.get(conn, subject_id)  # type: ignore[arg-type]
        if subject is None:
            return False
        return (await policies.decide(conn, subject, audience.policy_name, now)).decision.eligible

    async def subject_profile(
        self, client: Client, subject_id: str, now: datetime
    ) -> tuple[Profile, list[HolderKey]]:
        """A subject's evidence and current attributes (the evidence service's profile) and
        the distinct holder keys its tokens were bound to in the sharing window."""
        assert self._evidence is not None  # noqa: S101 - create_app hands it in
        profile = await self._evidence.profile(client, subject_id, now)
        async with self._pool.acquire() as conn:
            keys = await repository.holder_keys_seen(conn, profile.subject.id, now - SHARING_WINDOW)
        return profile, keys
