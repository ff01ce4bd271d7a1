"""RemoteJWKS: a JWKS fetched over HTTP(S), cached per Cache-Control, refreshed ahead."""

from __future__ import annotations

import logging
import math
import re
import threading
import urllib.error
import urllib.parse
import urllib.request

from ._errors import KeySourceUnavailable
from ._jwk import KeySet, VerificationKey, parse_jwks
from ._sources import MAX_JWKS_BYTES, NeedsFetchError, load_json

__all__ = ["RemoteJWKS"]

logger = logging.getLogger("attest.verify")

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


class RemoteJWKS:
    """A JWKS fetched over HTTP(S) with ``urllib.request``, cached per ``Cache-Control``.

    - TTL: ``max-age`` clamped to ``[min_ttl, max_ttl]`` (floor 60 s, ceiling 86400 s by
      default: a typo'd ``max-age=1`` cannot turn every request into a fetch, and a year-long
      one cannot pin a retired key); ``no-store``/``no-cache`` give ``min_ttl``; no directive
      gives ``default_ttl`` (300 s). All in seconds.
    - Refresh ahead: once ``1 - refresh_ahead`` of the TTL has passed (by default the last
      10 %), the next lookup starts one refresh in a background thread and keeps answering
      from the current set, so no request waits for a routine refresh. Only a set that has
      expired (the refresh ahead failed or no lookup came in time) is fetched in-line.
    - An unknown ``kid`` triggers a refetch at most once per ``unknown_kid_refetch_interval``
      (30 s), measured from when the refetch completes: a flood of bogus kids costs one
      request per interval, and a rotated-in key is picked up without a restart.
    - Concurrent fetches are coalesced behind one lock: one request serves all waiters
      (threads, and ``verify_async`` callers, whose fetches run in worker threads).
    - Refreshes are conditional (``If-None-Match`` with the last ``ETag``); a 304 keeps the
      current set for another TTL.
    - When a refresh fails (connection refused, timeout, HTTP error, invalid JSON, not a
      JWKS), the last good set is kept for at most ``stale_for`` seconds (86400) past its
      expiry, retrying at most every ``unknown_kid_refetch_interval``; after that, and before
      any successful fetch, verification fails closed with ``key_source_unavailable``.
    - A key missing from a successfully fetched set is no longer trusted from that moment.
    """

    def __init__(
        self,
        url: str,
        *,
        min_ttl: float = 60,
        max_ttl: float = 86400,
        default_ttl: float = 300,
        unknown_kid_refetch_interval: float = 30,
        stale_for: float = 86400,
        timeout: float = 5,
        refresh_ahead: float = 0.1,
    ) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
            raise ValueError("RemoteJWKS needs an https:// (or http://) URL")
        if not 0 <= min_ttl <= default_ttl <= max_ttl:
            raise ValueError("need 0 <= min_ttl <= default_ttl <= max_ttl")
        if unknown_kid_refetch_interval < 0 or stale_for < 0 or timeout <= 0:
            raise ValueError("intervals must be >= 0 and timeout > 0")
        if not 0 <= refresh_ahead < 1:
            raise ValueError("refresh_ahead must be a fraction of the TTL in [0, 1)")
        self.url = url
        self.min_ttl, self.max_ttl, self.default_ttl = min_ttl, max_ttl, default_ttl
        self.unknown_kid_refetch_interval = unknown_kid_refetch_interval
        self.stale_for = stale_for
        self.timeout = timeout
        self.refresh_ahead = refresh_ahead
        self._lock = threading.Lock()
        self._background_lock = threading.Lock()
        self._background: threading.Thread | None = None
        self._refresh_at = math.inf  # refresh ahead (in the background) from this time
        self._set: KeySet | None = None
        self._fresh_until = -math.inf  # refresh due at this time
        self._usable_until = -math.inf  # fail closed from this time
        self._next_attempt = -math.inf  # back-off after a failed fetch
        self._last_kid_refetch = -math.inf
        self._etag: str | None = None
        # (set, until): before ``until`` a known kid needs no I/O and no refresh (see get)
        self._hot: tuple[KeySet, float] = (KeySet(keys={}), -math.inf)

    @property
    def rejected(self) -> list[tuple[str | None, str]]:
        """Keys refused from the current key set, as ``(kid, reason)``."""
        return list(self._set.rejected) if self._set is not None else []

    def _needs_io(self, kid: str | None, now: float) -> bool:
        if self._set is None or now >= self._fresh_until:
            return now >= self._next_attempt
        return (
            kid is not None
            and kid not in self._set.keys
            and now - self._last_kid_refetch >= self.unknown_kid_refetch_interval
        )

    def get(self, kid: str, now: float, *, fetch: bool = True) -> VerificationKey | None:
        """The admitted key named ``kid`` (fetching when due), or None."""
        # Per-request fast path: a fresh set, no refresh ahead due yet, and a known kid.
        # (One attribute read of an immutable pair, so a concurrent fetch is seen whole.)
        hot_set, until = self._hot
        if now < until:
            key = hot_set.keys.get(kid)
            if key is not None:
                return key
        if self._needs_io(kid, now):
            if not fetch:
                raise NeedsFetchError(kid)
            self.fetch(kid, now)
        elif now >= self._refresh_at and now >= self._next_attempt:
            self._refresh_in_background(now)
        key_set = self._set
        if key_set is None or now >= self._usable_until:
            raise KeySourceUnavailable(f"no usable key set from {self.url}")
        return key_set.keys.get(kid)

    def fetch(self, kid: str, now: float) -> None:
        """Fetch the key set if due (blocking); concurrent callers share one request."""
        with self._lock:
            if not self._needs_io(kid, now):
                return  # another caller fetched while we waited
            # An unknown-kid refetch is rate-limited from when it completes, so callers that
            # arrive while it is in flight wait on the lock for its result instead of failing.
            kid_refetch = self._set is not None and now < self._fresh_until
            try:
                self._fetch_locked(now)
            finally:
                if kid_refetch:
                    self._last_kid_refetch = now

    def _refresh_in_background(self, now: float) -> None:
        """Start one refresh-ahead thread unless one is running; never blocks the caller."""
        with self._background_lock:
            if self._background is not None and self._background.is_alive():
                return
            thread = threading.Thread(
                target=self._refresh_ahead_worker, args=(now,), name="attest-jwks", daemon=True
            )
            self._background = thread
            thread.start()

    def _refresh_ahead_worker(self, now: float) -> None:
        with self._lock:
            if now < self._refresh_at or now < self._next_attempt:
                return  # refreshed (or failed and backing off) while this thread started
            self._fetch_locked(now)

    def _fetch_locked(self, now: float) -> None:
        try:
            raw, cache_control, etag = self._download()
            # 304 Not Modified (RFC 9110 15.4.5) revalidates the set we hold; we only
            # send If-None-Match while holding one.
            key_set = parse_jwks(load_json(raw)) if raw is not None else self._set
        except (OSError, ValueError, RecursionError) as exc:
            # urllib's URLError/HTTPError and socket timeouts are OSErrors.
            logger.warning("JWKS fetch from %s failed: %s", self.url, exc)
            self._next_attempt = now + self.unknown_kid_refetch_interval
            return
        if key_set is None:  # a 304 we did not ask for
            logger.warning("JWKS fetch from %s: unexpected 304", self.url)
            self._next_attempt = now + self.unknown_kid_refetch_interval
            return
        ttl = self._ttl(cache_control)
        self._set = key_set
        if raw is not None:
            self._etag = etag
        self._fresh_until = now + ttl
        self._refresh_at = now + ttl * (1 - self.refresh_ahead) if self.refresh_ahead else math.inf
        self._usable_until = now + ttl + self.stale_for
        self._next_attempt = -math.inf
        self._hot = (key_set, min(self._fresh_until, self._refresh_at))

    def _download(self) -> tuple[bytes | None, str | None, str | None]:
        """GET the JWKS: (body or None on 304, Cache-Control, ETag)."""
        headers = {
            "Accept": "application/jwk-set+json, application/json",
            "User-Agent": "attest-verify",
        }
        if self._etag is not None and self._set is not None:
            headers["If-None-Match"] = self._etag  # RFC 9110 13.1.2
        request = urllib.request.Request(self.url, headers=headers)  # noqa: S310 - see __init__
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw: bytes = response.read(MAX_JWKS_BYTES + 1)
                return raw, response.headers.get("Cache-Control"), response.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None, exc.headers.get("Cache-Control"), None
            raise

    def _ttl(self, cache_control: str | None) -> float:
        if cache_control:
            if _NO_CACHE.search(cache_control):
                return self.min_ttl
            match = _MAX_AGE.search(cache_control)
            if match:
                return min(max(float(match.group(1)), self.min_ttl), self.max_ttl)
        return self.default_ttl
