"""Keystores hold private keys outside the database, behind one small signer interface.

The file keystore keeps one encrypted PKCS#8 PEM file per key, named by its kid. A
wrong passphrase or a damaged file is a start-up error, never a reason to make a new key.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from attest.errors import KeystoreFailure
from attest.keys.jwk import PublicKey, b64url, public_jwk, thumbprint

__all__ = ["Algorithm", "FileKeystore", "Keystore", "KeystoreError", "Signer", "compact_jws"]

log = logging.getLogger(__name__)

Algorithm = Literal["ES256", "EdDSA"]
_encode_json = msgspec.json.Encoder().encode
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class KeystoreError(KeystoreFailure, RuntimeError):
    """A key cannot be created or loaded (the message never holds secret material)."""


class Signer(Protocol):
    @property
    def kid(self) -> str: ...

    @property
    def alg(self) -> Algorithm: ...

    def public_jwk(self) -> dict[str, str]: ...

    def sign_jwt(self, claims: dict[str, object], typ: str) -> str: ...

    def sign(self, data: bytes) -> bytes:
        """The raw signature over ``data`` (Ed25519: 64 bytes; ES256: r || s). For the log
        key's signed notes; tokens are signed with :meth:`sign_jwt`."""
        ...


class Keystore(Protocol):
    """Where private keys live. ``ref`` is what the database stores to find a key again."""

    def generate(self, alg: Algorithm) -> Signer: ...

    def load(self, kid: str, alg: Algorithm, ref: str | None = None) -> Signer: ...

    def ref(self, signer: Signer) -> str: ...

    def close(self) -> None: ...


def compact_jws(
    claims: dict[str, object], *, alg: Algorithm, kid: str, typ: str, sign: Callable[[bytes], bytes]
) -> str:
    """A compact JWS (RFC 7515 section 7.1) whose signature comes from ``sign``.

    For keystores whose private key never leaves a device: ``sign`` gets the signing input
    and returns the JOSE signature (ES256: r || s, 64 bytes; EdDSA: 64 bytes).
    """
    head = _header(alg, kid, typ)
    # msgspec: compact JSON, several times faster than json.dumps (two signings per token).
    body = b64url(_encode_json(claims))
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64url(sign(signing_input))}"


@functools.lru_cache(maxsize=64)
def _header(alg: Algorithm, kid: str, typ: str) -> str:
    """The encoded protected header; the same few per process (one per key and type)."""
    # RFC 8725 section 3.11: an explicit typ; the kid names the key, the alg is ours.
    header = {"alg": alg, "kid": kid, "typ": typ}
    return b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


def _der_to_jose(der: bytes) -> bytes:
    """ECDSA P-256 DER ``SEQUENCE {INTEGER r, INTEGER s}`` to JOSE ``r || s`` (RFC 7518 3.4).

    By hand: cryptography's decode_dss_signature costs more than the signing it follows.
    A P-256 signature is under 128 bytes, so every DER length here is one short-form byte.
    """
    r_len = der[3]
    s_len = der[5 + r_len]
    if (
        der[0] != 0x30
        or der[1] != len(der) - 2
        or der[2] != 0x02
        or der[4 + r_len] != 0x02
        or 6 + r_len + s_len != len(der)
        or not 0 < r_len <= 33
        or not 0 < s_len <= 33
    ):
        raise KeystoreError("unexpected ECDSA signature encoding")
    r = der[4 : 4 + r_len].lstrip(b"\0")
    s = der[6 + r_len :].lstrip(b"\0")
    return r.rjust(32, b"\0") + s.rjust(32, b"\0")


@dataclass(frozen=True, slots=True)
class _LocalSigner:
    """A signer over a private key held in memory (loaded from the file keystore)."""

    kid: str
    alg: Algorithm
    _key: PrivateKey

    def public_jwk(self) -> dict[str, str]:
        public: PublicKey = self._key.public_key()
        return public_jwk(public)

    def _sign(self, data: bytes) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            # RFC 7518 section 3.4: the JWS signature is r || s, each 32 bytes, not DER.
            return _der_to_jose(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return key.sign(data)  # RFC 8037 section 3.1: the 64-byte Ed25519 signature

    def sign_jwt(self, claims: dict[str, object], typ: str) -> str:
        return compact_jws(claims, alg=self.alg, kid=self.kid, typ=typ, sign=self._sign)

    def sign(self, data: bytes) -> bytes:
        return self._sign(data)


def _generate(alg: Algorithm) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


class FileKeystore:
    """Encrypted PKCS#8 files, one per key, in a directory (``keys/`` by default)."""

    def __init__(self, directory: Path, passphrase: str) -> None:
        if len(passphrase) < 16:
            raise KeystoreError("keystore passphrase must be at least 16 characters")
        self.directory = directory
        self._passphrase = passphrase.encode()

    def _path(self, kid: str) -> Path:
        return self.directory / f"{kid}.p8.pem"

    def generate(self, alg: Algorithm = "ES256") -> _LocalSigner:
        key = _generate(alg)
        kid = thumbprint(public_jwk(key.public_key()))
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        path = self._path(kid)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # O_EXCL: never overwrite an existing key file; 0600: private to the service user.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise KeystoreError(
                f"cannot write a new key to the keystore {self.directory}: {exc.strerror}"
            ) from exc
        log.info("generated %s signing key %s in %s", alg, kid, self.directory)
        return _LocalSigner(kid, alg, key)

    def ref(self, signer: Signer) -> str:
        return f"file:{signer.kid}"

    def close(self) -> None:
        """Nothing to release: keys are read when loaded."""

    def load(self, kid: str, alg: Algorithm, ref: str | None = None) -> _LocalSigner:
        if ref is not None and ref != f"file:{kid}":
            raise KeystoreError(
                f"key {kid} is held by another keystore ({ref.split(':', 1)[0]}), not the "
                "file keystore: check ATTEST_KEYSTORE"
            )
        path = self._path(kid)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise KeystoreError(
                f"private key {kid} is not in the keystore {self.directory}: the database "
                "names it as a signing key, so the keystore mount is missing or wrong"
            ) from None
        try:
            key = serialization.load_pem_private_key(pem, password=self._passphrase)
        except (ValueError, TypeError) as exc:
            raise KeystoreError(
                f"cannot decrypt key file {path}: wrong keystore passphrase or damaged file"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise KeystoreError(f"key file {path} holds an unsupported key type")
        if thumbprint(public_jwk(key.public_key())) != kid:
            raise KeystoreError(f"key file {path} does not hold the key {kid} (tampered?)")
        expected = ec.EllipticCurvePrivateKey if alg == "ES256" else ed25519.Ed25519PrivateKey
        if not isinstance(key, expected):
            raise KeystoreError(f"key file {path} does not hold an {alg} key")
        return _LocalSigner(kid, alg, key)
