"""The cache of tokens already verified: a hit re-checks time and key, then copies the claims.

:class:`TokenCache` is a base class of :class:`~attest.verify.Verifier` (like
:class:`~attest.verify._claims.ClaimChecks`) so that a lookup stays one method call on the
verifier, as it was before the split: the cached path is the fastest one there is.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, NamedTuple

from . import _errors as e
from ._jose import DECODER as _DECODER
from ._jwk import VerificationKey
from ._sources import KeySource

__all__ = ["Entry", "TokenCache", "copy_claims", "make_entry"]

_SCALARS = (str, int, float, bool, type(None))


class Entry(NamedTuple):
    payload: str
    claims: dict[str, Any]  # a private copy, never handed out
    flat: tuple[str, ...] | None  # claims holding flat objects; None: copy via the payload
    key: VerificationKey
    exp: int
    nbf: int
    iat: int


def make_entry(payload: str, claims: dict[str, Any], key: VerificationKey) -> Entry:
    """A cache entry; ``flat`` lets a hit copy the claims without parsing JSON again."""
    flat: tuple[str, ...] | None = ()
    for name, value in claims.items():
        if type(value) is dict and all(type(v) in _SCALARS for v in value.values()):
            flat += (name,)  # type: ignore[operator]
        elif type(value) not in _SCALARS:
            flat = None  # deeper structures: a hit re-parses the payload
            break
    private = copy_claims(claims, flat) if flat is not None else {}
    return Entry(payload, private, flat, key, claims["exp"], claims["nbf"], claims["iat"])


def copy_claims(claims: dict[str, Any], flat: tuple[str, ...]) -> dict[str, Any]:
    fresh = claims.copy()
    for name in flat:
        fresh[name] = fresh[name].copy()
    return fresh


class TokenCache:
    """A bounded LRU of verified tokens; the verifier supplies the attributes it reads."""

    keys: KeySource
    leeway: float
    cache_size: int
    _cache: OrderedDict[str, Entry]
    _cache_lock: threading.Lock

    def _cache_get(self, token: str, now: float, *, fetch: bool) -> dict[str, Any] | None:
        with self._cache_lock:
            entry = self._cache.get(token)
            if entry is None:
                return None
            self._cache.move_to_end(token)
        leeway = self.leeway
        # Re-check the time-dependent claims against ``now`` on every hit, so a cached token
        # is never accepted after it would have failed (same bounds as _check_claims).
        still_valid = entry.exp > now - leeway and entry.nbf <= now + leeway
        still_valid = still_valid and entry.iat <= now + leeway
        if still_valid:
            # The key must still be in the key set (the same key, not just the same kid).
            try:
                current = self.keys.get(entry.key.kid, now, fetch=fetch)
            except e.KeySourceUnavailable:
                current = None
            still_valid = current is entry.key or current == entry.key
        if not still_valid:
            with self._cache_lock:
                self._cache.pop(token, None)
            return None  # the full path reports the precise reason
        if entry.flat is not None:  # a fresh copy per call: callers may mutate it
            return copy_claims(entry.claims, entry.flat)
        result: dict[str, Any] = _DECODER.decode(entry.payload)
        return result

    def _cache_put(self, token: str, entry: Entry) -> None:
        with self._cache_lock:
            self._cache[token] = entry
            self._cache.move_to_end(token)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
