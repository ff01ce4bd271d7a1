"""StatusLists: the ready ``status=`` hook for tokens of an attest issuer.

It fetches the Status List Token a token points to (draft-ietf-oauth-status-list 8),
checks it with the verifier's own key set, caches it for its ``ttl`` and answers the
token's entry. Checks (each refuses the list, and the token fails closed with
``status_unavailable`` while no valid list is at hand):

- the URI is under the verifier's issuer (``<issuer>/...``, https or http as the issuer);
- compact JWS; header exactly ``alg``, ``typ`` and ``kid``; ``typ`` ``statuslist+jwt``
  (draft 5.1); ``alg`` the algorithm of the key ``kid`` names in the verifier's key set;
  the signature verifies;
- claims: ``sub`` equal to the URI (draft 5.1), ``iat`` and ``exp`` integers with
  ``exp`` not passed (with the verifier's leeway), ``ttl`` a positive integer if present,
  ``status_list`` with ``bits`` in 1, 2, 4, 8 and ``lst`` base64url zlib data;
- the index is inside the list.

Entry values: 0 VALID; 1 INVALID -> ``revoked``; 2 SUSPENDED -> ``suspended``; any other
value -> ``revoked``. Concurrent fetches of one list are coalesced behind a lock per list;
``verify_async`` fetches in a worker thread. Standard library and ``cryptography`` only.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _errors as e
from ._jose import b64decode, json_object
from ._sources import KeySource, NeedsFetchError
from ._status import entry_value

__all__ = ["LIST_TYPE", "StatusFetchNeeded", "StatusLists"]

logger = logging.getLogger("attest.verify")

#: draft-ietf-oauth-status-list 5.1.
LIST_TYPE = "statuslist+jwt"
_MAX_LIST_TOKEN = 1 << 20  # bytes of the Status List Token itself
_MAX_LIST_BYTES = 1 << 24  # decompressed entries
_BITS = (1, 2, 4, 8)
_HEADER = frozenset({"alg", "typ", "kid"})

#: Set by Verifier.verify_async around its first attempt: no blocking I/O on the event loop.
NO_IO: contextvars.ContextVar[bool] = contextvars.ContextVar("attest_verify_no_io", default=False)


class StatusFetchNeeded(NeedsFetchError):
    """Internal: a status list must be fetched, and the caller (the event loop) may not."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri


@dataclass(frozen=True, slots=True)
class _List:
    bits: int
    raw: bytes
    fresh_until: float  # refetch after this (ttl)
    valid_until: float  # unusable after this (exp + leeway)


def _int(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if type(value) is not int or not 0 < value < 2**40:
        raise ValueError(f"{name} must be a JSON integer")
    return value


class StatusLists:
    """The ``status=`` hook of a :class:`~attest.verify.Verifier` for attest status lists.

    ``StatusLists()`` is bound by the Verifier it is given to (issuer, key set, leeway,
    clock); one instance serves one issuer. ``timeout`` (seconds) bounds a fetch;
    ``max_ttl`` caps how long a list is reused without refetching (seconds, default 300)
    and ``min_ttl`` floors it (default 1), whatever the list's ``ttl`` says.
    """

    def __init__(self, *, timeout: float = 5, min_ttl: float = 1, max_ttl: float = 300) -> None:
        if timeout <= 0 or not 0 < min_ttl <= max_ttl:
            raise ValueError("need timeout > 0 and 0 < min_ttl <= max_ttl")
        self.timeout = timeout
        self.min_ttl, self.max_ttl = min_ttl, max_ttl
        self._issuer: str | None = None
        self._keys: KeySource | None = None
        self._leeway = 0.0
        self._now: Callable[[], float] = time.time
        self._lists: dict[str, _List] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._retry_at: dict[str, float] = {}
        self._guard = threading.Lock()
        self.fetches = 0  # lists downloaded (for tests and metrics)

    def bind(
        self, *, issuer: str, keys: KeySource, leeway: float, now: Callable[[], float]
    ) -> None:
        """Called by the Verifier: the issuer whose lists are trusted and its key set."""
        if self._issuer is not None and self._issuer != issuer:
            raise ValueError("a StatusLists instance serves one issuer")
        self._issuer, self._keys, self._leeway, self._now = issuer, keys, leeway, now

    # -- the hook -------------------------------------------------------------------------

    def status_of(self, uri: str, idx: int) -> int:
        """The entry's value (0 VALID, 1 INVALID, 2 SUSPENDED); anything that goes wrong
        raises, and the Verifier then refuses with ``status_unavailable``."""
        now = self._now()
        if self._due(uri, now):
            if NO_IO.get():
                raise StatusFetchNeeded(uri)  # verify_async fetches in a thread and retries
            self.fetch(uri, now)
        entry = self._usable(uri, now)
        if entry is None:
            raise e.StatusUnavailable("no valid status list is at hand")
        try:
            return entry_value(entry.bits, entry.raw, idx)
        except IndexError as exc:
            raise e.StatusUnavailable("status list index out of range") from exc

    def is_revoked(self, uri: str, idx: int) -> bool:
        """True when the entry is not VALID (see :meth:`status_of`)."""
        return self.status_of(uri, idx) != 0

    def _due(self, uri: str, now: float) -> bool:
        """A fetch is due: no list yet, or its ttl passed (and no failed try just now)."""
        entry = self._lists.get(uri)
        if entry is not None and now < entry.fresh_until:
            return False
        return now >= self._retry_at.get(uri, -math.inf)

    def _usable(self, uri: str, now: float) -> _List | None:
        entry = self._lists.get(uri)
        return entry if entry is not None and now < entry.valid_until else None

    def fetch(self, uri: str, now: float) -> None:
        """Fetch and check the list at ``uri`` if due (blocking); concurrent callers for one
        list share one request. A failure keeps the last valid list until its ``exp``."""
        self._check_uri(uri)
        with self._guard:
            lock = self._locks.setdefault(uri, threading.Lock())
        with lock:
            if not self._due(uri, now):
                return  # fetched (or tried) by another caller while this one waited
            try:
                self._lists[uri] = self._download(uri, now)
            except (OSError, ValueError, TypeError, e.InvalidToken) as exc:
                # Tried again after min_ttl; meanwhile the last valid list (if any) answers.
                self._retry_at[uri] = now + self.min_ttl
                logger.warning("status list %s refused or unreachable: %s", uri, exc)

    def _check_uri(self, uri: str) -> None:
        if self._issuer is None or self._keys is None:
            raise e.StatusUnavailable("StatusLists is not bound to a Verifier")
        if not isinstance(uri, str) or not uri.startswith(self._issuer.rstrip("/") + "/"):
            raise e.StatusUnavailable("status list URI is not under the issuer")

    def _download(self, uri: str, now: float) -> _List:
        request = urllib.request.Request(  # noqa: S310 - the URI is under the issuer (checked)
            uri, headers={"Accept": "application/statuslist+jwt", "User-Agent": "attest-verify"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            body: bytes = response.read(_MAX_LIST_TOKEN + 1)
        self.fetches += 1
        if len(body) > _MAX_LIST_TOKEN:
            raise ValueError("status list token too large")
        return self._check(body.decode("ascii"), uri, now)

    def _check(self, token: str, uri: str, now: float) -> _List:
        assert self._keys is not None  # noqa: S101 - bound before any fetch (_check_uri)
        parts = token.split(".")
        if len(parts) != 3:
            raise ValueError("status list token is not a compact JWS")
        header = json_object(b64decode(parts[0]), "header")
        if set(header) != _HEADER:
            raise ValueError("status list token header must hold exactly alg, typ and kid")
        if header["typ"] != LIST_TYPE:
            raise ValueError("status list token typ is not statuslist+jwt")
        kid = header["kid"]
        key = self._keys.get(kid, now) if isinstance(kid, str) else None
        if key is None:
            raise ValueError("status list token is signed by an unknown key")
        if header["alg"] != key.alg:  # the key decides the algorithm (RFC 8725 3.1)
            raise ValueError("status list token alg is not its key's")
        try:
            key.verify(b64decode(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii"))
        except Exception as exc:  # cryptography's InvalidSignature, or a malformed one
            raise ValueError("status list token signature does not verify") from exc
        claims = json_object(b64decode(parts[1]), "payload")
        if claims.get("sub") != uri:
            raise ValueError("status list token sub is not its URI")
        _int(claims, "iat")
        exp = _int(claims, "exp")
        if exp <= now - self._leeway:
            raise ValueError("status list token has expired")
        ttl = claims.get("ttl", self.max_ttl)
        if (type(ttl) is not int and type(ttl) is not float) or not 0 < ttl < math.inf:
            raise ValueError("status list token ttl must be a positive number")
        lst = claims.get("status_list")
        if not isinstance(lst, dict) or lst.get("bits") not in _BITS:
            raise ValueError("status_list.bits must be 1, 2, 4 or 8")
        if not isinstance(lst.get("lst"), str):
            raise TypeError("status_list.lst must be a string")
        try:
            inflate = zlib.decompressobj()
            raw = inflate.decompress(b64decode(lst["lst"]), _MAX_LIST_BYTES + 1)
        except zlib.error as exc:
            raise ValueError("status_list.lst is not zlib data") from exc
        if len(raw) > _MAX_LIST_BYTES or inflate.unconsumed_tail:
            raise ValueError("status list too large")
        ttl = min(max(float(ttl), self.min_ttl), self.max_ttl)
        return _List(lst["bits"], raw, now + ttl, exp + self._leeway)
