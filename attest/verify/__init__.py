"""Offline verifier for attest eligibility tokens (``typ: elig+jwt``).

Imports only the standard library and ``cryptography``: it parses the compact JWS itself,
for speed and for rules no JOSE library enforces (docs/adr/0001-verifier-parses-jws.md;
``pyjwt`` stays in the base install, which DESIGN.md names, but the verifier never imports
it). The token contract it checks is written down in :mod:`attest.verify.contract`. Use::

    from attest.verify import Verifier, RemoteJWKS, InvalidToken

    verifier = Verifier(
        issuer="https://attest.example",
        audience="model:fable-5",
        keys=RemoteJWKS("https://attest.example/.well-known/jwks.json"),
    )
    claims = verifier.verify(token)  # or: await verifier.verify_async(token)

Every refusal is an :class:`InvalidToken` subclass whose ``code`` is one of these stable
strings (``REASON_CODES``; codes are only ever added):

``malformed``
    Not ASCII, not three unpadded canonical base64url segments, header or payload not a
    UTF-8 JSON object, duplicate JSON member names, or a non-string ``kid``.
``too_large``
    Longer than 8192 characters; refused before any decoding.
``wrong_type``
    ``typ`` header absent or not exactly ``elig+jwt``.
``unsupported_algorithm``
    ``alg`` not ES256/EdDSA (``none``, HS256, RS256, ...), or not the algorithm of the key
    that ``kid`` names (the key decides, never the token: algorithm confusion lands here).
``unknown_key``
    No ``kid`` header, or no admitted key with that ``kid``.
``bad_signature``
    The signature does not verify (including a wrong-length signature).
``expired`` / ``not_yet_valid`` / ``issued_in_future``
    ``exp <= now - leeway`` / ``nbf > now + leeway`` / ``iat > now + leeway``.
``wrong_issuer``
    ``iss`` is a string other than the configured issuer (exact comparison).
``wrong_audience``
    ``aud`` is a string other than the configured audience.
``missing_claim``
    One of ``iss sub aud iat nbf exp jti eligibility`` is absent.
``invalid_claim``
    A claim of the wrong type or value: ``iat``/``nbf``/``exp`` not a JSON integer in
    ``(0, 2**40)``, ``exp <= iat``, ``iss`` not a string, ``aud`` not a single string (an
    array, even one holding our audience, is refused here), empty ``sub``/``jti``, a bad
    ``eligibility`` object, a malformed ``cnf`` or ``status``.
``lifetime_too_long``
    ``exp - iat`` over 3600 seconds.
``forbidden_header``
    A header member other than ``alg``, ``typ`` and ``kid``: ``crit``, the key headers
    ``jwk``, ``jku``, ``x5u``, ``x5c``, ``x5t``, ``x5t#S256``, and ``cty``, ``zip``, ``b64`` or
    any unknown member (the header holds exactly what attest issues).
``policy_not_allowed`` / ``insufficient_assurance``
    Optional checks (``policies=``, ``min_assurance=``) failed.
``revoked``
    The ``status=`` hook says the token's status-list entry is not VALID (INVALID, or any
    value other than VALID and SUSPENDED).
``suspended``
    The token's status-list entry is SUSPENDED (2): its audience is suspended for now
    (:class:`SuspendedToken`, a subclass of :class:`RevokedToken`).
``status_unavailable``
    The ``status=`` hook failed (list unreachable, unknown list, index out of range): the
    status check fails closed.
``binding_required``
    The token has ``cnf.jkt`` (holder binding) and no DPoP proof was presented.
``invalid_dpop_proof``
    The DPoP proof (RFC 9449 4.3) is not a compact JWS, is over 4096 characters, has a
    ``typ`` other than ``dpop+jwt``, an ``alg`` other than ES256/EdDSA or other than its
    key's, a ``crit`` header, a missing/private/unfit ``jwk``, a bad signature, a missing or
    ill-typed ``jti``/``htm``/``htu``/``iat``/``ath``, an ``htm`` or ``htu`` that does not
    match the request, an ``iat`` outside ``[now - dpop_max_age - leeway, now + leeway]``, or
    an ``ath`` that is not the token's hash; or the replay cache refused (full or failing).
``dpop_key_mismatch``
    The proof's ``jwk`` is not the key the token is bound to (thumbprint != ``cnf.jkt``).
``dpop_replay``
    The proof's ``jti`` was already used with this holder key inside the window.
``key_source_unavailable``
    No usable key set: file unreadable or invalid, never fetched, or the last good remote
    set is stale beyond ``stale_for``.

Checks run in this order: size, structure, header (``crit``/key headers, other members,
``typ``, ``alg``, ``kid``, key lookup, alg = key's alg), signature, payload JSON, claims;
then, on every call (cached token or not), the status-list hook and the DPoP proof of a
bound token.

Holder binding (RFC 9449)::

    claims = verifier.verify(token, dpop=proof, method="POST", url="https://gw.example/v1/x")

``url`` is the absolute URL of the request; it is compared with the proof's ``htu`` without
query and fragment, after RFC 3986 normalisation (case of scheme and host, default port,
percent-encoding). Proof ``jti`` values are remembered per holder key by a
:class:`ReplayCache` (default :class:`MemoryReplayCache`, one process; plug in a shared one
for several) for ``dpop_max_age + leeway`` seconds past the proof's ``iat``.

ASGI (Litestar, Starlette, FastAPI, ...)::

    app = AttestMiddleware(app, verifier=verifier, protect=["/v1/models"],
                           public_url="https://gateway.example")

puts the claims in ``scope["state"]["attest_claims"]`` (:data:`CLAIMS_KEY`) and answers
``401`` with ``WWW-Authenticate: Bearer error="invalid_token", error_description="<code>"``;
a request without a token is refused with ``error_description="missing_token"``.

Status lists: ``Verifier(status=StatusLists())`` checks every token's entry in its issuer's
Status List Token (fetched only from URIs under the issuer, checked with the verifier's key
set, cached for its ``ttl``, fetches coalesced, fail closed). Any other hook works too:
``hook.is_revoked(uri, idx) -> bool`` (:class:`StatusHook`); :class:`LocalStatusList` holds
lists in memory for air-gapped services.

Key sources: :class:`StaticJWKS` (a JWKS dict; a plain dict passed as ``keys`` is wrapped in
one), :class:`JWKSFile` (reloaded when the file changes, looked at once per ``check_interval``,
1 s, or at once on an unknown kid) and :class:`RemoteJWKS` (HTTP with
``Cache-Control``). They admit only EC P-256 (ES256) and Ed25519 (EdDSA) public signature
keys with a ``kid``; every other key is refused, logged on the ``attest.verify`` logger and
listed in the source's ``rejected`` as ``(kid, reason)``.
"""

from __future__ import annotations

from ._asgi import CLAIMS_KEY, AttestMiddleware
from ._dpop import MemoryReplayCache, ReplayCache
from ._errors import (
    REASON_CODES,
    BadSignature,
    BindingRequired,
    DPoPKeyMismatch,
    DPoPReplay,
    ExpiredToken,
    ForbiddenHeader,
    InsufficientAssurance,
    InvalidClaim,
    InvalidDPoPProof,
    InvalidToken,
    IssuedInFuture,
    KeySourceUnavailable,
    LifetimeTooLong,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    PolicyNotAllowed,
    RevokedToken,
    StatusUnavailable,
    SuspendedToken,
    TokenTooLarge,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
    WrongType,
)
from ._remote import RemoteJWKS
from ._sources import JWKSFile, KeySource, StaticJWKS
from ._status import LocalStatusList, StatusHook
from ._statuslists import StatusLists
from ._verifier import Verifier

__all__ = [
    "CLAIMS_KEY",
    "REASON_CODES",
    "AttestMiddleware",
    "BadSignature",
    "BindingRequired",
    "DPoPKeyMismatch",
    "DPoPReplay",
    "ExpiredToken",
    "ForbiddenHeader",
    "InsufficientAssurance",
    "InvalidClaim",
    "InvalidDPoPProof",
    "InvalidToken",
    "IssuedInFuture",
    "JWKSFile",
    "KeySource",
    "KeySourceUnavailable",
    "LifetimeTooLong",
    "LocalStatusList",
    "MalformedToken",
    "MemoryReplayCache",
    "MissingClaim",
    "NotYetValid",
    "PolicyNotAllowed",
    "RemoteJWKS",
    "ReplayCache",
    "RevokedToken",
    "StaticJWKS",
    "StatusHook",
    "StatusLists",
    "StatusUnavailable",
    "SuspendedToken",
    "TokenTooLarge",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "Verifier",
    "WrongAudience",
    "WrongIssuer",
    "WrongType",
]
