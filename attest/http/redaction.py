"""No credential in a log line: the access log never shows a query string.

API keys are accepted only in the ``Authorization`` header, yet a client may still send one
as ``?api_key=...`` (and is refused); the ASGI server's access log would write it down. The
filter replaces every query string in an access-log record with ``?[redacted]``.
"""

from __future__ import annotations

import logging
import re

__all__ = ["ACCESS_LOGGERS", "RedactQueryStrings", "install"]

#: The loggers that write request lines (uvicorn's access log).
ACCESS_LOGGERS = ("uvicorn.access",)
_QUERY = re.compile(r"\?[^\s\"]*")
_REDACTED = "?[redacted]"


class RedactQueryStrings(logging.Filter):
    """Rewrite the record so that no query string survives, whatever the format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _QUERY.sub(_REDACTED, record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY.sub(_REDACTED, arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def install() -> None:
    """Add the filter to the access loggers once (idempotent)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())
