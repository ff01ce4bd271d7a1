"""DPoP proofs (RFC 9449) for holder-bound tokens, and the replay cache they need.

A token with ``cnf.jkt`` (RFC 7800 3.1, RFC 9449 6.1) is accepted only together with a DPoP
proof: a JWT signed by the holder's key, naming the request (``htm``, ``htu``), fresh
(``iat``), tied to the token (``ath``) and never seen before (``jti``). The checks follow
RFC 9449 section 4.3, each marked with its step.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import heapq
import re
import threading
import urllib.parse
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature

from . import _errors as e
from ._jose import b64decode, json_object
from ._jwk import VerificationKey, admit_holder_key
from .contract import ALGORITHMS

__all__ = [
    "DPOP_TYPE",
    "MAX_PROOF_BYTES",
    "MemoryReplayCache",
    "ReplayCache",
    "check_proof",
    "normalize_htu",
]

#: The only accepted ``typ`` of a DPoP proof (RFC 9449 4.2).
DPOP_TYPE = "dpop+jwt"
#: Proofs longer than this many characters are refused before any decoding.
MAX_PROOF_BYTES = 4096
_ALGORITHMS = frozenset(ALGORITHMS)
_MAX_JTI = 256  # characters; bounds what one replay-cache entry may hold
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class ReplayCache(Protocol):
    """Remembers DPoP proof ids per holder key; plug in a shared store for several processes.

    ``add`` must be atomic (check and insert in one step, e.g. Redis ``SET NX EX``). It may
    raise :class:`~attest.verify.InvalidToken` to refuse (fail closed); any other exception is
    turned into ``invalid_dpop_proof``.
    """

    def add(self, key: tuple[str, str], expires_at: float, now: float) -> bool:
        """Record ``key`` = (jkt, jti) until ``expires_at``; False if it is already recorded."""
        ...


class MemoryReplayCache:
    """The in-process default: at most ``max_entries`` live entries, expired ones purged.

    When every slot holds a proof that is still inside its window, new proofs are refused
    (``invalid_dpop_proof``) rather than evicting a live entry, which would let a replay in.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError("max_entries must be an integer >= 1")
        self.max_entries = max_entries
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, key: tuple[str, str], expires_at: float, now: float) -> bool:
        """Record ``key`` until ``expires_at``; False if it is recorded and not expired."""
        with self._lock:
            heap, expiry = self._heap, self._expiry
            while heap and heap[0][0] <= now:
                when, old = heapq.heappop(heap)
                if expiry.get(old) == when:
                    del expiry[old]
            seen = expiry.get(key)
            if seen is not None and seen > now:
                return False
            if len(expiry) >= self.max_entries:
                raise e.InvalidDPoPProof("replay cache is full; proof refused")
            expiry[key] = expires_at
            heapq.heappush(heap, (expires_at, key))
            return True


def _normalize_pct(match: re.Match[str]) -> str:
    # RFC 3986 6.2.2.1-2: hex digits upper case; unreserved characters decoded.
    byte = int(match.group(0)[1:], 16)
    return chr(byte) if byte in _UNRESERVED else match.group(0).upper()


@functools.lru_cache(maxsize=1024)
def normalize_htu(uri: str) -> str | None:
    """``scheme://host[:port]/path`` per RFC 9449 4.3 step 9, or None when not an http(s) URI.

    Query and fragment are dropped; scheme and host are lower-cased, a default port removed,
    an empty path becomes ``/`` and percent-encodings are normalised (RFC 3986 6.2.2-6.2.3).
    """
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if not uri.isascii() or any(c.isspace() for c in uri):
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = _PCT.sub(_normalize_pct, parts.path) or "/"
    return f"{scheme}://{netloc}{path}"


@functools.lru_cache(maxsize=1024)
def _parse_proof_header(header_b64: str) -> tuple[VerificationKey, str]:
    """Decode and check a proof header segment: (holder key, its RFC 7638 thumbprint).

    Memoised: a holder signs every proof with the same header. Refusals are never cached.
    """
    header = json_object(b64decode(header_b64), "proof header")
    # RFC 7515 4.1.11: no extension is understood, so any crit is refused.
    if "crit" in header:
        raise e.InvalidDPoPProof("crit header is not accepted")
    # RFC 9449 4.3 step 4: typ is exactly dpop+jwt.
    if header.get("typ") != DPOP_TYPE:
        raise e.InvalidDPoPProof(f"proof typ must be {DPOP_TYPE!r}")
    # RFC 9449 4.3 step 5: an asymmetric algorithm we accept; never none or a MAC.
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _ALGORITHMS:
        raise e.InvalidDPoPProof("proof alg must be ES256 or EdDSA")
    # RFC 9449 4.3 step 7 / 4.2: jwk is a public key (no private members), fit for alg.
    try:
        key, jkt = admit_holder_key(header.get("jwk"))
    except (ValueError, TypeError, OverflowError) as exc:
        raise e.InvalidDPoPProof(f"proof jwk refused: {exc}") from exc
    if key.alg != alg:
        raise e.InvalidDPoPProof("proof alg is not the algorithm of its jwk")
    return key, jkt


def check_proof(
    proof: object,
    *,
    token: str,
    jkt: str,
    method: str,
    url: str,
    now: float,
    leeway: float,
    max_age: float,
    replay: ReplayCache,
) -> None:
    """Check ``proof`` for ``token`` bound to ``jkt`` in the request ``method url``.

    Raises ``invalid_dpop_proof``, ``dpop_key_mismatch`` or ``dpop_replay``; returns None.
    """
    # RFC 9449 4.3 step 2: one well-formed compact JWS (size capped before decoding).
    if not isinstance(proof, str):
        raise e.InvalidDPoPProof("proof must be a string")
    if len(proof) > MAX_PROOF_BYTES:
        raise e.InvalidDPoPProof(f"proof longer than {MAX_PROOF_BYTES} bytes")
    segments = proof.split(".")
    if len(segments) != 3 or not all(segments) or not proof.isascii():
        raise e.InvalidDPoPProof("proof is not a compact JWS of three base64url segments")
    header_b64, payload_b64, signature_b64 = segments
    try:
        key, proof_jkt = _parse_proof_header(header_b64)
        signature = b64decode(signature_b64)
        payload_raw = b64decode(payload_b64)
    except e.MalformedToken as exc:
        raise e.InvalidDPoPProof(f"proof malformed: {exc.message}") from exc
    # RFC 9449 4.3 step 13 / 6.1: the proof key is the key the token is bound to.
    if proof_jkt != jkt:  # public values: no timing concern
        raise e.DPoPKeyMismatch("proof is signed by a key other than the token's cnf.jkt")
    # RFC 9449 4.3 step 6: the signature verifies with the jwk header's key.
    if len(signature) != 64:
        raise e.InvalidDPoPProof("proof signature must be 64 bytes")
    try:
        key.verify(signature, proof[: len(header_b64) + 1 + len(payload_b64)].encode())
    except (InvalidSignature, ValueError, TypeError, OverflowError) as exc:
        raise e.InvalidDPoPProof("proof signature does not verify") from exc
    try:
        claims = json_object(payload_raw, "proof payload")
    except e.MalformedToken as exc:
        raise e.InvalidDPoPProof(f"proof malformed: {exc.message}") from exc
    _check_proof_claims(
        claims, token=token, method=method, url=url, now=now, leeway=leeway, max_age=max_age
    )
    # RFC 9449 11.1: a jti is accepted once per key within the window in which iat passes.
    expires_at = claims["iat"] + max_age + leeway
    try:
        fresh = replay.add((jkt, claims["jti"]), expires_at, now)
    except e.InvalidToken:
        raise
    except Exception as exc:  # a shared store that fails: fail closed, with our error type
        raise e.InvalidDPoPProof("replay cache unavailable") from exc
    if not fresh:
        raise e.DPoPReplay("proof jti already used")


def _check_proof_claims(
    claims: dict[str, Any],
    *,
    token: str,
    method: str,
    url: str,
    now: float,
    leeway: float,
    max_age: float,
) -> None:
    # RFC 9449 4.3 step 3 / 4.2: jti, htm, htu, iat, and ath when a token is presented.
    jti, htm, htu, iat, ath = (claims.get(n) for n in ("jti", "htm", "htu", "iat", "ath"))
    if type(jti) is not str or not jti or len(jti) > _MAX_JTI:
        raise e.InvalidDPoPProof(f"proof jti must be a string of 1 to {_MAX_JTI} characters")
    if type(htm) is not str or type(htu) is not str or type(ath) is not str:
        raise e.InvalidDPoPProof("proof htm, htu and ath must be strings")
    if type(iat) is not int or not 0 < iat < 2**40:
        raise e.InvalidDPoPProof("proof iat must be a positive JSON integer")
    # RFC 9449 4.3 step 8: htm is the request's method (case-sensitive, RFC 9110 9.1).
    if htm != method:
        raise e.InvalidDPoPProof("proof htm does not match the request method")
    # RFC 9449 4.3 step 9: htu is the request URI without query and fragment.
    expected = normalize_htu(url)
    if expected is None:
        raise ValueError("url must be an absolute http(s) URL")
    if normalize_htu(htu) != expected:
        raise e.InvalidDPoPProof("proof htu does not match the request URI")
    # RFC 9449 4.3 step 11 / 11.1: iat within [now - max_age - leeway, now + leeway].
    if iat > now + leeway:
        raise e.InvalidDPoPProof("proof iat is in the future")
    if iat < now - max_age - leeway:
        raise e.InvalidDPoPProof("proof is too old")
    # RFC 9449 4.3 step 12 / 4.2: ath = base64url(SHA-256(ASCII(access token))).
    digest = hashlib.sha256(token.encode("ascii")).digest()
    expected_ath = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    if ath != expected_ath:
        raise e.InvalidDPoPProof("proof ath does not match the token")
