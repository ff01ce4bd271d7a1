"""Request ids, the access log and request timing, for every HTTP answer.

:class:`RequestLog` wraps the application's ASGI handler (outside routing, so unknown paths
and problem answers pass through it too). For each request it

* takes the id from an incoming ``X-Request-Id`` when it is 1 to 128 characters of
  ``A-Z a-z 0-9 . _ : -`` (anything else is ignored and a fresh id is made), keeps it in
  :data:`REQUEST_ID` for every log line written while the request runs, and returns it in
  the ``X-Request-Id`` response header;
* writes one access line on the ``attest.access`` logger at INFO (method, path with any
  query string redacted, status, duration) once the answer is sent;
* reports the route template, method, status and duration to ``observe`` (the latency
  histogram of ``/metrics``).

:func:`configure_logging` sets up the process's log output: ``text`` or ``json`` (one object
per line), with :class:`attest.http.redaction.RedactSecrets` on the handler.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from attest.http.redaction import RedactSecrets, redact_target

__all__ = [
    "ACCESS_LOGGER",
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "RequestLog",
    "configure_logging",
    "request_id_of",
]

REQUEST_ID_HEADER = "X-Request-Id"
ACCESS_LOGGER = "attest.access"
#: The id of the request being answered, for log lines ("-" outside a request).
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_HEADER = REQUEST_ID_HEADER.lower().encode()
#: The route label of a request that matched no route (so unknown paths add one series).
UNMATCHED = "unmatched"

access_log = logging.getLogger(ACCESS_LOGGER)

Observer = Callable[[str, str, int, float], None]


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-Id`` when it is acceptable, else a fresh one."""
    for name, value in headers:
        if name == _HEADER:
            if _VALID_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


class RequestLog:
    """ASGI middleware: request id, access line, latency observation (see module doc)."""

    def __init__(self, app: Any, *, observe: Observer | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id_of(scope["headers"])
        header = (_HEADER, rid.encode("ascii"))
        token = REQUEST_ID.set(rid)
        status = 500  # what the client sees when the app ends without answering

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or UNMATCHED
            if self.observe is not None:
                self.observe(route, scope["method"], status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                target = redact_target(scope["path"], scope.get("query_string", b""))
                duration_ms = round(elapsed * 1000, 3)
                access_log.info(
                    '"%s %s" %d %.1fms',
                    scope["method"],
                    target,
                    status,
                    duration_ms,
                    extra={
                        "method": scope["method"],
                        "path": target,
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )
            REQUEST_ID.reset(token)


_ACCESS_FIELDS = ("method", "path", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (+ access fields,
    + ``exception`` with the traceback when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        for name in _ACCESS_FIELDS:
            if hasattr(record, name):
                doc[name] = getattr(record, name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.request_id = REQUEST_ID.get()
        return super().format(record)


#: Loggers that bring their own handlers (the ASGI servers'): routed to ours instead.
_SERVER_LOGGERS = (
    "_granian",
    "granian.access",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "litestar",
)


def configure_logging(level: str, fmt: str, *, secrets: Iterable[str | None] = ()) -> None:
    """The process's log output on stderr: ``fmt`` ``text`` or ``json``, at ``level``, with
    every line scrubbed of credentials and of the literal ``secrets`` (configured values)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            _TextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(RedactSecrets(secrets))
    # No record needs the thread or process names, nor the caller's file and line (no format
    # shows them): skip looking them up on every line (the logging HOWTO's "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    logging.captureWarnings(True)  # warnings become log lines (JSON too), scrubbed alike
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
