"""The status-list hook: is the entry a token points to (``status.status_list``) revoked?

The token format carries ``{"status": {"status_list": {"idx": <int>, "uri": "<url>"}}}``
(IETF OAuth Token Status List). How a list is fetched and cached is up to the hook; this
module defines the interface and an in-memory implementation for air-gapped services and
tests.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Mapping
from typing import Protocol

from ._errors import InvalidToken
from ._jose import b64decode

__all__ = ["LocalStatusList", "StatusHook", "entry_value"]

_BITS = (1, 2, 4, 8)
_MAX_LIST_BYTES = 1 << 24  # decompressed; a list of 16 Mi one-byte entries at most


class StatusHook(Protocol):
    """What a :class:`~attest.verify.Verifier` asks about a token's status-list entry.

    Return True when the entry at ``idx`` of the list at ``uri`` says the token must not be
    accepted (any status other than VALID). Raise :class:`~attest.verify.InvalidToken` to
    refuse with a code of your own; any other exception (list unreachable, index out of range)
    refuses the token with ``status_unavailable``: the check fails closed.
    """

    def is_revoked(self, uri: str, idx: int) -> bool:
        """True when the token at ``idx`` of the list at ``uri`` is not VALID."""
        ...


class LocalStatusList:
    """Status lists held in memory, by URI, in the draft's ``{"bits", "lst"}`` form.

    ``lst`` is base64url of the zlib-compressed byte array (Token Status List 4.1); entry
    ``idx`` is ``bits`` wide, least significant bits first. 0 is VALID; the Verifier refuses 2
    (SUSPENDED) as ``suspended`` and 1 (INVALID) and every other value as ``revoked``
    (through :meth:`status_of`). ``update`` swaps a list atomically.
    """

    def __init__(self, lists: Mapping[str, tuple[int, str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._lists: dict[str, tuple[int, bytes]] = {}
        for uri, (bits, lst) in (lists or {}).items():
            self.update(uri, bits, lst)

    def update(self, uri: str, bits: int, lst: str) -> None:
        """Install (or replace) the list at ``uri``; ValueError if it is not a valid list."""
        if bits not in _BITS:
            raise ValueError("bits must be 1, 2, 4 or 8")
        try:
            decompressor = zlib.decompressobj()
            raw = decompressor.decompress(b64decode(lst), _MAX_LIST_BYTES + 1)
        except (zlib.error, InvalidToken) as exc:  # b64decode raises MalformedToken
            raise ValueError("status list is not base64url zlib data") from exc
        if len(raw) > _MAX_LIST_BYTES or decompressor.unconsumed_tail:
            raise ValueError("status list too large")
        with self._lock:
            self._lists[uri] = (bits, raw)

    def status_of(self, uri: str, idx: int) -> int:
        """The value of entry ``idx`` (0 VALID, 1 INVALID, 2 SUSPENDED, ...); KeyError or
        IndexError when there is no entry."""
        bits, raw = self._lists[uri]
        return entry_value(bits, raw, idx)

    def is_revoked(self, uri: str, idx: int) -> bool:
        """True when entry ``idx`` is not VALID; KeyError/IndexError when there is no entry."""
        return self.status_of(uri, idx) != 0


def entry_value(bits: int, raw: bytes, idx: int) -> int:
    """Entry ``idx`` of a decompressed list of ``bits``-wide entries, LSB first (draft 4.1)."""
    position = idx * bits
    if idx < 0 or position // 8 >= len(raw):
        raise IndexError("status list index out of range")
    return (raw[position // 8] >> (position % 8)) & ((1 << bits) - 1)
