"""Pure policy evaluation: (policy document, facts, now) -> decision with every reason.

No I/O and no clock: the caller passes ``now``. The same inputs always give the same
decision, with reasons in a stable order (document order of the rules; for one rule, the
fixed order of REASON_CODES), whatever the order of the facts.

Semantics (DESIGN.md, "Policies and audiences"):

- A fact is *current* while ``now < reverify_at``. Expired facts never count.
- An ``any_of`` rule is satisfied by a current fact for one of its values that also
  *qualifies*: its assurance is at least the effective minimum and it was verified at most
  the effective maximum age ago. The effective limits are the document-level
  ``min_assurance`` (default IAL1) and ``max_evidence_age_days``, tightened by
  ``min_assurance`` / ``max_evidence_age_days`` rules that are children of an enclosing
  ``all`` (they scope over that ``all``'s whole subtree and are themselves always
  satisfied). When it fails, the reason says what disqualified the matching facts
  (``evidence_expired``, ``evidence_too_old``, ``assurance_too_low``), or
  ``attribute_missing`` when no fact has one of the values.
- A ``none_of`` rule is violated by any current fact for one of its values, whatever its
  assurance or age (``attribute_forbidden``): a dual national with one forbidden
  nationality is denied, even on weak evidence.
- ``all`` needs every child, ``any`` needs one; a failing rule reports the reasons of all
  its failing children (nothing is short-circuited).
- A revoked subject is never eligible (``subject_revoked``, before the other reasons).
- The decision's assurance is the assurance of the weakest link on the best satisfying
  path: an ``any_of`` rule holds at the highest assurance among its qualifying facts,
  ``all`` at the lowest of its children, ``any`` at the highest of its satisfied children.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from attest.evidence.attributes import ASSURANCE_LEVELS, ATTRIBUTES, assurance_rank
from attest.policy.document import policy_digest, validate_policy_document

__all__ = ["REASON_CODES", "Decision", "Fact", "Reason", "Validated", "evaluate", "validated"]

#: Every reason code evaluate() can return, in the order used within one rule.
REASON_CODES: Final = (
    "subject_revoked",
    "attribute_missing",
    "attribute_forbidden",
    "evidence_expired",
    "evidence_too_old",
    "assurance_too_low",
)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True, slots=True)
class Fact:
    """One attribute value backed by one piece of verified evidence."""

    attribute: str  # one of ATTRIBUTES
    value: str
    assurance: str  # one of ASSURANCE_LEVELS
    verified_at: datetime  # timezone-aware
    reverify_at: datetime  # timezone-aware; from this instant the evidence no longer counts
    evidence_id: str

    def __post_init__(self) -> None:
        if self.attribute not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {self.attribute!r}")
        if self.assurance not in ASSURANCE_LEVELS:
            raise ValueError(f"unknown assurance level {self.assurance!r}")
        _require_aware("verified_at", self.verified_at)
        _require_aware("reverify_at", self.reverify_at)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision is a denial: a stable code, one sentence, the rule's JSON path."""

    code: str
    message: str
    path: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of evaluating one policy version for one subject."""

    eligible: bool
    reasons: tuple[Reason, ...]  # every reason; empty when eligible
    assurance: str | None  # None when not eligible
    policy: str
    policy_version: int
    policy_digest: str


@dataclass(frozen=True, slots=True)
class _Scope:
    min_rank: int
    oldest_allowed: datetime | None  # facts verified before this instant are too old
    min_assurance: str
    max_age_days: int | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    passed: bool
    reasons: tuple[Reason, ...]
    rank: int | None  # assurance rank the rule holds at, when passed and evidence-backed


_PASS_WITHOUT_EVIDENCE: Final = _Outcome(passed=True, reasons=(), rank=None)


class _Evaluator:
    def __init__(self, facts: Sequence[Fact], now: datetime) -> None:
        self._now = now
        self._current = [fact for fact in facts if now < fact.reverify_at]
        self._expired = [fact for fact in facts if not now < fact.reverify_at]

    def tighten(self, scope: _Scope, constraints: Mapping[str, Any]) -> _Scope:
        if "min_assurance" in constraints:
            level = constraints["min_assurance"]
            if assurance_rank(level) > scope.min_rank:
                scope = _Scope(
                    assurance_rank(level), scope.oldest_allowed, level, scope.max_age_days
                )
        if "max_evidence_age_days" in constraints:
            days = constraints["max_evidence_age_days"]
            if scope.max_age_days is None or days < scope.max_age_days:
                try:
                    oldest = self._now - timedelta(days=days)
                except OverflowError:  # now is within `days` of year 1: nothing is too old
                    oldest = datetime.min.replace(tzinfo=UTC)
                scope = _Scope(scope.min_rank, oldest, scope.min_assurance, days)
        return scope

    def rule(self, rule: Mapping[str, Any], path: str, scope: _Scope) -> _Outcome:
        if "all" in rule:
            return self._all(rule["all"], path, scope)
        if "any" in rule:
            return self._any(rule["any"], path, scope)
        if "any_of" in rule:
            return self._any_of(rule["attribute"], rule["any_of"], path, scope)
        if "none_of" in rule:
            return self._none_of(rule["attribute"], rule["none_of"], path)
        # min_assurance / max_evidence_age_days: applied as scope by the enclosing "all".
        return _PASS_WITHOUT_EVIDENCE

    def _all(self, children: Sequence[Mapping[str, Any]], path: str, scope: _Scope) -> _Outcome:
        for child in children:
            scope = self.tighten(scope, child)
        outcomes = [self.rule(child, f"{path}.all[{i}]", scope) for i, child in enumerate(children)]
        reasons = tuple(reason for outcome in outcomes for reason in outcome.reasons)
        if not all(outcome.passed for outcome in outcomes):
            return _Outcome(passed=False, reasons=reasons, rank=None)
        ranks = [outcome.rank for outcome in outcomes if outcome.rank is not None]
        return _Outcome(passed=True, reasons=(), rank=min(ranks) if ranks else None)

    def _any(self, children: Sequence[Mapping[str, Any]], path: str, scope: _Scope) -> _Outcome:
        outcomes = [self.rule(child, f"{path}.any[{i}]", scope) for i, child in enumerate(children)]
        passed = [outcome for outcome in outcomes if outcome.passed]
        if not passed:
            reasons = tuple(reason for outcome in outcomes for reason in outcome.reasons)
            return _Outcome(passed=False, reasons=reasons, rank=None)
        ranks = [outcome.rank for outcome in passed if outcome.rank is not None]
        return _Outcome(passed=True, reasons=(), rank=max(ranks) if ranks else None)

    def _any_of(self, attribute: str, values: Sequence[str], path: str, scope: _Scope) -> _Outcome:
        wanted = frozenset(values)
        current = [f for f in self._current if f.attribute == attribute and f.value in wanted]
        qualifying = [
            assurance_rank(f.assurance)
            for f in current
            if assurance_rank(f.assurance) >= scope.min_rank
            and (scope.oldest_allowed is None or f.verified_at >= scope.oldest_allowed)
        ]
        if qualifying:
            return _Outcome(passed=True, reasons=(), rank=max(qualifying))
        expired = [f for f in self._expired if f.attribute == attribute and f.value in wanted]
        listed = ", ".join(values)
        if not current and not expired:
            message = f"No current verified evidence shows {attribute} among: {listed}."
            return _Outcome(False, (Reason("attribute_missing", message, path),), None)
        reasons: list[Reason] = []
        if expired:
            message = (
                f"The evidence for {attribute} among: {listed} has expired "
                "and must be verified again."
            )
            reasons.append(Reason("evidence_expired", message, path))
        if scope.oldest_allowed is not None and any(
            f.verified_at < scope.oldest_allowed for f in current
        ):
            message = (
                f"The evidence for {attribute} among: {listed} was verified more than "
                f"{scope.max_age_days} days ago."
            )
            reasons.append(Reason("evidence_too_old", message, path))
        if any(assurance_rank(f.assurance) < scope.min_rank for f in [*current, *expired]):
            message = (
                f"The evidence for {attribute} among: {listed} is below the required "
                f"assurance {scope.min_assurance}."
            )
            reasons.append(Reason("assurance_too_low", message, path))
        return _Outcome(passed=False, reasons=tuple(reasons), rank=None)

    def _none_of(self, attribute: str, values: Sequence[str], path: str) -> _Outcome:
        forbidden = frozenset(values)
        found = sorted(
            {f.value for f in self._current if f.attribute == attribute and f.value in forbidden}
        )
        if not found:
            return _PASS_WITHOUT_EVIDENCE
        message = f"The policy forbids {attribute} {', '.join(found)}."
        return _Outcome(False, (Reason("attribute_forbidden", message, path),), None)


@dataclass(frozen=True, slots=True)
class Validated:
    """A policy document this engine validated, with the digest of its canonical form: made
    by :func:`validated` only, so evaluating it skips both (a caller that evaluates one
    version many times, as issuance does, canonicalises it once)."""

    document: Mapping[str, Any]
    digest: str


def validated(policy: Mapping[str, Any]) -> Validated:
    """The policy document validated (PolicyDocumentError if invalid), for :func:`evaluate`."""
    document, digest = _validated(policy)
    return Validated(MappingProxyType(document), digest)


def evaluate(
    policy: Mapping[str, Any] | Validated,
    facts: Sequence[Fact],
    *,
    now: datetime,
    revoked: bool = False,
) -> Decision:
    """Evaluate a policy document for a subject's facts at the instant ``now``.

    The document is validated first (PolicyDocumentError if invalid; a document already
    validated in this process is recognised by its canonical form), so a malformed policy
    can never produce an eligible decision. ``now`` must be timezone-aware.
    """
    _require_aware("now", now)
    document: Mapping[str, Any]
    if isinstance(policy, Validated):
        document, digest = policy.document, policy.digest
    else:
        document, digest = _validated(policy)
    evaluator = _Evaluator(facts, now)
    # The document-level limits are the outermost scope; IAL1 when none is given.
    lowest = ASSURANCE_LEVELS[0]
    scope = evaluator.tighten(_Scope(assurance_rank(lowest), None, lowest, None), document)
    outcome = evaluator.rule(document["rule"], "$.rule", scope)
    reasons = outcome.reasons
    if revoked:
        revoked_reason = Reason("subject_revoked", "The subject's eligibility is revoked.", "$")
        reasons = (revoked_reason, *reasons)
    eligible = outcome.passed and not revoked
    if eligible and outcome.rank is None:  # pragma: no cover - excluded by validation
        raise AssertionError("a satisfied policy must rest on evidence")
    return Decision(
        eligible=eligible,
        reasons=() if eligible else reasons,
        assurance=ASSURANCE_LEVELS[outcome.rank - 1] if eligible and outcome.rank else None,
        policy=document["name"],
        policy_version=document["version"],
        policy_digest=digest,
    )


# Validated documents by digest (SHA-256 of the RFC 8785 canonical form): every token request
# evaluates the audience's policy, and validating it (JSON Schema and semantic checks) each
# time would repeat the same work. Two documents with one canonical form are one JSON value.
_VALIDATED: dict[str, dict[str, Any]] = {}
_VALIDATED_MAX = 64


def _validated(policy: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The validated document and its digest (PolicyDocumentError if invalid)."""
    try:
        digest = policy_digest(policy)
    except (TypeError, ValueError):  # no canonical form (PolicyDocumentError) or no mapping
        document = validate_policy_document(policy)  # raises the precise error
        return document, policy_digest(document)
    known = _VALIDATED.get(digest)
    if known is None:
        known = validate_policy_document(policy)
        if len(_VALIDATED) >= _VALIDATED_MAX:
            _VALIDATED.clear()
        _VALIDATED[digest] = known
    return known, digest
