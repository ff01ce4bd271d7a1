"""Token issuance, in one use case: decide, sign, record, or deny and record.

The decision is made on data read inside the transaction that records the token:

1. the audience's advisory lock is taken shared (policy.service.audience_for_decision):
   publishing a version of its policy or rebinding it takes that lock exclusive;
2. the subject row is read FOR SHARE: revoking the subject and every change of its
   evidence lock that row FOR UPDATE (subjects.service, evidence.service);
3. the policy and the evidence are read and evaluated, the token signed, and the
   attestation and its audit event inserted; then the transaction commits.

So an eligibility change that commits first is always seen, and one that arrives while a
decision is in flight waits for it to commit: no token is recorded after a revocation,
withdrawal or policy change of the subject it was decided for.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from attest.audit import service as audit
from attest.clients.models import Client
from attest.db import Conn
from attest.errors import (
    AttestError,
    AudienceSuspended,
    InvalidInput,
    NotEligible,
    NotFound,
    ServiceUnavailable,
    UnknownAudience,
    UnprocessableInput,
)
from attest.evidence.service import EvidenceService, Profile
from attest.keys.keyring import Keyring
from attest.keys.keystore import Signer
from attest.metrics import Metrics
from attest.policy import service as policies
from attest.policy.engine import Decision
from attest.policy.models import Audience, Eligibility
from attest.settings import Settings
from attest.status import service as status
from attest.subjects import service as subjects
from attest.subjects.models import Subject
from attest.tokens import repository
from attest.tokens.batcher import CONNECTION_ERRORS, Batcher, CommitUnknown, Failed, NotCommitted
from attest.tokens.claims import (
    ATTESTATION_TYPE,
    TOKEN_TYPE,
    build_claims,
    holder_thumbprint,
    new_jti,
    pairwise_sub,
    token_sha256,
)
from attest.tokens.models import (
    Attestation,
    HolderKey,
    IssuedToken,
    IssueRequest,
    NewAttestation,
    Revoked,
)

__all__ = ["IssuanceOutcomeUnknown", "TokenService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Denied:
    """A refusal recorded in the transaction; raised once it committed."""

    error: AttestError


class _Batch:
    """What the requests of one batch share: the active signer, read once per batch in its
    transaction (the first issued token asks; a batch of denials never does)."""

    def __init__(self, keyring: Keyring, conn: Conn) -> None:
        self._keyring = keyring
        self._conn = conn
        self._signer: Signer | None = None

    async def signer(self) -> Signer:
        if self._signer is None:
            self._signer = await self._keyring.active(self._conn)
        return self._signer


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

#: The sliding window of the sharing signals (DESIGN.md: 24 h).
SHARING_WINDOW = timedelta(hours=24)


def _reason_view(decision: Decision) -> list[dict[str, str]]:
    return [{"code": r.code, "message": r.message, "rule": r.path} for r in decision.reasons]


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
        self._settings = settings
        self._keyring = keyring
        self._pairwise_key = pairwise_key
        self._metrics = metrics
        self._batcher: Batcher[_Batch, IssuedToken | _Denied] = Batcher(
            pool,
            prepare=lambda conn: _Batch(keyring, conn),
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

        async def run(conn: Conn, batch: _Batch) -> IssuedToken | _Denied:
            return await self._decide_and_record(conn, batch, client, request, cnf_jkt, now)

        order = (request.audience, request.subject_id or request.external_ref or "")
        try:
            outcome = await self._batcher.submit(run, order)
        except asyncpg.DataError:
            raise  # a value the request sent that PostgreSQL cannot hold: a 400 problem
        except CommitUnknown as exc:
            raise _outcome_unknown(exc.result) from exc
        except _NOT_RECORDED as exc:
            # No record, no token: the token is dropped here and never leaves the service.
            log.warning("token not recorded, not returned: %s", type(exc).__name__)
            raise ServiceUnavailable("The token could not be recorded; none was issued.") from exc
        if isinstance(outcome, _Denied):
            self._metrics.tokens_denied.labels(request.audience).inc()
            raise outcome.error
        self._metrics.tokens_issued.labels(request.audience).inc()
        return outcome

    async def _landed(self, results: list[IssuedToken | _Denied | Failed]) -> bool | None:
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

    async def _decide_and_record(
        self,
        conn: Conn,
        batch: _Batch,
        client: Client,
        request: IssueRequest,
        cnf_jkt: str | None,
        now: datetime,
    ) -> IssuedToken | _Denied:
        """Inside the recording transaction (see the module docstring for the locks)."""
        context = await policies.decision_context(conn, request.audience, now)
        if context is None:
            raise UnknownAudience(
                f"The audience '{request.audience}' is not registered, so it is not restricted."
            )
        audience = context.audience
        if audience.binding_required and cnf_jkt is None:
            raise UnprocessableInput(
                "This audience requires holder binding: send holder_jwk.",
                errors=[{"field": "$.holder_jwk", "message": "required by the audience"}],
            )
        subject = await subjects.resolve(
            conn,
            client,
            subject_id=request.subject_id,
            external_ref=request.external_ref,
            tenant=request.tenant,
            lock="share",
        )
        if audience.suspended:
            await self._record_denial(conn, client, subject, audience.audience, None, now)
            return _Denied(
                AudienceSuspended(
                    f"The audience '{audience.audience}' is suspended: no tokens are issued.",
                    reasons=["The audience is suspended."],
                )
            )
        eligibility = await policies.decide_under(
            conn, subject, context.policy, audience.policy_name, now
        )
        decision = eligibility.decision
        if not decision.eligible:
            await self._record_denial(conn, client, subject, audience.audience, decision, now)
            reasons = _reason_view(decision)
            return _Denied(
                NotEligible(
                    "The subject is not eligible for this audience.",
                    reasons=[r["message"] for r in reasons],
                    reason_details=reasons,
                    policy=decision.policy,
                    policy_version=decision.policy_version,
                )
            )
        if audience.max_holder_keys is not None and cnf_jkt is not None:
            shared = await self._holder_key_limit(conn, client, subject, audience, cnf_jkt, now)
            if shared is not None:
                await self._record_denial(
                    conn, client, subject, audience.audience, decision, now, ["holder_key_limit"]
                )
                return _Denied(shared)
        await self._clients_signal(conn, client, subject, audience.audience, now)
        return await self._sign_and_record(
            conn, batch, client, subject, audience, eligibility, cnf_jkt, now
        )

    async def _record_denial(
        self,
        conn: Conn,
        client: Client,
        subject: Subject,
        audience: str,
        decision: Decision | None,
        now: datetime,
        codes: list[str] | None = None,
    ) -> None:
        data: dict[str, object] = {"audience": audience}
        if decision is not None:
            data.update(
                policy=decision.policy,
                policy_version=decision.policy_version,
                policy_digest=decision.policy_digest,
            )
        if codes is None:
            codes = [r.code for r in decision.reasons] if decision else ["audience_suspended"]
        data["reasons"] = codes
        await audit.record(
            conn,
            "token.denied",
            occurred_at=now,
            actor=client.id,
            tenant=subject.tenant,
            subject_id=subject.id,
            data=data,
        )

    async def _holder_key_limit(
        self,
        conn: Conn,
        client: Client,
        subject: Subject,
        audience: Audience,
        cnf_jkt: str,
        now: datetime,
    ) -> NotEligible | None:
        """The sharing signal of DESIGN.md: a token that would make more distinct holder keys
        (cnf.jkt) for this subject and audience in the window than the audience allows is
        denied (reason holder_key_limit) and recorded as subject.sharing_suspected."""
        limit = audience.max_holder_keys
        assert limit is not None  # noqa: S101 - checked by the caller
        await repository.lock_holder_keys(conn, subject.id, audience.audience)
        seen = await repository.holder_keys(
            conn, subject.id, audience.audience, now - SHARING_WINDOW
        )
        if cnf_jkt in seen or len(seen) < limit:
            return None
        await self._sharing_suspected(
            conn,
            client,
            subject,
            audience.audience,
            "holder_key_limit",
            now,
            holder_keys=len(seen) + 1,
            limit=limit,
        )
        message = (
            f"The subject's tokens for this audience are already bound to {len(seen)} holder "
            f"keys in the last 24 h, the most it allows ({limit}): a new key is refused."
        )
        return NotEligible(
            "The subject is not eligible for this audience.",
            reasons=[message],
            reason_details=[{"code": "holder_key_limit", "message": message, "rule": "$"}],
        )

    async def _clients_signal(
        self, conn: Conn, client: Client, subject: Subject, audience: str, now: datetime
    ) -> None:
        """Flag (event and metric, no denial) a subject whose tokens are asked for by more
        than one client of its tenant in the window, once per client that joins."""
        others = await repository.other_requesters(
            conn, subject.id, client.id, now - SHARING_WINDOW
        )
        if others == 0:
            return
        await self._sharing_suspected(
            conn, client, subject, audience, "multiple_clients", now, clients=others + 1
        )

    async def _sharing_suspected(
        self,
        conn: Conn,
        client: Client,
        subject: Subject,
        audience: str,
        signal: str,
        now: datetime,
        **details: int,
    ) -> None:
        """Record a sharing signal (subject.sharing_suspected) and count it in /metrics."""
        await audit.record(
            conn,
            "subject.sharing_suspected",
            occurred_at=now,
            actor=client.id,
            tenant=subject.tenant,
            subject_id=subject.id,
            data={"signal": signal, "audience": audience, **details},
        )
        self._metrics.sharing_suspected.labels(audience, signal).inc()

    async def _sign_and_record(
        self,
        conn: Conn,
        batch: _Batch,
        client: Client,
        subject: Subject,
        audience: Audience,
        eligibility: Eligibility,
        cnf_jkt: str | None,
        now: datetime,
    ) -> IssuedToken:
        decision = eligibility.decision
        assert decision.assurance is not None  # noqa: S101 - an eligible decision has one
        signer = await batch.signer()
        jti = new_jti()
        entry = await status.allocate(conn, list_size=self._settings.status_list_size, now=now)
        sub = pairwise_sub(self._pairwise_key, str(subject.id), audience.audience)
        claims = build_claims(
            issuer=self._settings.issuer,
            sub=sub,
            audience=audience.audience,
            now=now,
            lifetime=audience.token_lifetime,
            jti=jti,
            decision=decision,
            cnf_jkt=cnf_jkt,
            status_idx=entry.idx,
            status_uri=status.list_uri(self._settings.issuer, entry.list_id),
        )
        token = signer.sign_jwt(claims, TOKEN_TYPE)
        digest = token_sha256(token)
        issued_at = datetime.fromtimestamp(claims["iat"], UTC)
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        signed = {
            "jti": jti,
            "subject_id": str(subject.id),
            "audience": audience.audience,
            "sub": sub,
            "policy": {
                "name": decision.policy,
                "version": decision.policy_version,
                "digest": decision.policy_digest,
            },
            "assurance": decision.assurance,
            "evidence_ids": [str(e) for e in eligibility.evidence_ids],
            "kid": signer.kid,
            "token_sha256": digest,
            "cnf_jkt": cnf_jkt,
            "iat": claims["iat"],
            "exp": claims["exp"],
            "status": claims["status"]["status_list"],
        }
        await repository.record_issued(
            conn,
            NewAttestation(
                jti=jti,
                subject_id=subject.id,
                tenant=subject.tenant,
                audience=audience.audience,
                sub=sub,
                policy_name=decision.policy,
                policy_version=decision.policy_version,
                policy_digest=decision.policy_digest,
                assurance=decision.assurance,
                evidence_ids=eligibility.evidence_ids,
                kid=signer.kid,
                token_sha256=digest,
                cnf_jkt=cnf_jkt,
                issued_at=issued_at,
                expires_at=expires_at,
                requested_by=client.id,
                signature=signer.sign_jwt(signed, ATTESTATION_TYPE),
            ),
            list_id=entry.list_id,
            idx=entry.idx,
            event_id=uuid.uuid4(),
            occurred_at=now,
            event={
                "jti": jti,
                "audience": audience.audience,
                "policy": decision.policy,
                "policy_version": decision.policy_version,
                "policy_digest": decision.policy_digest,
                "assurance": decision.assurance,
                "kid": signer.kid,
                "token_sha256": digest,
                "bound": cnf_jkt is not None,
            },
        )
        return IssuedToken(token, jti, expires_at)

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
