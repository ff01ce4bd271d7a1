"""The token decisions of one group-commit batch, set-based: a few statements per batch.

The batcher (attest/tokens/batcher.py) hands over the requests that arrived together; they
are decided on data read inside the batch's transaction, with one statement per kind of
read instead of one per request, and recorded with one statement:

1. the audiences' advisory locks are taken shared, in name order: publishing a version of
   a policy or rebinding an audience takes that lock exclusive;
2. the subjects' rows are read FOR SHARE: revoking a subject and every change of its
   evidence lock that row FOR UPDATE (subjects.service, evidence.service);
3. in one statement sent after those locks were granted, so that its snapshot sees every
   change that committed before: the audiences and the policy versions governing them, the
   subjects' verified evidence, the sharing signal's requesters and the active key's id;
   then, for an audience that limits holder keys, the holder keys seen (after locking
   those counts), and a client new to a subject is counted again under its lock;
4. each request is decided in the batch's order; the issued ones get status-list entries
   and are signed; every attestation, entry and audit event is inserted in one statement.

So an eligibility change that commits first is always seen, and one that arrives while a
batch is in flight waits for its commit: no token is recorded after a revocation,
withdrawal or policy change of the subject it was decided for. A request decided later in
a batch counts what the earlier ones issued (the sharing signal's clients, the holder
keys), exactly as if each had been recorded in a transaction of its own, one after the
other. A request's own refusal (an unknown audience, a subject it may not see) is its answer
alone; when a statement fails, the batcher runs the requests again one by one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from attest.db import Conn
from attest.errors import (
    AttestError,
    AudienceSuspended,
    NotEligible,
    UnknownAudience,
    UnprocessableInput,
)
from attest.metrics import Metrics
from attest.policy import service as policies
from attest.policy.engine import Decision
from attest.policy.models import Audience, Eligibility
from attest.policy.service import DecisionContext
from attest.settings import Settings
from attest.status import service as status
from attest.subjects import service as subjects
from attest.subjects.models import Subject
from attest.subjects.service import SubjectRef
from attest.tokens import repository
from attest.tokens.batch import Ask, BatchSigner, Decided, Denied, Outcome, Pending, sign_batch
from attest.tokens.batcher import Failed

__all__ = ["SHARING_WINDOW", "Issuance"]

#: The sliding window of the sharing signals (DESIGN.md: 24 h).
SHARING_WINDOW = timedelta(hours=24)


@dataclass(slots=True)
class _Reads:
    """What the batch read after its locks, per request (index) or per subject."""

    subjects: list[Subject | AttestError]
    contexts: list[DecisionContext | None]
    eligibility: list[Eligibility | Exception | None]
    requesters: list[set[uuid.UUID] | None]
    holder_keys: list[set[str]]


def _reason_view(decision: Decision) -> list[dict[str, str]]:
    return [{"code": r.code, "message": r.message, "rule": r.path} for r in decision.reasons]


def _policy_data(decision: Decision | None) -> dict[str, Any]:
    if decision is None:
        return {}
    return {
        "policy": decision.policy,
        "policy_version": decision.policy_version,
        "policy_digest": decision.policy_digest,
    }


class Issuance:
    """Decides and records the requests of a batch (the module docstring)."""

    def __init__(self, settings: Settings, *, pairwise_key: bytes, metrics: Metrics) -> None:
        self._settings = settings
        self._pairwise_key = pairwise_key
        self._metrics = metrics
        self._slots = status.SlotReserve()

    async def record(self, conn: Conn, batch: BatchSigner, asks: list[Ask]) -> list[Outcome]:
        """Every request's outcome, recorded on ``conn`` (not committed: the batcher does)."""
        refs: list[SubjectRef | AttestError] = []
        for ask in asks:
            try:
                refs.append(
                    subjects.reference(
                        ask.client,
                        subject_id=ask.request.subject_id,
                        external_ref=ask.request.external_ref,
                        tenant=ask.request.tenant,
                    )
                )
            except AttestError as exc:
                refs.append(exc)
        reads = await self._read(conn, batch, asks, refs)
        decided = Decided([None] * len(asks))
        for index, ask in enumerate(asks):
            try:
                self._decide(decided, index, ask, reads)
            except AttestError as exc:
                decided.outcomes[index] = Failed(exc)
        rows = await self._sign(conn, batch, decided) if decided.pending else []
        if decided.events:
            await repository.record_batch(conn, rows, decided.events)
        for audience, signal in decided.signals:
            self._metrics.sharing_suspected.labels(audience, signal).inc()
        return [o for o in decided.outcomes if o is not None]

    async def _read(
        self, conn: Conn, batch: BatchSigner, asks: list[Ask], refs: list[SubjectRef | AttestError]
    ) -> _Reads:
        # The audiences' locks shared and the subjects FOR SHARE, in one round trip.
        named = [r for r in refs if isinstance(r, SubjectRef)]
        locks = policies.decision_locks([a.request.audience for a in asks])
        found = await subjects.share_many(conn, named, locks)
        seen: list[Subject | AttestError] = []
        for ask, ref in zip(asks, refs, strict=True):
            if isinstance(ref, AttestError):
                seen.append(ref)
                continue
            try:
                seen.append(subjects.visible(ask.client, found.get(ref)))
            except AttestError as exc:
                seen.append(exc)
        # Then everything else the decisions need, in one statement after those locks.
        visible = [i for i, s in enumerate(seen) if isinstance(s, Subject)]
        ids = sorted({_subject(seen, i).id for i in visible})
        read = await repository.decision_reads(
            conn,
            [(a.request.audience, a.now) for a in asks],
            ids,
            [
                (_subject(seen, i).id, asks[i].client.id, asks[i].now - SHARING_WINDOW)
                for i in visible
            ],
        )
        batch.read(read.kid)
        contexts = await policies.decision_contexts(conn, read.contexts)
        verified = read.verified
        live = [i for i in visible if contexts[i] is not None]
        eligibility: list[Eligibility | Exception | None] = [None] * len(asks)
        for i in live:
            policy = _context(contexts, i).policy
            if policy is not None:
                subject = _subject(seen, i)
                try:
                    eligibility[i] = policies.eligibility_on(
                        policy, subject, verified[subject.id], asks[i].now
                    )
                except Exception as exc:  # noqa: BLE001 - raised in its turn by _decide
                    eligibility[i] = exc
        # The sharing signals concern only the requests that may be issued a token.
        issuable = [i for i in live if _issuable(asks[i], _context(contexts, i), eligibility[i])]
        requesters: list[set[uuid.UUID] | None] = [None] * len(asks)
        for i, prior in zip(visible, read.requesters, strict=True):
            requesters[i] = prior
        await self._recount_new_clients(conn, asks, seen, issuable, requesters)
        holder_keys: list[set[str]] = [set() for _ in asks]
        limited = [
            i
            for i in issuable
            if asks[i].cnf_jkt is not None
            and _context(contexts, i).audience.max_holder_keys is not None
        ]
        if limited:
            pairs = [(_subject(seen, i).id, asks[i].request.audience) for i in limited]
            await repository.lock_holder_keys(conn, pairs)
            keys = await repository.holder_keys(
                conn,
                [
                    (s, a, asks[i].now - SHARING_WINDOW)
                    for i, (s, a) in zip(limited, pairs, strict=True)
                ],
            )
            for i, held in zip(limited, keys, strict=True):
                holder_keys[i] = held
        return _Reads(seen, contexts, eligibility, requesters, holder_keys)

    async def _recount_new_clients(
        self,
        conn: Conn,
        asks: list[Ask],
        seen: list[Subject | AttestError],
        issuable: list[int],
        requesters: list[set[uuid.UUID] | None],
    ) -> None:
        """The sharing signal's reads, ``requesters``: for each request, None when its
        client asked for the subject's tokens before, else the clients that did. A client
        new to a subject that may be issued a token is counted again under the subject's
        lock, after the batches in flight that may have joined it committed, so that
        concurrent batches flag each client once."""
        new = [i for i in issuable if requesters[i] is not None]
        if not new:
            return
        await repository.lock_requesters(conn, [_subject(seen, i).id for i in new])
        asked = await repository.requesters(
            conn,
            [(_subject(seen, i).id, asks[i].client.id, asks[i].now - SHARING_WINDOW) for i in new],
        )
        for i, prior in zip(new, asked, strict=True):
            requesters[i] = prior

    def _decide(self, decided: Decided, index: int, ask: Ask, reads: _Reads) -> None:
        """Decide one request (in the batch's order), as issuance always has: an unknown
        audience, a missing holder key, a subject not seen are the request's own errors;
        a suspended audience, an ineligible subject, a holder key over the limit are
        recorded denials; else the token waits to be signed."""
        request = ask.request
        context = reads.contexts[index]
        if context is None:
            raise UnknownAudience(
                f"The audience '{request.audience}' is not registered, so it is not restricted."
            )
        audience = context.audience
        if audience.binding_required and ask.cnf_jkt is None:
            raise UnprocessableInput(
                "This audience requires holder binding: send holder_jwk.",
                errors=[{"field": "$.holder_jwk", "message": "required by the audience"}],
            )
        subject = reads.subjects[index]
        if not isinstance(subject, Subject):
            raise subject
        if audience.suspended:
            decided.event(
                ask,
                subject,
                "token.denied",
                {"audience": audience.audience, "reasons": ["audience_suspended"]},
            )
            decided.outcomes[index] = Denied(
                AudienceSuspended(
                    f"The audience '{audience.audience}' is suspended: no tokens are issued.",
                    reasons=["The audience is suspended."],
                )
            )
            return
        if context.policy is None:
            raise UnprocessableInput(f"The policy '{audience.policy_name}' does not exist.")
        eligibility = reads.eligibility[index]
        if isinstance(eligibility, Exception):
            raise eligibility
        assert eligibility is not None  # noqa: S101 - read for every request with a policy
        decision = eligibility.decision
        if not decision.eligible:
            decided.event(
                ask,
                subject,
                "token.denied",
                {
                    "audience": audience.audience,
                    **_policy_data(decision),
                    "reasons": [r.code for r in decision.reasons],
                },
            )
            reasons = _reason_view(decision)
            decided.outcomes[index] = Denied(
                NotEligible(
                    "The subject is not eligible for this audience.",
                    reasons=[r["message"] for r in reasons],
                    reason_details=reasons,
                    policy=decision.policy,
                    policy_version=decision.policy_version,
                )
            )
            return
        if ask.cnf_jkt is not None and audience.max_holder_keys is not None:
            refused = self._holder_key_limit(decided, index, ask, subject, audience, reads)
            if refused is not None:
                decided.event(
                    ask,
                    subject,
                    "token.denied",
                    {
                        "audience": audience.audience,
                        **_policy_data(decision),
                        "reasons": ["holder_key_limit"],
                    },
                )
                decided.outcomes[index] = Denied(refused)
                return
        self._clients_signal(decided, index, ask, subject, audience.audience, reads)
        decided.pending.append(
            Pending(
                index,
                decided.event(ask, subject, "token.issued", {}),
                ask,
                subject,
                audience,
                eligibility,
            )
        )
        decided.clients.setdefault(subject.id, set()).add(ask.client.id)
        if ask.cnf_jkt is not None:
            decided.keys.setdefault((subject.id, audience.audience), set()).add(ask.cnf_jkt)

    def _holder_key_limit(
        self,
        decided: Decided,
        index: int,
        ask: Ask,
        subject: Subject,
        audience: Audience,
        reads: _Reads,
    ) -> NotEligible | None:
        """The sharing signal of DESIGN.md: a token that would make more distinct holder keys
        (cnf.jkt) for this subject and audience in the window than the audience allows is
        denied (reason holder_key_limit) and recorded as subject.sharing_suspected."""
        limit = audience.max_holder_keys
        assert limit is not None  # noqa: S101 - checked by the caller
        seen = reads.holder_keys[index] | decided.keys.get((subject.id, audience.audience), set())
        if ask.cnf_jkt in seen or len(seen) < limit:
            return None
        self._sharing_suspected(
            decided,
            ask,
            subject,
            audience.audience,
            "holder_key_limit",
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

    def _clients_signal(
        self,
        decided: Decided,
        index: int,
        ask: Ask,
        subject: Subject,
        audience: str,
        reads: _Reads,
    ) -> None:
        """Flag (event and metric, no denial) a subject whose tokens are asked for by more
        than one client of its tenant in the window, once per client that joins."""
        prior = reads.requesters[index]
        batch = decided.clients.get(subject.id, set())
        if prior is None or ask.client.id in batch:
            return  # the client asked before: it joined already
        others = len(prior | batch)
        if others:
            self._sharing_suspected(
                decided, ask, subject, audience, "multiple_clients", clients=others + 1
            )

    def _sharing_suspected(
        self,
        decided: Decided,
        ask: Ask,
        subject: Subject,
        audience: str,
        signal: str,
        **details: int,
    ) -> None:
        """Record a sharing signal (subject.sharing_suspected), counted in /metrics once
        the batch's statement succeeded."""
        decided.event(
            ask,
            subject,
            "subject.sharing_suspected",
            {"signal": signal, "audience": audience, **details},
        )
        decided.signals.append((audience, signal))

    async def _sign(self, conn: Conn, batch: BatchSigner, decided: Decided) -> list[dict[str, Any]]:
        """Status entries for the pending tokens (one round trip), then each token and its
        attestation signed; their rows for the batch's statement."""
        # A key that cannot be had fails the statement: the batcher runs each request alone,
        # so the denials are recorded and each eligible request gets the keystore's error.
        signer = await batch.signer()
        settings = self._settings
        entries = await self._slots.allocate(
            conn,
            len(decided.pending),
            list_size=settings.status_list_size,
            now=decided.pending[0].ask.now,
        )
        return sign_batch(
            decided, signer, entries, issuer=settings.issuer, pairwise_key=self._pairwise_key
        )


def _issuable(
    ask: Ask, context: DecisionContext, eligibility: Eligibility | Exception | None
) -> bool:
    """Whether the request may be issued a token, but for the sharing signals."""
    audience = context.audience
    if audience.suspended or (audience.binding_required and ask.cnf_jkt is None):
        return False
    return isinstance(eligibility, Eligibility) and eligibility.decision.eligible


def _subject(seen: list[Subject | AttestError], index: int) -> Subject:
    found = seen[index]
    assert isinstance(found, Subject)  # noqa: S101 - only for requests with a subject
    return found


def _context(contexts: list[DecisionContext | None], index: int) -> DecisionContext:
    found = contexts[index]
    assert found is not None  # noqa: S101 - only for requests with an audience
    return found
