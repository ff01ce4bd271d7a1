"""JWK admission: parse a public JWK into a verification key fit for ES256 or EdDSA, or refuse it.

Only EC P-256 (ES256) and Ed25519 (EdDSA) public signature keys are admitted; symmetric,
private, RSA, off-curve, small-order or non-canonical keys, and keys marked for another use,
are refused with a reason. :func:`parse_jwks` admits the fit keys of a JWKS document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

__all__ = [
    "KeySet",
    "VerificationKey",
    "admit_holder_key",
    "jwk_thumbprint",
    "parse_jwks",
]

logger = logging.getLogger("attest.verify")

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


def _b64url_decode(jwk: Mapping[str, Any], name: str, length: int) -> bytes:
    """Decode member ``name``: unpadded base64url of exactly ``length`` bytes (RFC 7518 6.2.1)."""
    value = jwk.get(name)
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        raise ValueError(f"{name} is not an unpadded base64url string")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if len(raw) != length or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value:
        raise ValueError(f"{name} is not the canonical base64url of {length} bytes")
    return raw


# Ed25519 curve constants (RFC 8032 5.1), used only to refuse unfit public keys.
_ED_P = 2**255 - 19
_ED_D = (-121665 * pow(121666, -1, _ED_P)) % _ED_P


def _ed25519_point_problem(raw: bytes) -> str | None:
    """What is wrong with an encoded Ed25519 public key, or None when it is fit to verify.

    Refused: a non-canonical encoding (y >= p, or x = 0 with the sign bit set), a y with no
    point on the curve, and a point of small order ([8]P is the identity).
    """
    y = int.from_bytes(raw, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _ED_P:
        return "x is a non-canonical Ed25519 encoding (y >= 2**255 - 19)"
    # RFC 8032 5.1.3: recover x from y.
    u = (y * y - 1) % _ED_P
    v = (_ED_D * y * y + 1) % _ED_P
    x2 = u * pow(v, -1, _ED_P) % _ED_P
    x = pow(x2, (_ED_P + 3) // 8, _ED_P)
    if (x * x - x2) % _ED_P != 0:
        x = x * pow(2, (_ED_P - 1) // 4, _ED_P) % _ED_P
    if (x * x - x2) % _ED_P != 0:
        return "x is not a point on the Ed25519 curve"
    if x == 0 and sign:
        return "x is a non-canonical Ed25519 encoding (x = 0 with the sign bit set)"
    if x & 1 != sign:
        x = _ED_P - x
    px, py = x, y
    for _ in range(3):  # three doublings: [8]P, complete twisted Edwards addition (a = -1)
        t = _ED_D * px * px * py * py % _ED_P
        nx = 2 * px * py * pow(1 + t, -1, _ED_P) % _ED_P
        ny = (py * py + px * px) * pow(1 - t, -1, _ED_P) % _ED_P
        px, py = nx, ny
    if px == 0 and py == 1:
        return "x is a small-order Ed25519 point (no security as a public key)"
    return None


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
        x = _b64url_decode(jwk, "x", 32)
        y = _b64url_decode(jwk, "y", 32)
        # cryptography checks the point is on P-256 (cofactor 1: no small subgroup).
        try:
            key = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            ).public_key()
        except ValueError:
            raise ValueError("the point (x, y) is not on the P-256 curve") from None
        fingerprint: tuple[str, ...] = ("EC", "P-256", jwk["x"], jwk["y"])
    elif kty == "OKP":
        if crv != "Ed25519":
            raise ValueError(f"unsupported OKP curve {crv!r}")
        alg = "EdDSA"
        x = _b64url_decode(jwk, "x", 32)
        problem = _ed25519_point_problem(x)
        if problem is not None:
            raise ValueError(problem)
        key = Ed25519PublicKey.from_public_bytes(x)
        fingerprint = ("OKP", "Ed25519", jwk["x"])
    else:
        raise ValueError(f"unsupported kty {kty!r}")
    # RFC 8725 3.1: the key fixes its algorithm; a declared alg must agree with the key type.
    if "alg" in jwk and jwk["alg"] != alg:
        raise ValueError(f"alg {jwk['alg']!r} does not match a {kty} {crv} key")
    verify = _es256_verifier(key) if isinstance(key, ec.EllipticCurvePublicKey) else key.verify
    return VerificationKey(kid=kid, alg=alg, fingerprint=fingerprint, public_key=key, verify=verify)


# RFC 7638 3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC or OKP public JWK.

    Only the required members count (RFC 7638 3.2); ``kid``, ``alg``, ``use`` and the rest do
    not change it. Raises ValueError for another ``kty`` or a missing or non-string member.
    It does not check the key itself: admit it first (``holder_jwk_thumbprint`` does both).
    """
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise ValueError(f"no RFC 7638 thumbprint for kty {kty!r} (EC or OKP only)")
    required = {}
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str):
            raise ValueError(f"JWK member {name!r} must be a string")  # noqa: TRY004 - one error type
        required[name] = value
    # RFC 7638 3.3: members in lexicographic order, no whitespace, UTF-8 (no needless escapes).
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def admit_holder_key(jwk: object) -> tuple[VerificationKey, str]:
    """Admit a DPoP ``jwk`` header (public P-256 or Ed25519 key): (key, RFC 7638 thumbprint).

    Raises ValueError saying why the key is refused (private members, other types, ...).
    """
    if not isinstance(jwk, Mapping):
        raise ValueError("jwk must be a JSON object")  # noqa: TRY004 - one error type for callers
    key = _admit(jwk, holder_kid="holder")
    return key, jwk_thumbprint(jwk)


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
