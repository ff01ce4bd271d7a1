"""Step-by-step checks for auditors: each check a named result, pass, fail or skipped.

:func:`attest.verify._auditor.check_receipt` and :meth:`attest.verify.Verifier.verify` stop
at the first failure with one code. An auditor looking at a token or a receipt wants to see
every step: which passed, which one failed and what it said, and which were not reached.
These functions run the same checks, in the same order, and report each of them; a step
after a failure is ``skipped`` (never claimed passed), because what it would check rests on
what failed before it. Standard library and ``cryptography`` only, like the verifier.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from ._errors import InvalidToken
from ._jose import b64decode
from ._sources import StaticJWKS
from ._statuslists import StatusLists
from ._tlog import LogError
from ._verifier import Verifier

__all__ = [
    "NOT_REACHED",
    "Check",
    "GivenStatusLists",
    "Outcome",
    "first_failure",
    "run_steps",
    "token_attestation_check",
    "token_checks",
    "token_kid",
    "token_payload",
]

Outcome = Literal["pass", "fail", "skipped"]
NOT_REACHED = "not checked: an earlier check failed"


@dataclass(frozen=True, slots=True)
class Check:
    """One step of a check: ``name`` is stable (tests and templates key on it), ``title``
    is for people, ``code`` is the failure's stable reason code (``LogError.code`` or
    ``InvalidToken.code``)."""

    name: str
    title: str
    outcome: Outcome
    message: str
    code: str | None = None


S = TypeVar("S")

#: A step: (name, title, function of the shared state that returns the pass message or
#: raises LogError).
Step = tuple[str, str, Callable[[S], str]]


def run_steps(steps: Sequence[Step[S]], state: S) -> list[Check]:
    """Run ``steps`` in order on ``state``; after the first failure the rest are skipped.

    A receipt is untrusted input: a value of an unexpected type that slips past a step's
    own checks (a TypeError, KeyError, AttributeError) fails that step as
    ``malformed_receipt`` instead of escaping."""
    results: list[Check] = []
    failed = False
    for name, title, step in steps:
        if failed:
            results.append(Check(name, title, "skipped", NOT_REACHED))
            continue
        try:
            message = step(state)
        except LogError as exc:
            failed = True
            results.append(Check(name, title, "fail", str(exc), exc.code))
        except (TypeError, KeyError, AttributeError, ValueError):
            failed = True
            results.append(
                Check(name, title, "fail", "the receipt is malformed here", "malformed_receipt")
            )
        else:
            results.append(Check(name, title, "pass", message))
    return results


# -- tokens ------------------------------------------------------------------------------


class GivenStatusLists(StatusLists):
    """The :class:`StatusLists` hook over Status List Tokens already at hand (``{uri:
    compact JWS}``), e.g. read from the issuer's own status service: each list gets every
    check a verifier fetching it would make (under the issuer, signature by the verifier's
    key set, ``typ``, ``sub``, ``exp``, index in range), without a network request."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        super().__init__()
        self._given = dict(tokens)

    def _download(self, uri: str, now: float) -> Any:
        token = self._given.get(uri)
        if token is None:
            raise ValueError("no Status List Token is at hand for this URI")
        return self._check(token, uri, now)


#: The verifier's checks, grouped in the order it runs them (attest.verify docstring:
#: size, structure, header, key, signature; payload and claims; then the status-list hook
#: and the DPoP proof of a bound token). A code names the group that failed.
_TOKEN_GROUPS: tuple[tuple[str, str, frozenset[str]], ...] = (
    (
        "signature",
        "Signature and key",
        frozenset(
            {
                "malformed",
                "too_large",
                "wrong_type",
                "forbidden_header",
                "unsupported_algorithm",
                "unknown_key",
                "bad_signature",
                "key_source_unavailable",
            }
        ),
    ),
    (
        "claims",
        "Claims",
        frozenset(
            {
                "expired",
                "not_yet_valid",
                "issued_in_future",
                "wrong_issuer",
                "wrong_audience",
                "missing_claim",
                "invalid_claim",
                "lifetime_too_long",
                "policy_not_allowed",
                "insufficient_assurance",
            }
        ),
    ),
    ("status", "Status-list entry", frozenset({"revoked", "suspended", "status_unavailable"})),
)


def token_payload(token: str) -> dict[str, Any] | None:
    """The token's payload as JSON, unverified (None if it has none). Only for choosing
    what to check against (the audience, the status list to read) and for display after
    the signature has verified: never a decision by itself."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(b64decode(parts[1]))
    except (InvalidToken, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _when(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**40:
        return datetime.fromtimestamp(value, UTC).isoformat()
    return "?"


def _passed(name: str, claims: Mapping[str, Any], kid: str) -> str:
    if name == "signature":
        return f"signed by key {kid}, published in the issuer's key set; the signature verifies"
    if name == "claims":
        return (
            f"issuer, audience {claims.get('aud')!s}, type and lifetime as required; "
            f"valid from {_when(claims.get('nbf'))} until {_when(claims.get('exp'))}"
        )
    ref = (claims.get("status") or {}).get("status_list") or {}
    if not ref:
        return "the token names no status-list entry"
    return f"entry {ref.get('idx')} of {ref.get('uri')} is VALID"


def token_checks(
    token: str,
    *,
    issuer: str,
    jwks: Mapping[str, Any],
    status_lists: Mapping[str, str],
    now: float,
    leeway: float = 5,
) -> list[Check]:
    """Check a token as a verifier of ``issuer`` would with the key set ``jwks`` and the
    Status List Tokens ``status_lists``, at ``now`` (unix seconds), reporting each group.

    The audience is taken from the token itself (a console checks tokens of every
    audience): the ``aud`` claim must still be a single string. A bound token's DPoP proof
    belongs to the request it was sent with, so holder binding is reported, not checked."""
    payload = token_payload(token) or {}
    audience = payload.get("aud")
    verifier = Verifier(
        issuer=issuer,
        audience=audience if isinstance(audience, str) and audience else "-",
        keys=StaticJWKS(jwks),
        leeway=leeway,
        cache_size=0,
        now=lambda: now,
        status=GivenStatusLists(status_lists),
    )
    failure: InvalidToken | None = None
    try:
        verifier.verify(token)
    except InvalidToken as exc:
        failure = exc
    kid = token_kid(token)
    results: list[Check] = []
    reached = True
    for name, title, codes in _TOKEN_GROUPS:
        if not reached:
            results.append(Check(name, title, "skipped", NOT_REACHED))
        elif failure is not None and failure.code in codes:
            results.append(Check(name, title, "fail", failure.message, failure.code))
            reached = False
        else:
            results.append(Check(name, title, "pass", _passed(name, payload, kid)))
    cnf = payload.get("cnf")
    if not reached:
        results.append(Check("binding", "Holder binding", "skipped", NOT_REACHED))
    elif isinstance(cnf, dict) and "jkt" in cnf:
        results.append(
            Check(
                "binding",
                "Holder binding",
                "skipped",
                f"bound to holder key {cnf['jkt']}: the resource server checks the DPoP "
                "proof sent with each request",
            )
        )
    else:
        results.append(Check("binding", "Holder binding", "skipped", "not bound to a holder key"))
    return results


def token_kid(token: str) -> str:
    """The header's ``kid`` (unverified), or "?"."""
    try:
        header = json.loads(b64decode(token.split(".", maxsplit=1)[0]))
    except (InvalidToken, ValueError, IndexError, AttributeError):
        return "?"
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else "?"


def token_attestation_check(token: str, record: Mapping[str, Any]) -> Check:
    """The attestation record the log proves is this token's: its ``token_sha256`` is the
    SHA-256 of the token's compact serialisation."""
    title = "Attestation of this token"
    digest = hashlib.sha256(token.encode("ascii", "replace")).hexdigest()
    if record.get("token_sha256") != digest:
        return Check(
            "attestation",
            title,
            "fail",
            "the attestation recorded for this jti is of another token (token_sha256 differs)",
            "token_mismatch",
        )
    return Check(
        "attestation",
        title,
        "pass",
        f"attestation {record.get('jti')} records this token's SHA-256",
    )


def first_failure(checks: Iterable[Check]) -> Check | None:
    """The failing check of a list, if any (at most one fails: the rest are skipped)."""
    return next((c for c in checks if c.outcome == "fail"), None)
