"""Strict JOSE decoding shared by tokens and DPoP proofs: base64url and duplicate-free JSON."""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from typing import Any

from . import _errors as e

__all__ = ["DECODER", "b64decode", "json_object", "json_text_object"]


class _DuplicateMemberError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateMemberError("duplicate member name")
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


# RFC 8259 4 says names SHOULD be unique; RFC 7515 5.2 step 4 lets us reject duplicates.
DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
# the C scanner json uses internally (not in typeshed)
_SCAN: Callable[[str, int], tuple[Any, int]] = DECODER.scan_once  # type: ignore[attr-defined]
# The same scanner without the duplicate check, for callers that rule duplicates out
# themselves (the token verifier counts strings; see Verifier._verify).
_SCAN_PLAIN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(  # type: ignore[attr-defined]
    parse_constant=_no_constants
).scan_once


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEXTET = {c: i for i, c in enumerate(_ALPHABET)}
# base64url -> base64 for binascii's strict decoder; "+", "/" and "=" (not unpadded
# base64url) become "!", which the strict decoder refuses, as it refuses every other
# non-alphabet character. The padding added after translation is the only "=".
_URL_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PAD = (b"", b"", b"==", b"=")
_a2b = binascii.a2b_base64


def b64decode(segment: str) -> bytes:
    """Decode one canonical, unpadded base64url segment or raise MalformedToken."""
    # RFC 7515 2 / 7.1: base64url without padding. A token has exactly one spelling: refuse
    # a length of 1 mod 4, stray trailing bits (RFC 4648 3.5) and any non-alphabet char.
    rem = len(segment) % 4
    if rem == 1 or not segment.isascii():
        raise e.MalformedToken("bad base64url segment")
    if rem and BAD_TAIL[rem << 8 | ord(segment[-1])]:
        raise e.MalformedToken("non-canonical base64url")
    try:
        return _a2b(segment.encode("ascii").translate(_URL_TO_STD) + _PAD[rem], strict_mode=True)
    except binascii.Error as exc:
        raise e.MalformedToken("bad base64url segment") from exc


_SEXTET_BYTES = {ord(c): i for c, i in _SEXTET.items()}


def _bad_tail(rem: int, last: int) -> bool:
    # RFC 4648 3.5 / RFC 7515 2: length 1 mod 4 is never base64; with 2 or 3 characters in
    # the last quantum, the unused low bits of the last character must be zero.
    if rem in (0, 1):
        return rem == 1
    return last not in _SEXTET_BYTES or bool(_SEXTET_BYTES[last] & (0x0F if rem == 2 else 0x03))


#: ``BAD_TAIL[len(segment) % 4 << 8 | segment[-1]]`` is 1 when an unpadded base64url segment
#: of that length cannot end with that byte (a table: one index per segment on the hot path).
BAD_TAIL = bytes(_bad_tail(rem, last) for rem in range(4) for last in range(256))


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object without duplicate members (MalformedToken)."""
    # RFC 7515 5.2 steps 3-4 / RFC 7519 7.2 steps 4 and 10: UTF-8 JSON object.
    try:
        text = raw.decode("utf-8")
    except ValueError as exc:
        raise e.MalformedToken(f"{what} is not UTF-8 JSON without duplicates") from exc
    return json_text_object(text, what)


def json_text_object(text: str, what: str) -> dict[str, Any]:
    """Like :func:`json_object` for text already decoded from UTF-8."""
    try:
        try:  # fast path: the C scanner over the whole text, no surrounding whitespace
            value, end = _SCAN(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):  # anything unusual: the full decoder decides (and explains)
            value = DECODER.decode(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError/JSONDecodeError too
        raise e.MalformedToken(f"{what} is not UTF-8 JSON without duplicates") from exc
    if not isinstance(value, dict):
        raise e.MalformedToken(f"{what} is not a JSON object")
    return value
