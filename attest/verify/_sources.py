"""Key sources for a Verifier: what one must provide, a fixed JWKS and a JWKS file on disk."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
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
    """A JWKS file on disk (air-gapped bundle); reloaded when its mtime, size or inode change.

    An unreadable or invalid file fails closed (``key_source_unavailable``) until it changes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._set: KeySet | None = None
        self._error = "not loaded yet"

    @property
    def rejected(self) -> list[tuple[str | None, str]]:
        """Keys refused from the current file, as ``(kid, reason)``."""
        return list(self._set.rejected) if self._set is not None else []

    def _current(self) -> KeySet:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise KeySourceUnavailable(f"JWKS file unreadable: {exc.strerror}") from exc
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._reload(stamp)
        if self._set is None:
            raise KeySourceUnavailable(self._error)
        return self._set

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
        """The admitted key named ``kid`` in the file as it is now, or None."""
        return self._current().keys.get(kid)

    def fetch(self, kid: str, now: float) -> None:
        """Reload the file if it changed."""
        self._current()
