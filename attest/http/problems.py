"""RFC 9457 problem details, in one place, for every error the API returns.

Domain errors (:class:`attest.errors.AttestError`) carry their own code; framework
errors (bad JSON, wrong types, unknown routes, oversized bodies) are mapped by status.
Anything else is logged with a correlation id and answered with a generic 500 problem
that reveals nothing about the failure.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from attest.errors import PROBLEM_TYPE_PREFIX, AttestError, KeystoreFailure

__all__ = ["PROBLEM_MEDIA_TYPE", "exception_handlers", "problem_response"]

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

# Framework errors by status: (stable code, title).
_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("invalid-request", "Invalid request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response[bytes]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return Response(
        content=json.dumps(body, separators=(",", ":"), default=str).encode(),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


#: Seconds a client should wait before retrying a 503 (a dependency was unavailable).
RETRY_AFTER_SECONDS = 1


def _attest_error(request: Request[Any, Any, Any], exc: AttestError) -> Response[bytes]:
    headers = {"WWW-Authenticate": 'Bearer realm="attest"'} if exc.status == 401 else None
    if exc.status == 403 and exc.code == "insufficient-scope":
        headers = {"WWW-Authenticate": 'Bearer realm="attest", error="insufficient_scope"'}
    if exc.status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if exc.status == 429:
        headers = {"Retry-After": str(exc.extensions.get("retry_after", RETRY_AFTER_SECONDS))}
    return problem_response(
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        request.url.path,
        headers,
        **exc.extensions,
    )


def _validation_errors(extra: Any) -> list[dict[str, str]]:
    """Reduce Litestar's validation details to {field, message} pairs without echoing input."""
    errors: list[dict[str, str]] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                errors.append(
                    {"field": str(item.get("key", "")), "message": str(item.get("message", ""))}
                )
    return errors


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if status >= 500:
        return _internal_error(request, exc)
    code, title = _BY_STATUS.get(status, ("client-error", "Client error"))
    extensions: dict[str, Any] = {}
    detail = exc.detail if isinstance(exc.detail, str) else title
    if isinstance(exc, ValidationException):
        code, title = "invalid-request", "Invalid request"
        errors = _validation_errors(exc.extra)
        if errors:
            extensions["errors"] = errors
    # Litestar reports an undecodable body as a plain 400 ClientException, not a
    # ValidationException, so the malformed-JSON type is decided for any 400.
    if status == 400 and ("JSON" in detail or "decode" in detail.lower()):
        code, title = "malformed-json", "Malformed JSON body"
    if status == 413:
        detail = "The request body is larger than this service accepts."
    return problem_response(status, code, title, detail, request.url.path, None, **extensions)


def _unstorable_text(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # PostgreSQL text and jsonb cannot hold NUL (SQLSTATE 22021 / 22P05); such a value can
    # only come from the request (a path segment, a query parameter or a body string).
    return problem_response(
        400,
        "invalid-request",
        "Invalid request",
        "The request contains a character the service cannot store (such as NUL).",
        request.url.path,
    )


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    # The JSON decoder refuses a body nested past its recursion limit by raising
    # RecursionError, which the framework lets through; it is bad input, not a failure.
    return problem_response(
        400,
        "malformed-json",
        "Malformed JSON body",
        "The request body is nested too deeply.",
        request.url.path,
    )


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # The keystore or the database failed under a request: the client may retry, and
    # learns nothing of the cause (a keystore message names paths; it goes to the log).
    log.warning(
        "dependency unavailable on %s %s: %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
    )
    return problem_response(
        503,
        "unavailable",
        "Service unavailable",
        "A dependency of the service is unavailable; retry later.",
        request.url.path,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    incident = uuid.uuid4().hex
    log.error(
        "unhandled error %s on %s %s", incident, request.method, request.url.path, exc_info=exc
    )
    return problem_response(
        500,
        "internal",
        "Internal error",
        "The service failed to handle this request; it has been logged.",
        request.url.path,
        None,
        incident=incident,
    )


def _interface_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # asyncpg's InterfaceError is a misuse of the client (a bug: a 500) except when the
    # connection under it is gone: closed by a server restart or a dropped socket.
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError) or (
        "connection is closed" in str(exc) or "pool is closing" in str(exc)
    ):
        return _unavailable(request, exc)
    return _internal_error(request, exc)


#: Database and keystore failures a client may retry: 503 with Retry-After on every route
#: and every guard (the API-key lookup before a handler included), never a 500. Looked up
#: by the exception's class hierarchy, most specific first.
_RETRYABLE: tuple[type[Exception], ...] = (
    KeystoreFailure,
    # SQLSTATE class 08: the connection failed or was lost (ConnectionDoesNotExistError).
    asyncpg.PostgresConnectionError,
    # Class 57: operator intervention: a cancelled statement (statement_timeout, 57014),
    # an admin or crash shutdown (57P01, 57P02), a server still starting (57P03).
    asyncpg.exceptions.OperatorInterventionError,
    # Class 53: too many connections, out of memory, disk full.
    asyncpg.exceptions.InsufficientResourcesError,
    # Class 40: serialization failure, deadlock: the transaction rolled back as a whole.
    asyncpg.exceptions.TransactionRollbackError,
    # Lock wait cancelled by lock_timeout (55P03).
    asyncpg.exceptions.LockNotAvailableError,
    # Refused, reset or timed out sockets; asyncio.TimeoutError is TimeoutError, an OSError:
    # a pool acquire that waited past ATTEST_DB_POOL_TIMEOUT_MS, a statement past the
    # client's command_timeout.
    OSError,
)

exception_handlers: dict[type[Exception] | int, Any] = {
    AttestError: _attest_error,
    HTTPException: _http_error,
    asyncpg.CharacterNotInRepertoireError: _unstorable_text,
    asyncpg.UntranslatableCharacterError: _unstorable_text,
    RecursionError: _too_deep,
    **dict.fromkeys(_RETRYABLE, _unavailable),
    asyncpg.InterfaceError: _interface_error,
    Exception: _internal_error,
}
