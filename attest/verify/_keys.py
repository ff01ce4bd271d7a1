"""Key sets and key sources: JWKS admission (only keys fit for ES256/EdDSA) and caching."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ._errors import KeySourceUnavailable

__all__ = [
    "JWKSFile",
    "KeySet",
    "KeySource",
    "NeedsFetchError",
    "RemoteJWKS",
    "StaticJWKS",
    "VerificationKey",
    "admit_holder_key",
    "jwk_thumbprint",
    "parse_jwks",
]

logger = logging.getLogger("attest.verify")

#: A JWKS document larger than this is refused (file or HTTP body).
MAX_JWKS_BYTES = 1 << 20
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# Members that only private or symmetric JWKs carry (RFC 7518 6.2.2, 6.3.2, 6.4.1).
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """An admitted public key, parsed once; ``alg`` is the one algorithm it verifies."""

    kid: str
    alg: str  # "ES256" or "EdDSA"
    # The public coordinates; two keys are "the same key" when these are equal.
    fingerprint: tuple[str, ...]
    public_key: ec.EllipticCurvePublicKey | Ed25519PublicKey = field(compare=False)
    # verify(signature, signing_input) raises InvalidSignature; signature is the 64-byte JOSE
    # form (RFC 7518 3.4 R || S for ES256, RFC 8037 3.1 for EdDSA).
    verify: Callable[[bytes, bytes], None] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class KeySet:
    """An immutable set of admitted keys by ``kid`` and the keys refused, with reasons."""

    keys: Mapping[str, VerificationKey]
    rejected: tuple[tuple[str | None, str], ...] = ()


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


# ---------------------------------------------------------------------------------------
# Admission


def _b64url_decode(value: object, length: int) -> bytes:
    """Decode an unpadded base64url JWK member of exactly ``length`` bytes (RFC 7518 6.2.1)."""
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        raise ValueError("not a base64url string")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if len(raw) != length or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value:
        raise ValueError(f"not a canonical {length}-byte value")
    return raw


# Ed25519 curve constants (RFC 8032 5.1), used only to refuse small-order public keys.
_ED_P = 2**255 - 19
_ED_D = (-121665 * pow(121666, -1, _ED_P)) % _ED_P


def _ed25519_has_small_order(raw: bytes) -> bool:
    """True when the encoded point is not canonical, not on the curve, or [8]P is the identity."""
    y = int.from_bytes(raw, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _ED_P:
        return True  # non-canonical encoding
    # RFC 8032 5.1.3: recover x from y.
    u = (y * y - 1) % _ED_P
    v = (_ED_D * y * y + 1) % _ED_P
    x2 = u * pow(v, -1, _ED_P) % _ED_P
    x = pow(x2, (_ED_P + 3) // 8, _ED_P)
    if (x * x - x2) % _ED_P != 0:
        x = x * pow(2, (_ED_P - 1) // 4, _ED_P) % _ED_P
    if (x * x - x2) % _ED_P != 0:
        return True  # not on the curve
    if x == 0 and sign:
        return True  # non-canonical encoding of x = 0
    if x & 1 != sign:
        x = _ED_P - x
    px, py = x, y
    for _ in range(3):  # three doublings: [8]P, complete twisted Edwards addition (a = -1)
        t = _ED_D * px * px * py * py % _ED_P
        nx = 2 * px * py * pow(1 + t, -1, _ED_P) % _ED_P
        ny = (py * py + px * px) * pow(1 - t, -1, _ED_P) % _ED_P
        px, py = nx, ny
    return px == 0 and py == 1


def _admit(jwk: Mapping[str, Any], holder_kid: str | None = None) -> VerificationKey:
    """Parse one JWK into a verification key, or raise ValueError saying why it is refused.

    ``holder_kid`` is for a DPoP proof's ``jwk`` header, which needs no ``kid`` of its own.
    """
    kid = jwk.get("kid") if holder_kid is None else holder_kid
    if not isinstance(kid, str) or not kid:
        raise ValueError("missing kid")
    for member in _PRIVATE_MEMBERS:
        if member in jwk:
            raise ValueError(f"private or symmetric key material ({member!r})")
    kty = jwk.get("kty")
    if kty == "oct":
        raise ValueError("symmetric key (kty oct)")
    if kty == "RSA":
        raise ValueError("RSA keys are not accepted")
    # RFC 7517 4.2: a key marked for encryption is not a verification key.
    if "use" in jwk and jwk["use"] != "sig":
        raise ValueError(f"use is {jwk['use']!r}, not 'sig'")
    # RFC 7517 4.3: key_ops, when present, must allow verification.
    if "key_ops" in jwk:
        ops = jwk["key_ops"]
        if not isinstance(ops, list) or "verify" not in ops:
            raise ValueError("key_ops does not include 'verify'")
    crv = jwk.get("crv")
    key: ec.EllipticCurvePublicKey | Ed25519PublicKey
    if kty == "EC":
        if crv != "P-256":
            raise ValueError(f"unsupported EC curve {crv!r}")
        alg = "ES256"
        x = _b64url_decode(jwk.get("x"), 32)
        y = _b64url_decode(jwk.get("y"), 32)
        # cryptography checks the point is on P-256 (cofactor 1: no small subgroup).
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
        fingerprint: tuple[str, ...] = ("EC", "P-256", jwk["x"], jwk["y"])
    elif kty == "OKP":
        if crv != "Ed25519":
            raise ValueError(f"unsupported OKP curve {crv!r}")
        alg = "EdDSA"
        x = _b64url_decode(jwk.get("x"), 32)
        if _ed25519_has_small_order(x):
            raise ValueError("Ed25519 key is small-order, off-curve or non-canonical")
        key = Ed25519PublicKey.from_public_bytes(x)
        fingerprint = ("OKP", "Ed25519", jwk["x"])
    else:
        raise ValueError(f"unsupported kty {kty!r}")
    # RFC 8725 3.1: the key fixes its algorithm; a declared alg must agree with the key type.
    if "alg" in jwk and jwk["alg"] != alg:
        raise ValueError(f"alg {jwk['alg']!r} does not match a {kty} {crv} key")
    verify = _es256_verifier(key) if isinstance(key, ec.EllipticCurvePublicKey) else key.verify
    return VerificationKey(kid=kid, alg=alg, fingerprint=fingerprint, public_key=key, verify=verify)


def jwk_thumbprint(fingerprint: tuple[str, ...]) -> str:
    """RFC 7638 3 thumbprint (SHA-256, base64url) of an admitted key's public members."""
    # RFC 7638 3.2: only the required members, lexicographic order, no whitespace. The
    # values were checked to be base64url strings, so no JSON escaping is ever needed.
    if fingerprint[0] == "EC":
        _, crv, x, y = fingerprint
        canonical = f'{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}'
    else:
        _, crv, x = fingerprint
        canonical = f'{{"crv":"{crv}","kty":"OKP","x":"{x}"}}'
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def admit_holder_key(jwk: object) -> tuple[VerificationKey, str]:
    """Admit a DPoP ``jwk`` header (public P-256 or Ed25519 key): (key, RFC 7638 thumbprint).

    Raises ValueError saying why the key is refused (private members, other types, ...).
    """
    if not isinstance(jwk, Mapping):
        raise ValueError("jwk must be a JSON object")  # noqa: TRY004 - one error type for callers
    key = _admit(jwk, holder_kid="holder")
    return key, jwk_thumbprint(key.fingerprint)


# ECDSA over a SHA-256 digest computed by hashlib: the same check as
# ``ec.ECDSA(hashes.SHA256())`` on the data, without building a cryptography hash object
# per call (about 0.5 us of the per-token cost, see bench/bench_verify.py).
_ECDSA_PREHASHED_SHA256 = ec.ECDSA(Prehashed(hashes.SHA256()))
_sha256 = hashlib.sha256


def _der_integer(value: bytes) -> bytes:
    # X.690 8.3: minimal big-endian two's complement; a leading 0 keeps it positive.
    value = value.lstrip(b"\x00")
    if not value or value[0] & 0x80:
        value = b"\x00" + value
    return b"\x02" + len(value).to_bytes(1, "big") + value


def _jose_to_der(signature: bytes) -> bytes:
    """ECDSA-Sig-Value (RFC 3279 2.2.3) from a 64-byte R || S; lengths stay below 128."""
    body = _der_integer(signature[:32]) + _der_integer(signature[32:])
    return b"\x30" + len(body).to_bytes(1, "big") + body


# DER heads for the common case where neither R nor S starts with a zero byte, indexed by
# (R's top bit) | (S's top bit) << 1: an INTEGER whose top bit is set takes a 0x00 pad
# (X.690 8.3.2), so each of R and S is 32 or 33 content bytes. Other cases: _jose_to_der.
_DER_HEADS = (
    (b"\x30\x44\x02\x20", b"\x02\x20"),
    (b"\x30\x45\x02\x21\x00", b"\x02\x20"),
    (b"\x30\x45\x02\x20", b"\x02\x21\x00"),
    (b"\x30\x46\x02\x21\x00", b"\x02\x21\x00"),
)


def _es256_verifier(key: ec.EllipticCurvePublicKey) -> Callable[[bytes, bytes], None]:
    ec_verify = key.verify

    def verify(signature: bytes, signing_input: bytes) -> None:
        # RFC 7518 3.4: R || S (32 bytes each, big-endian) -> DER for OpenSSL.
        if len(signature) != 64:
            raise InvalidSignature("ES256 signatures are 64 bytes")
        r0, s0 = signature[0], signature[32]
        if r0 and s0:
            head, mid = _DER_HEADS[(r0 >> 7) | (s0 >> 6 & 2)]
            der = head + signature[:32] + mid + signature[32:]
        else:
            der = _jose_to_der(signature)
        ec_verify(der, _sha256(signing_input).digest(), _ECDSA_PREHASHED_SHA256)

    return verify


def parse_jwks(document: object) -> KeySet:
    """Admit the fit keys of a JWKS document (RFC 7517 5); refuse and log the others.

    Raises ValueError only when the document itself is not a JWKS (not an object with a
    ``keys`` array); individual unfit keys are reported in ``KeySet.rejected``.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        # ValueError on purpose: callers treat any unusable document the same way.
        raise ValueError("not a JWKS document (an object with a 'keys' array)")  # noqa: TRY004
    admitted: dict[str, VerificationKey] = {}
    rejected: list[tuple[str | None, str]] = []
    duplicates: set[str] = set()
    for jwk in document["keys"]:
        if not isinstance(jwk, Mapping):
            rejected.append((None, "not a JSON object"))
            continue
        raw_kid = jwk.get("kid")
        kid = raw_kid if isinstance(raw_kid, str) else None
        try:
            key = _admit(jwk)
        except (ValueError, TypeError, OverflowError) as exc:
            rejected.append((kid, str(exc) or type(exc).__name__))
            continue
        if key.kid in admitted or key.kid in duplicates:
            duplicates.add(key.kid)
            admitted.pop(key.kid, None)
            rejected.append((key.kid, "duplicate kid: every key with this kid is refused"))
            continue
        admitted[key.kid] = key
    for kid, reason in rejected:
        logger.warning("JWKS key refused: kid=%r: %s", kid, reason)
    return KeySet(keys=admitted, rejected=tuple(rejected))


def _load_json(raw: bytes) -> object:
    if len(raw) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    return json.loads(raw.decode("utf-8"))


# ---------------------------------------------------------------------------------------
# Sources


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
            key_set = parse_jwks(_load_json(raw))
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
            key_set = parse_jwks(_load_json(raw)) if raw is not None else self._set
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
