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
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from attest.audit import service as audit
from attest.clients.models import Client
from attest.db import Conn
from attest.errors import (
    InvalidInput,
    NotEligible,
    NotFound,
    ServiceUnavailable,
    UnknownAudience,
    UnprocessableInput,
)
from attest.keys.keyring import Keyring
from attest.metrics import Metrics
from attest.policy import service as policies
from attest.policy.engine import Decision
from attest.policy.models import Audience, Eligibility
from attest.settings import Settings
from attest.status import service as status
from attest.subjects import service as subjects
from attest.subjects.models import Subject
from attest.tokens import repository
from attest.tokens.claims import (
    ATTESTATION_TYPE,
    TOKEN_TYPE,
    build_claims,
    holder_thumbprint,
    new_jti,
    pairwise_sub,
    token_sha256,
)
from attest.tokens.models import Attestation, IssuedToken, IssueRequest, NewAttestation, Revoked

__all__ = ["TokenService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Denied:
    decision: Decision


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
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._keyring = keyring
        self._pairwise_key = pairwise_key
        self._metrics = metrics

    async def issue(self, client: Client, request: IssueRequest, now: datetime) -> IssuedToken:
        """A signed, recorded eligibility token, or NotEligible (recorded) with reasons."""
        if (request.subject_id is None) == (request.external_ref is None):
            raise InvalidInput(
                "Name the subject by exactly one of subject_id and external_ref.",
                errors=[
                    {"field": "$.subject_id", "message": "exactly one of subject_id, external_ref"}
                ],
            )
        cnf_jkt = holder_thumbprint(request.holder_jwk) if request.holder_jwk is not None else None
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    outcome = await self._decide_and_record(conn, client, request, cnf_jkt, now)
            except asyncpg.DataError:
                raise  # a value the request sent that PostgreSQL cannot hold: a 400 problem
            except (asyncpg.PostgresError, OSError) as exc:
                # No record, no token: the token is dropped here and never leaves the service.
                log.warning("token not recorded, not returned: %s", type(exc).__name__)
                raise ServiceUnavailable(
                    "The token could not be recorded; none was issued."
                ) from exc
        if isinstance(outcome, _Denied):
            decision = outcome.decision
            self._metrics.tokens_denied.labels(request.audience).inc()
            reasons = _reason_view(decision)
            raise NotEligible(
                "The subject is not eligible for this audience.",
                reasons=[r["message"] for r in reasons],
                reason_details=reasons,
                policy=decision.policy,
                policy_version=decision.policy_version,
            )
        self._metrics.tokens_issued.labels(request.audience).inc()
        return outcome

    async def _decide_and_record(
        self,
        conn: Conn,
        client: Client,
        request: IssueRequest,
        cnf_jkt: str | None,
        now: datetime,
    ) -> IssuedToken | _Denied:
        """Inside the recording transaction (see the module docstring for the locks)."""
        audience = await policies.audience_for_decision(conn, request.audience)
        if audience is None:
            raise UnknownAudience(
                f"The audience '{request.audience}' is not registered, so it is not restricted."
            )
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
        eligibility = await policies.decide(conn, subject, audience.policy_name, now)
        decision = eligibility.decision
        if not decision.eligible:
            await audit.record(
                conn,
                "token.denied",
                occurred_at=now,
                actor=client.id,
                tenant=subject.tenant,
                subject_id=subject.id,
                data={
                    "audience": request.audience,
                    "policy": decision.policy,
                    "policy_version": decision.policy_version,
                    "policy_digest": decision.policy_digest,
                    "reasons": [r.code for r in decision.reasons],
                },
            )
            return _Denied(decision)
        return await self._sign_and_record(
            conn, client, subject, audience, eligibility, cnf_jkt, now
        )

    async def _sign_and_record(
        self,
        conn: Conn,
        client: Client,
        subject: Subject,
        audience: Audience,
        eligibility: Eligibility,
        cnf_jkt: str | None,
        now: datetime,
    ) -> IssuedToken:
        decision = eligibility.decision
        assert decision.assurance is not None  # noqa: S101 - an eligible decision has one
        signer = await self._keyring.active(conn)
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
        await repository.insert_attestation(
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
        )
        await status.attach(conn, entry, jti)
        await audit.record(
            conn,
            "token.issued",
            occurred_at=now,
            actor=client.id,
            tenant=subject.tenant,
            subject_id=subject.id,
            data={
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
            job = await status.claim_reevaluation(conn)
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
