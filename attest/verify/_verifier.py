"""The token verifier: structure, header, signature, then claims; each check cites its RFC."""

from __future__ import annotations

import asyncio
import binascii
import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature

from . import _errors as e
from ._cache import Entry, TokenCache, make_entry
from ._claims import N_REQUIRED, ClaimChecks
from ._dpop import MemoryReplayCache, ReplayCache, check_proof, normalize_htu
from ._jose import _PAD, _SCAN_PLAIN, _URL_TO_STD, _a2b
from ._jose import BAD_TAIL as _BAD_TAIL
from ._jose import DECODER as _DECODER
from ._jose import b64decode as _b64decode
from ._jose import json_object as _json_object
from ._jose import json_text_object as _json_text_object
from ._sources import KeySource, NeedsFetchError, StaticJWKS
from ._status import StatusHook
from ._statuslists import NO_IO, StatusFetchNeeded
from .contract import ALGORITHMS, ASSURANCE_LEVELS, ASSURANCE_RANK, TOKEN_TYPE

__all__ = ["MAX_TOKEN_BYTES", "Verifier"]

#: Tokens longer than this many characters are refused before any decoding.
MAX_TOKEN_BYTES = 8192
_ALGORITHMS = frozenset(ALGORITHMS)
# Header parameters that carry or point to a key or certificate (RFC 7515 4.1.3-4.1.8):
# never used, and a token that carries one is refused (RFC 8725 3.10 spirit).
_FORBIDDEN_HEADERS = ("jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256")
# The only members a header may hold (DESIGN.md "Eligibility token (v1)").
_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})


@functools.lru_cache(maxsize=256)
def _parse_header(header_b64: str) -> tuple[str, str]:
    """Decode and check a header segment; returns (alg, kid).

    A pure function of the segment, memoised: an issuer's tokens share a few headers.
    Refusals raise (and exceptions are never memoised).
    """
    header = _json_object(_b64decode(header_b64), "header")
    # RFC 7515 4.1.11 / RFC 8725 3.10: we understand no extension; any crit is refused.
    if "crit" in header:
        raise e.ForbiddenHeader("crit header is not accepted")
    # RFC 8725 3.10 / RFC 7515 4.1.2-4.1.8: header-supplied keys are never trusted.
    for name in _FORBIDDEN_HEADERS:
        if name in header:
            raise e.ForbiddenHeader(f"{name} header is not accepted")
    # DESIGN.md "Verifier": the header holds exactly alg, typ and kid, what attest issues, so
    # cty (RFC 7515 4.1.10: nested JWTs), zip (RFC 7516 4.1.3), b64 (RFC 7797) and any member
    # we do not know cannot change how the token is read.
    for name in header:
        if name not in _HEADER_MEMBERS:
            raise e.ForbiddenHeader(f"header member {name[:32]!r} is not accepted")
    # RFC 8725 3.11 (explicit typing): typ must be exactly elig+jwt.
    if header.get("typ") != TOKEN_TYPE:
        raise e.WrongType(f"typ must be {TOKEN_TYPE!r}")
    # RFC 8725 3.1 / 2.1: allow-list; "none" and HMAC algorithms never pass.
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _ALGORITHMS:
        raise e.UnsupportedAlgorithm("alg must be ES256 or EdDSA")
    # RFC 7515 4.1.4: kid selects the key; no kid means no key we can use.
    kid = header.get("kid")
    if kid is None:
        raise e.UnknownKey("no kid header")
    if not isinstance(kid, str):
        raise e.MalformedToken("kid must be a string")
    return alg, kid


class _Request(NamedTuple):
    dpop: str
    method: str
    url: str


def _request(dpop: str | None, method: str | None, url: str | None) -> _Request | None:
    """The request a DPoP proof must match; caller mistakes are ValueErrors, not refusals."""
    if dpop is None:
        return None
    if not isinstance(method, str) or not method or not isinstance(url, str):
        raise ValueError("verify(dpop=...) needs the request's method and url")
    if normalize_htu(url) is None:
        raise ValueError("url must be an absolute http(s) URL")
    return _Request(dpop, method, url)


class Verifier(TokenCache, ClaimChecks):
    """Offline verifier of ``elig+jwt`` eligibility tokens (DESIGN.md "Verifier").

    ``verify`` returns a fresh dict of validated claims or raises an
    :class:`~attest.verify.InvalidToken` subclass; nothing else escapes for any token input.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: KeySource | Mapping[str, Any],
        leeway: float = 5,
        cache_size: int = 10_000,
        now: Callable[[], float] | None = None,
        policies: Collection[str] | None = None,
        min_assurance: str | None = None,
        status: StatusHook | None = None,
        replay_cache: ReplayCache | None = None,
        dpop_max_age: float = 60,
    ) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise ValueError("issuer must be a non-empty string")
        if not isinstance(audience, str) or not audience:
            raise ValueError("audience must be a non-empty string")
        if isinstance(leeway, bool) or not 0 <= leeway <= 300:
            raise ValueError("leeway must be between 0 and 300 seconds")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError("cache_size must be an integer >= 0")
        if min_assurance is not None and min_assurance not in ASSURANCE_LEVELS:
            raise ValueError(f"min_assurance must be one of {ASSURANCE_LEVELS}")
        if isinstance(policies, str):
            raise TypeError("policies must be a collection of names, not a string")
        if isinstance(dpop_max_age, bool) or not 0 < dpop_max_age <= 3600:
            raise ValueError("dpop_max_age must be between 0 (excluded) and 3600 seconds")
        self.issuer = issuer
        self.audience = audience
        self.keys: KeySource = StaticJWKS(keys) if isinstance(keys, Mapping) else keys
        self.leeway = leeway
        self.cache_size = cache_size
        self._now = now or time.time
        self.policies = frozenset(policies) if policies is not None else None
        self._min_rank = ASSURANCE_RANK[min_assurance] if min_assurance else 0
        self._cache: OrderedDict[str, Entry] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._last_header: tuple[str, str, str] = ("", "", "")  # (segment, alg, kid)
        self.status = status
        bind = getattr(status, "bind", None)
        if callable(bind):  # StatusLists: trust lists of this issuer, checked with these keys
            bind(issuer=issuer, keys=self.keys, leeway=leeway, now=self._now)
        self.replay_cache: ReplayCache = (
            replay_cache if replay_cache is not None else MemoryReplayCache()
        )
        self.dpop_max_age = dpop_max_age

    # -- public API ----------------------------------------------------------------------

    def verify(
        self,
        token: str,
        *,
        dpop: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> dict[str, Any]:
        """Validate ``token`` and return its claims, or raise InvalidToken.

        A token bound to a holder key (``cnf.jkt``) also needs ``dpop``, the request's DPoP
        proof (RFC 9449), with the request's ``method`` and absolute ``url``; without a
        proof it fails with ``binding_required``. For an unbound token ``dpop`` is ignored.
        """
        # positional arguments on the hot path: this runs once per request
        return self._verify(
            token, self._now(), True, None if dpop is None else _request(dpop, method, url)
        )

    async def verify_async(
        self,
        token: str,
        *,
        dpop: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> dict[str, Any]:
        """Like :meth:`verify`; key-set network I/O runs in a worker thread."""
        request = None if dpop is None else _request(dpop, method, url)
        now = self._now()
        if self.status is None:
            # The per-request path: no status hook, so only the key source can want I/O, and
            # it says so by raising NeedsFetchError (no context variable to set and reset).
            try:
                return self._verify(token, now, False, request)
            except NeedsFetchError as pending:
                await asyncio.to_thread(self.keys.fetch, str(pending.args[0]), now)
        # Key-set and status-list I/O run in worker threads, never on the event loop: each
        # attempt that needs one raises NeedsFetchError, the fetch runs, the token is retried.
        status_pending = False
        for _ in range(3):
            token_io = NO_IO.set(True)
            try:
                return self._verify(token, now, False, request)
            except StatusFetchNeeded as pending:
                status_pending = True
                fetch = getattr(self.status, "fetch", None)
                if fetch is not None:
                    await asyncio.to_thread(fetch, pending.uri, now)
            except NeedsFetchError as pending:
                status_pending = False
                await asyncio.to_thread(self.keys.fetch, str(pending.args[0]), now)
            finally:
                NO_IO.reset(token_io)
        # a source still wants I/O after its fetch: treat it as down (fail closed)
        if status_pending:
            raise e.StatusUnavailable("no valid status list is at hand")
        raise e.KeySourceUnavailable("key set could not be fetched")

    # -- internals -----------------------------------------------------------------------

    def _per_call(
        self, token: str, claims: dict[str, Any], now: float, request: _Request | None
    ) -> dict[str, Any]:
        # Checks that depend on more than the token run on every call, cached or not.
        if len(claims) > N_REQUIRED:  # optional claims present (validated in _check_optional)
            if "status" in claims and self.status is not None:
                self._check_status(claims["status"]["status_list"])
            if "cnf" in claims:
                self._check_binding(token, claims["cnf"]["jkt"], now, request)
        return claims

    def _check_status(self, ref: dict[str, Any]) -> None:
        # IETF OAuth Token Status List: the hook decides; an error fails closed. A hook with
        # status_of (LocalStatusList, StatusLists) tells SUSPENDED from INVALID.
        hook = self.status
        assert hook is not None  # noqa: S101 - checked by the caller
        status_of = getattr(hook, "status_of", None)
        try:
            if status_of is not None:
                value = status_of(ref["uri"], ref["idx"])
            else:
                value = 0 if hook.is_revoked(ref["uri"], ref["idx"]) is False else 1
        except (e.InvalidToken, NeedsFetchError):
            raise
        except Exception as exc:
            raise e.StatusUnavailable("status list entry could not be checked") from exc
        if value == 2:
            raise e.SuspendedToken("the token's status list entry is SUSPENDED")
        if value != 0:  # anything but VALID refuses (an is_revoked other than False too)
            raise e.RevokedToken("the token's status list entry is not VALID")

    def _check_binding(self, token: str, jkt: str, now: float, request: _Request | None) -> None:
        # RFC 7800 3.1 / RFC 9449 6.1 and 7.1: a bound token needs a proof of possession.
        if request is None:
            raise e.BindingRequired("token is bound to a holder key; a DPoP proof is required")
        check_proof(
            request.dpop,
            token=token,
            jkt=jkt,
            method=request.method,
            url=request.url,
            now=now,
            leeway=self.leeway,
            max_age=self.dpop_max_age,
            replay=self.replay_cache,
        )

    # The per-request path (cache lookup, then the whole verification), kept in one frame on
    # purpose: a call per step costs on every request (see bench/bench_verify.py).
    def _verify(  # noqa: PLR0915
        self, token: str, now: float, fetch: bool, request: _Request | None
    ) -> dict[str, Any]:
        if type(token) is not str:
            raise e.MalformedToken("token must be a str")
        if self.cache_size:
            cached = self._cache_get(token, now, fetch=fetch)
            if cached is not None:
                return self._per_call(token, cached, now, request)
        # DESIGN "Verifier": cap the size before any decoding (bounded work per token).
        if len(token) > MAX_TOKEN_BYTES:
            raise e.TokenTooLarge(f"token longer than {MAX_TOKEN_BYTES} bytes")
        # RFC 7515 7.1: compact serialization, three non-empty base64url segments, ASCII.
        first, last = token.find("."), token.rfind(".")
        if (
            not 0 < first < last - 1
            or last == len(token) - 1
            or token.find(".", first + 1, last) >= 0
        ):
            raise e.MalformedToken("not a compact JWS of three base64url segments")
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError as exc:
            raise e.MalformedToken("not a compact JWS of three base64url segments") from exc
        # An issuer's tokens share a header: the last one seen is compared in place (no
        # slice, no hashing); others go through the memoised parser.
        seen = self._last_header
        if first == len(seen[0]) and token.startswith(seen[0]):
            alg, kid = seen[1], seen[2]
        else:
            header = token[:first]
            alg, kid = _parse_header(header)
            self._last_header = (header, alg, kid)
        key = self.keys.get(kid, now, fetch=fetch)  # may raise NeedsFetchError (async path)
        if key is None:
            raise e.UnknownKey("no admitted key with this kid")
        # RFC 8725 3.1: the key decides the algorithm; the token's alg must agree with it.
        if alg != key.alg:
            raise e.UnsupportedAlgorithm("alg is not the algorithm of the key named by kid")

        # RFC 7515 5.2 step 8: verify the signature over ASCII(header.payload) with the key
        # (RFC 7518 3.4: ES256 is R || S, 64 bytes; RFC 8037 3.1: Ed25519, 64 bytes).
        # (_jose.b64decode's checks on the ASCII bytes, inlined twice: this runs per request.)
        segment = raw[last + 1 :]
        rem = len(segment) % 4
        if _BAD_TAIL[rem << 8 | segment[-1]]:
            raise e.MalformedToken("bad base64url segment")
        try:
            signature = _a2b(segment.translate(_URL_TO_STD) + _PAD[rem], strict_mode=True)
        except binascii.Error as exc:
            raise e.MalformedToken("bad base64url segment") from exc
        if len(signature) != 64:
            raise e.BadSignature("signature must be 64 bytes")
        try:
            key.verify(signature, raw[:last])
        except (InvalidSignature, ValueError, TypeError, OverflowError) as exc:
            raise e.BadSignature("signature does not verify") from exc

        segment = raw[first + 1 : last]
        rem = len(segment) % 4
        if _BAD_TAIL[rem << 8 | segment[-1]]:
            raise e.MalformedToken("bad base64url segment")
        try:
            payload = _a2b(segment.translate(_URL_TO_STD) + _PAD[rem], strict_mode=True).decode(
                "utf-8"
            )
        except binascii.Error as exc:
            raise e.MalformedToken("bad base64url segment") from exc
        except UnicodeDecodeError as exc:
            raise e.MalformedToken("payload is not UTF-8 JSON without duplicates") from exc
        # RFC 7519 7.2 step 10: a JSON object with no duplicate members. The C scanner builds
        # plain dicts (no per-object Python hook); duplicates are then ruled out by counting
        # quotes (see _check_claims), and anything else goes to the exact decoder.
        exact = False
        try:
            try:
                claims, end = _SCAN_PLAIN(payload, 0)
            except StopIteration:
                end = -1
            if end != len(payload):
                claims, exact = _DECODER.decode(payload), True
        except (ValueError, RecursionError) as exc:
            raise e.MalformedToken("payload is not UTF-8 JSON without duplicates") from exc
        if type(claims) is not dict:
            raise e.MalformedToken("payload is not a JSON object")
        try:
            strings = self._check_claims(claims, now)
        except e.InvalidToken:
            if not exact:  # a duplicate member is reported first, as the exact decoder would
                _json_text_object(payload, "payload")
            raise
        # Every '"' in JSON text delimits a string or is an escaped quote, so the text holds at
        # most count('"') / 2 strings; a duplicate member is one more string than the parsed
        # result holds. _check_claims returns a lower bound on the result's strings (member
        # names plus values it checked to be strings): equality leaves no room for a duplicate.
        if not exact and payload.count('"') != 2 * strings:
            _json_text_object(payload, "payload")  # exact decoder: MalformedToken on duplicates
        if self.cache_size:
            self._cache_put(token, make_entry(payload, claims, key))
        if len(claims) > N_REQUIRED:
            return self._per_call(token, claims, now, request)
        return claims
