"""The service's exception root and its mapping to RFC 9457 problem details.

Every error the API can return is an :class:`AttestError` subclass with a stable
``code``; its problem ``type`` is ``urn:attest:problem:<code>``. The mapping to HTTP
lives in :mod:`attest.http.problems`, in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AttestError",
    "AudienceSuspended",
    "Conflict",
    "EvidenceRejected",
    "Forbidden",
    "FourEyesViolation",
    "InsufficientScope",
    "InvalidInput",
    "KeystoreFailure",
    "NotEligible",
    "NotFound",
    "RateLimited",
    "ServiceUnavailable",
    "Unauthenticated",
]

PROBLEM_TYPE_PREFIX = "urn:attest:problem:"


class AttestError(Exception):
    """Root of every error the service raises on purpose."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InvalidInput(AttestError):
    code = "invalid-request"
    status = 400
    title = "Invalid request"


class InvalidHolderKey(InvalidInput):
    """holder_jwk is not a public P-256 or Ed25519 signing key (issue 4: a 400 problem)."""

    code = "invalid-holder-key"
    title = "Holder key is not acceptable"


class UnprocessableInput(AttestError):
    code = "unprocessable"
    status = 422
    title = "Request cannot be processed"


class Unauthenticated(AttestError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class InsufficientScope(AttestError):
    code = "insufficient-scope"
    status = 403
    title = "Insufficient scope"


class Forbidden(AttestError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class FourEyesViolation(AttestError):
    code = "four-eyes"
    status = 403
    title = "A different reviewer must approve"


class AudienceSuspended(AttestError):
    code = "audience-suspended"
    status = 403
    title = "Audience is suspended"


class NotEligible(AttestError):
    code = "not-eligible"
    status = 403
    title = "Subject is not eligible"


class NotFound(AttestError):
    code = "not-found"
    status = 404
    title = "Not found"


class UnknownAudience(NotFound):
    code = "unknown-audience"
    title = "Audience is not registered"


class Conflict(AttestError):
    code = "conflict"
    status = 409
    title = "Conflict"


class EvidenceRejected(AttestError):
    code = "evidence-rejected"
    status = 422
    title = "Evidence rejected"


class RateLimited(AttestError):
    """Too many requests, or too many failed authentications for a key id: retry after
    ``retry_after`` seconds (the problem's Retry-After header)."""

    code = "rate-limited"
    status = 429
    title = "Too many requests"


class ServiceUnavailable(AttestError):
    """A dependency (the database, the keystore) cannot be used now: retry later."""

    code = "unavailable"
    status = 503
    title = "Service unavailable"


class KeystoreFailure(Exception):
    """Root of keystore failures (attest.keys.keystore.KeystoreError). Not an AttestError:
    its message names paths and tokens, so a request that meets one is answered with a
    generic 503 problem and the message goes to the log only (attest.http.problems)."""
