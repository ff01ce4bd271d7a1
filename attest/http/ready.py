"""Answers made once from ready bytes, for the busiest public reads (JWKS, status lists).

A handler that returns a :class:`~litestar.response.base.ASGIResponse` is sent as it is:
no ``Response`` conversion, no header merging per request. :class:`ReadyAnswers` keeps one
such answer per key, remade when the document behind it changes (compared by identity:
the services hand out the same object until they rebuild it).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from litestar.response.base import ASGIResponse

__all__ = ["ReadyAnswers", "if_none_match", "not_modified"]


def if_none_match(scope: Any) -> str:
    """The request's ``If-None-Match`` (empty if absent), read without parsing every header."""
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return str(value.decode("latin-1"))
    return ""


def not_modified(headers: Mapping[str, str]) -> ASGIResponse:
    """A 304 with the document's ``ETag`` and ``Cache-Control`` (RFC 9110 15.4.5)."""
    return ASGIResponse(status_code=304, headers=dict(headers))


class ReadyAnswers:
    """The last answer made per key, with the document it was made from."""

    def __init__(self, media_type: str, limit: int = 64) -> None:
        self._media_type = media_type
        self._limit = limit
        self._answers: dict[Hashable, tuple[object, ASGIResponse]] = {}

    def answer(
        self, key: Hashable, document: object, body: bytes, headers: Mapping[str, str]
    ) -> ASGIResponse:
        """The 200 answer for ``document`` (its ``body`` and ``headers``), made at most once."""
        kept = self._answers.get(key)
        if kept is not None and kept[0] is document:
            return kept[1]
        made = ASGIResponse(body=body, media_type=self._media_type, headers=dict(headers))
        if len(self._answers) >= self._limit:
            self._answers.clear()  # many lists asked at once: a bounded memo, not a store
        self._answers[key] = (document, made)
        return made
