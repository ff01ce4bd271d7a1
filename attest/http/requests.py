"""Strict request bodies, once for every route: the request class the app uses.

Every JSON body a route reads goes through :meth:`StrictRequest.json`, which adds to the
framework's decoding (DESIGN.md, "HTTP API"):

- a body must be sent as ``application/json`` (or a ``+json`` type), else a 415 problem;
- an object with a member twice is a 400 problem (the last would silently win), as the
  verifier refuses for tokens;
- identifiers a client supplies (``external_ref``, ``name``, ``tenant``, at any depth) are
  normalised to Unicode NFC, so one identifier has one spelling, and refused with a 422 problem
  naming their JSON path when they hold control (C0, C1), format (bidirectional overrides and
  isolates, zero-width characters) or line/paragraph separator characters.

A client that goes away while it sends its body is logged at debug as a client disconnect,
not as an unhandled error with a traceback.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from typing import Any

from litestar import Request
from litestar.exceptions import InternalServerException

from attest.errors import AttestError, InvalidInput, UnprocessableInput

__all__ = [
    "IDENTIFIER_FIELDS",
    "ClientDisconnected",
    "DuplicateMember",
    "StrictRequest",
    "UnsupportedMediaType",
    "check_identifier",
]

log = logging.getLogger(__name__)

# What Litestar raises (a 500 InternalServerException) when the ASGI server reports the client
# gone before the end of the body; the message is the only thing that tells it apart.
_DISCONNECT_DETAIL = "client disconnected prematurely"

#: Body members holding identifiers a client chooses, checked wherever they appear.
IDENTIFIER_FIELDS = frozenset({"external_ref", "name", "tenant"})
_JSON_MEDIA_TYPE = re.compile(r"application/(?:[a-z0-9.+-]+\+)?json")
# Cc: C0, DEL and C1 controls; Cf: format characters (bidi embeddings, overrides, isolates and
# marks, zero-width space/joiners, word joiner, BOM); Cs: lone surrogates; Zl/Zp: U+2028/9.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class UnsupportedMediaType(AttestError):
    code = "unsupported-media-type"
    status = 415
    title = "Unsupported media type"


class ClientDisconnected(AttestError):
    """The client left before its body arrived; nobody reads the answer."""

    code = "client-disconnected"
    status = 400
    title = "Client disconnected"


class DuplicateMember(InvalidInput):
    code = "duplicate-member"
    title = "Duplicate JSON member"


class _Duplicate(Exception):
    def __init__(self, member: str) -> None:
        super().__init__(member)
        self.member = member


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen.add(key)
    return {}  # only the check matters; the framework's decoding gives the value


def check_identifier(value: str, path: str) -> str:
    """``value`` in NFC, or a 422 problem naming ``path`` if it holds a refused character."""
    normal = unicodedata.normalize("NFC", value)
    for char in normal:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise UnprocessableInput(
                f"{path} may not contain control, bidirectional-override or zero-width "
                f"characters (found U+{ord(char):04X}).",
                errors=[{"field": path, "message": f"refused character U+{ord(char):04X}"}],
            )
    return normal


def _normalise(value: Any, path: str) -> None:
    """Check and NFC-normalise identifier members in place, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}"
            if key in IDENTIFIER_FIELDS and isinstance(item, str):
                value[key] = check_identifier(item, inner)
            else:
                _normalise(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _normalise(item, f"{path}[{index}]")


class StrictRequest(Request[Any, Any, Any]):
    """The framework's request, with the body rules above applied to every JSON body."""

    async def body(self) -> bytes:
        try:
            return await super().body()
        except InternalServerException as exc:
            if exc.detail != _DISCONNECT_DETAIL:
                raise
            # Path only: a query string may carry a credential (it is never logged).
            log.debug("client disconnected during the body of %s %s", self.method, self.url.path)
            raise ClientDisconnected("The client disconnected before its body arrived.") from None

    async def json(self) -> Any:
        body = await self.body()
        if not body:
            return await super().json()
        media_type = self.content_type[0].strip().lower()
        if not _JSON_MEDIA_TYPE.fullmatch(media_type):
            raise UnsupportedMediaType(
                "Send the body as 'Content-Type: application/json'.",
                received=media_type or None,
            )
        value = await super().json()  # malformed JSON, bad UTF-8: the framework's 400
        try:
            json.loads(body, object_pairs_hook=_no_duplicates)
        except _Duplicate as dup:
            raise DuplicateMember(
                "An object in the body has a member twice; send each member once.",
                errors=[{"field": dup.member, "message": "duplicate member"}],
            ) from None
        except ValueError:
            # What the framework's decoder admits but the standard one does not (integers of
            # thousands of digits): bad input either way.
            raise InvalidInput("The request body is not acceptable JSON.") from None
        _normalise(value, "$")
        return value
