"""Key sources for a Verifier: what one must provide, a fixed JWKS and a JWKS file on disk."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ._errors import KeySourceUnavailable
from ._jwk import KeySet, VerificationKey, parse_jwks

__all__ = ["MAX_JWKS_BYTES", "JWKSFile", "KeySource", "NeedsFetchError", "StaticJWKS", "load_json"]

logger = logging.getLogger("attest.verify")

#: A JWKS document larger than this is refused (file or HTTP body).
MAX_JWKS_BYTES = 1 << 20


class NeedsFetchError(Exception):
    """Internal: a key lookup needs network I/O but the caller asked for none."""


class KeySource(Protocol):
    """What a :class:`~attest.verify.Verifier` needs from a key source."""

    @property
    def rejected(self) -> list[tuple[str | None, str]]:
        """Keys refused from the current key set, as ``(kid, reason)``."""
        ...

    def get(self, kid: str, now: float, *, fetch: bool = True) -> VerificationKey | None:
        """The admitted key named ``kid`` or None; raise KeySourceUnavailable if no set.

        With ``fetch=False`` a source that would need network I/O raises
        :class:`NeedsFetchError` instead (the async path then fetches in a thread).
        """
        ...

    def fetch(self, kid: str, now: float) -> None:
        """Do whatever I/O ``get(kid, now)`` would need (blocking)."""
        ...


def load_json(raw: bytes) -> object:
    """Parse a JWKS document's bytes (file or HTTP body), refusing one over MAX_JWKS_BYTES."""
    if len(raw) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    return json.loads(raw.decode("utf-8"))


class StaticJWKS:
    """A fixed JWKS document (a dict such as ``{"keys": [...]}``), parsed once."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._set = parse_jwks(document)

    @property
    def rejected(self) -> list[tuple[str | None, str]]:
        """Keys refused from the document, as ``(kid, reason)``."""
        return list(self._set.rejected)

    def get(self, kid: str, now: float, *, fetch: bool = True) -> VerificationKey | None:
        """The admitted key named ``kid``, or None."""
        return self._set.keys.get(kid)

    def fetch(self, kid: str, now: float) -> None:
        """Nothing to fetch."""


class JWKSFile:
    """A JWKS file on disk (air-gapped bundle), reloaded when its mtime, size or inode change.

    The file is looked at (one ``os.stat``) at most once per ``check_interval`` seconds
    (default 1 s, on the monotonic ``clock``), so a verify costs a dict lookup, as with
    :class:`StaticJWKS`; a rewritten file is picked up within ``check_interval``. A ``kid``
    the current set does not hold triggers a look at once, at most once per
    ``unknown_kid_check_interval`` seconds (default 0.05 s), so a key rotated into the file
    is found on its first token while a flood of bogus kids costs at most 20 stats a second.
    A changed file is parsed once; an unreadable or invalid file fails closed
    (``key_source_unavailable``) until it changes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        check_interval: float = 1.0,
        unknown_kid_check_interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= unknown_kid_check_interval <= check_interval:
            raise ValueError("need 0 <= unknown_kid_check_interval <= check_interval")
        self.path = os.fspath(path)
        self.check_interval = check_interval
        self.unknown_kid_check_interval = unknown_kid_check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._set: KeySet | None = None
        self._error = "not loaded yet"
        self._last_kid_check = -math.inf
        # (set or None, until): before ``until`` (monotonic) the file is not looked at again.
        # One attribute read of an immutable pair, so a concurrent reload is seen whole.
        self._hot: tuple[KeySet | None, float] = (None, -math.inf)

    @property
    def rejected(self) -> list[tuple[str | None, str]]:
        """Keys refused from the current file, as ``(kid, reason)``."""
        return list(self._set.rejected) if self._set is not None else []

    def _check(self, t: float) -> None:
        """Look at the file (stat, and reload if it changed); callers share one look."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except OSError as exc:
                self._set, self._stamp = None, None
                self._error = f"JWKS file unreadable: {exc.strerror}"
            else:
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if stamp != self._stamp:
                    self._reload(stamp)
            self._hot = (self._set, t + self.check_interval)

    def _reload(self, stamp: tuple[int, int, int]) -> None:
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(MAX_JWKS_BYTES + 1)
            key_set = parse_jwks(load_json(raw))
        except (OSError, ValueError, RecursionError) as exc:
            logger.warning("JWKS file %s refused: %s", self.path, exc)
            self._set, self._error = None, f"JWKS file invalid: {exc}"
        else:
            self._set = key_set
        self._stamp = stamp

    def get(self, kid: str, now: float, *, fetch: bool = True) -> VerificationKey | None:
        """The admitted key named ``kid`` in the file as last looked at, or None.

        ``now`` (the verifier's clock) is not used: file checks run on the monotonic clock.
        """
        t = self._clock()
        key_set, until = self._hot
        if t >= until:  # due: look at the file
            self._check(t)
            key_set = self._hot[0]
        elif key_set is not None:
            key = key_set.keys.get(kid)
            if key is not None:
                return key  # the per-request path: a known kid in a fresh set
        if key_set is not None and kid in key_set.keys:
            return key_set.keys[kid]
        # An unknown kid (or no usable set): look at the file at once, rate-limited.
        if t - self._last_kid_check >= self.unknown_kid_check_interval and t < until:
            self._last_kid_check = t
            self._check(t)
            key_set = self._hot[0]
        if key_set is None:
            raise KeySourceUnavailable(self._error)
        return key_set.keys.get(kid)

    def fetch(self, kid: str, now: float) -> None:
        """Look at the file now (blocking)."""
        self._check(self._clock())
