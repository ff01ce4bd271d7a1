"""Leaf bytes of an audit event: RFC 8785 canonical JSON of its seven published fields.

Events are almost always plain: strings, safe integers, booleans, nulls, lists and objects
with ASCII keys. For those, RFC 8785 and compact, key-sorted JSON without ASCII escaping (as
msgspec's encoder writes it with sorted keys) are the same bytes: ASCII keys sort alike by
UTF-16 code units and by code points; both escape exactly the quote, the backslash and
U+0000..U+001F, with the same short forms (\\b \\t \\n \\f \\r) and lowercase \\u00xx
otherwise; both write a safe integer in decimal. msgspec writes them many times faster than
the rfc8785 package. Anything else (a float, a non-ASCII key, an integer beyond 2**53 - 1, a
string that is not valid UTF-8) goes to the rfc8785 package, which also raises its errors.
tests/log/test_leaves.py compares the two on generated events.
"""

from __future__ import annotations

from typing import Any

import msgspec
import rfc8785

from attest.audit.models import AuditEvent

__all__ = ["canonical_json", "leaf_bytes"]

#: RFC 8785 3.2.2.3: integers are I-JSON numbers, exact up to 2**53 - 1 in magnitude.
_SAFE = 2**53 - 1
_SORTED_JSON = msgspec.json.Encoder(order="sorted")


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_SAFE <= value <= _SAFE)
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list or kind is tuple:
        return all(_plain(v) for v in value)
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` (the module docstring)."""
    if _plain(value):
        try:
            return _SORTED_JSON.encode(value)
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 raises its error
    return rfc8785.dumps(value)


def leaf_bytes(event: AuditEvent) -> bytes:
    return canonical_json(event.leaf_fields())
