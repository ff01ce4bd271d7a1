"""No credential in a log line: query strings, API keys and configured secrets are redacted.

API keys are accepted only in the ``Authorization`` header, yet a client may still send one
as ``?api_key=...`` (and is refused); an access log would write it down. Three guards:

* :class:`RedactQueryStrings` rewrites every query string in an access-log record (the ASGI
  server's, ``uvicorn.access``) to ``?[redacted]``, and :func:`redact_target` does the same
  for attest's own access line (attest/http/requestlog.py);
* :class:`RedactSecrets`, on every handler `attest serve` installs, replaces anything shaped
  like an API key, any ``Bearer`` credential, and the literal values of the configured
  secrets (keystore passphrase, pairwise secret, PKCS#11 PIN, bootstrap admin key) in the
  final text of every record at every level, its traceback included.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = [
    "ACCESS_LOGGERS",
    "REDACTED",
    "RedactQueryStrings",
    "RedactSecrets",
    "install",
    "redact_target",
]

#: The loggers that write request lines (uvicorn's access log).
ACCESS_LOGGERS = ("uvicorn.access",)
REDACTED = "[redacted]"
_QUERY = re.compile(r"\?[^\s\"]*")
_REDACTED = "?" + REDACTED
# An API key anywhere (no anchors: inside a URL, a header dump, an exception message), its
# secret half alone, and whatever follows "Bearer".
_CREDENTIALS = re.compile(
    r"attest_[a-z0-9]{16}_[a-z0-9]{52}|(?<![a-z0-9])[a-z0-9]{52}(?![a-z0-9])"
    r"|(?i:bearer)\s+[^\s\"',;]+"
)
#: Configured secrets shorter than this are not searched for (they would redact noise).
_MIN_LITERAL = 4


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


def redact_target(path: str, query_string: bytes | str) -> str:
    """The request target as a log line may show it: the path, ``?[redacted]`` for a query."""
    return path + _REDACTED if query_string else path


def _credential(match: re.Match[str]) -> str:
    text = match.group(0)
    if text[:6].lower() == "bearer":
        return text.split(None, 1)[0] + " " + REDACTED
    return REDACTED


class RedactSecrets(logging.Filter):
    """Scrub credentials from a record's final message and traceback (a handler filter).

    The message is rendered once here (``msg % args``) and the record then carries the clean
    text with no arguments, so no formatter can render the secret again.
    """

    def __init__(self, literals: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.literals = sorted(
            {s for s in literals if s and len(s) >= _MIN_LITERAL}, key=len, reverse=True
        )

    def scrub(self, text: str) -> str:
        for literal in self.literals:
            if literal in text:
                text = text.replace(literal, REDACTED)
        return _CREDENTIALS.sub(_credential, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: show the template, not a crash
            message = str(record.msg)
        record.msg = self.scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


def install() -> None:
    """Add the query-string filter to the access loggers once (idempotent)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())
