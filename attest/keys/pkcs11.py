"""PKCS#11 keystore: keys generated inside an HSM token, non-extractable, signing done there.

Configured with the module path, the token label and the user PIN (``ATTEST_PKCS11_PIN`` or
``ATTEST_PKCS11_PIN_FILE``). The PIN is never logged nor put in an error message. Each key
is found again by its ``CKA_ID`` (random, recorded as ``pkcs11:id=<hex>`` in the database),
and on load its public half must hash to the kid the database names.

A token that goes away while serving (removed, its slot reset, the HSM restarted) makes a
signature fail with a PKCS#11 error: that is a :class:`KeystoreError` (a 503 problem, never
a 500), and the keystore reconnects: the module is initialised again, a session opened and
logged in, and the key found again by its ``CKA_ID``; the signature is tried once more. A
reconnection that fails is tried again at most every ``RECONNECT_INTERVAL`` seconds, so
requests during the outage are answered at once. When the token is back, signing resumes
without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from attest.keys.jwk import PublicKey, public_jwk, thumbprint
from attest.keys.keystore import Algorithm, KeystoreError, Signer, compact_jws

__all__ = ["Pkcs11Keystore", "read_pin"]

log = logging.getLogger(__name__)

#: Seconds between reconnection attempts while the token cannot be used.
RECONNECT_INTERVAL = 1.0

#: Per module path: how many times it was initialised again (a keystore whose session
#: predates the latest does not initialise it once more, it opens a session).
_GENERATIONS: dict[str, int] = {}
_GENERATIONS_LOCK = threading.Lock()

_P256_OID = "1.2.840.10045.3.1.7"
_ED25519_OID = "1.3.101.112"


def read_pin(pin: str | None, pin_file: str | None) -> str:
    """The PIN from the setting or the first line of the file (the value is never echoed)."""
    if pin:
        return pin
    if not pin_file:
        raise KeystoreError("no PKCS#11 PIN configured (ATTEST_PKCS11_PIN or _PIN_FILE)")
    try:
        lines = Path(pin_file).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KeystoreError(
            f"cannot read ATTEST_PKCS11_PIN_FILE {pin_file}: {exc.strerror}"
        ) from None
    if not lines or not lines[0].strip():
        raise KeystoreError(f"ATTEST_PKCS11_PIN_FILE {pin_file} is empty")
    return lines[0].strip()


def _der_octets(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING (PKCS#11 3.0 section 2.3.3); some tokens send it raw."""
    if len(value) >= 2 and value[0] == 0x04 and value[1] == len(value) - 2:
        return value[2:]
    if len(value) >= 3 and value[0] == 0x04 and value[1] == 0x81 and value[2] == len(value) - 3:
        return value[3:]
    return value


@dataclass(slots=True)
class _TokenSigner:
    kid: str
    alg: Algorithm
    _private: Any
    _public: PublicKey
    _lock: threading.Lock
    _store: Pkcs11Keystore
    _key_id: bytes
    #: The keystore's session generation the private key handle belongs to.
    _generation: int

    def public_jwk(self) -> dict[str, str]:
        return public_jwk(self._public)

    def _sign_once(self, data: bytes) -> bytes:
        import pkcs11  # noqa: PLC0415 - the server extra only

        if self.alg == "ES256":
            # CKM_ECDSA over the SHA-256 digest: the token returns r || s (RFC 7518 3.4).
            signature: bytes = self._private.sign(
                hashlib.sha256(data).digest(), mechanism=pkcs11.Mechanism.ECDSA
            )
        else:
            signature = self._private.sign(data, mechanism=pkcs11.Mechanism.EDDSA)
        return signature

    def _sign(self, data: bytes) -> bytes:
        import pkcs11  # noqa: PLC0415 - the server extra only

        with self._lock:  # one PKCS#11 session is shared: one operation at a time
            if self._generation == self._store._generation:
                try:
                    return self._sign_once(data)
                except pkcs11.exceptions.PKCS11Error as exc:
                    failed = type(exc).__name__
                    self._store._reconnect_locked(self._generation, failed)
            else:
                self._store._reconnect_locked(self._generation, "stale session")
            # Reconnected (else KeystoreError was raised): the key's new handle, once more.
            try:
                self._private = self._store._find_locked(self._key_id)
                self._generation = self._store._generation
                return self._sign_once(data)
            except pkcs11.exceptions.PKCS11Error as exc:
                self._store._lost_locked()
                raise KeystoreError(
                    f"the PKCS#11 token {self._store.token_label!r} cannot sign with key "
                    f"{self.kid}: {type(exc).__name__}"
                ) from None

    def sign_jwt(self, claims: dict[str, object], typ: str) -> str:
        return compact_jws(claims, alg=self.alg, kid=self.kid, typ=typ, sign=self._sign)

    def sign(self, data: bytes) -> bytes:
        return self._sign(data)


class Pkcs11Keystore:
    """Keys inside a PKCS#11 token (an HSM; SoftHSM2 in tests)."""

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        try:
            import pkcs11  # noqa: PLC0415
            import pkcs11.exceptions  # noqa: PLC0415
        except ImportError as exc:
            raise KeystoreError("the PKCS#11 keystore needs python-pkcs11 (server extra)") from exc
        self._pkcs11 = pkcs11
        self._lock = threading.Lock()
        self.module = module
        self.token_label = token_label
        # Kept to log in again after the token came back (never logged nor in a message).
        self._pin = pin
        #: Bumped on each reconnection: handles of an older generation are stale.
        self._generation = 0
        self._retry_at = 0.0
        with _GENERATIONS_LOCK:
            self._module_generation = _GENERATIONS.setdefault(module, 0)
        self._session = self._open()

    def _open(self) -> Any:
        pkcs11 = self._pkcs11
        try:
            token = pkcs11.lib(self.module).get_token(token_label=self.token_label)
            try:
                return token.open(user_pin=self._pin, rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # Login state is per process and token (PKCS#11 section 5.6): another keystore
                # of this process is logged in already, and this session shares its login.
                return token.open(rw=True)
        except pkcs11.exceptions.PKCS11Error as exc:
            # The PIN is never part of the message; the exception class names the cause.
            raise KeystoreError(
                f"cannot open PKCS#11 token {self.token_label!r} with module {self.module}: "
                f"{type(exc).__name__}"
            ) from None
        except (OSError, RuntimeError) as exc:
            raise KeystoreError(f"cannot load PKCS#11 module {self.module}: {exc}") from None

    def _reconnect_locked(self, generation: int, cause: str) -> None:
        """A new session (the module initialised again unless another keystore of this
        process just did), under ``self._lock``; KeystoreError when the token cannot be
        used (then no new attempt for RECONNECT_INTERVAL seconds)."""
        if generation != self._generation:
            return  # another signer of this keystore reconnected meanwhile
        now = time.monotonic()
        if now < self._retry_at:
            raise KeystoreError(f"the PKCS#11 token {self.token_label!r} is unavailable")
        log.warning("PKCS#11 token %s failed (%s): reconnecting", self.token_label, cause)
        try:
            with _GENERATIONS_LOCK:
                if _GENERATIONS[self.module] == self._module_generation:
                    self._pkcs11.lib(self.module).reinitialize()
                    _GENERATIONS[self.module] += 1
                self._module_generation = _GENERATIONS[self.module]
            self._session = self._open()
        except (KeystoreError, self._pkcs11.exceptions.PKCS11Error) as exc:
            self._retry_at = now + RECONNECT_INTERVAL
            raise KeystoreError(
                f"the PKCS#11 token {self.token_label!r} is unavailable: {type(exc).__name__}"
            ) from None
        self._generation += 1
        self._retry_at = 0.0
        log.info("PKCS#11 token %s reconnected", self.token_label)

    def _lost_locked(self) -> None:
        """The reconnected session failed too: reconnect again on the next attempt."""
        self._generation += 1
        self._retry_at = time.monotonic() + RECONNECT_INTERVAL

    def _find_locked(self, key_id: bytes) -> Any:
        p = self._pkcs11
        try:
            return self._session.get_key(object_class=p.ObjectClass.PRIVATE_KEY, id=key_id)
        except p.exceptions.NoSuchKey:
            self._lost_locked()
            raise KeystoreError(
                f"a key is not in the PKCS#11 token {self.token_label!r} after reconnecting"
            ) from None

    def close(self) -> None:
        self._session.close()

    def ref(self, signer: Signer) -> str:
        if not isinstance(signer, _TokenSigner):
            raise KeystoreError("not a PKCS#11 key")
        key_id: bytes = signer._private[self._pkcs11.Attribute.ID]
        return f"pkcs11:id={key_id.hex()}"

    def generate(self, alg: Algorithm) -> Signer:
        from pkcs11.util.ec import encode_named_curve_parameters  # noqa: PLC0415

        p = self._pkcs11
        attr = p.Attribute
        key_id = secrets.token_bytes(16)
        if alg == "ES256":
            key_type, oid, mechanism = p.KeyType.EC, _P256_OID, p.Mechanism.EC_KEY_PAIR_GEN
        else:
            key_type, oid = p.KeyType.EC_EDWARDS, _ED25519_OID
            mechanism = p.Mechanism.EC_EDWARDS_KEY_PAIR_GEN
        private_template = {
            attr.TOKEN: True,
            attr.PRIVATE: True,
            attr.SENSITIVE: True,
            attr.EXTRACTABLE: False,  # the private key never leaves the token
            attr.SIGN: True,
        }
        with self._lock:
            try:
                params = self._session.create_domain_parameters(
                    key_type, {attr.EC_PARAMS: encode_named_curve_parameters(oid)}, local=True
                )
                public, private = params.generate_keypair(
                    id=key_id,
                    store=True,
                    mechanism=mechanism,
                    public_template={attr.TOKEN: True, attr.VERIFY: True},
                    private_template=private_template,
                )
                public_key = self._public_key(public, alg)
            except p.exceptions.PKCS11Error as exc:
                raise KeystoreError(
                    f"the PKCS#11 token cannot generate an {alg} key: {type(exc).__name__}"
                ) from None
        kid = thumbprint(public_jwk(public_key))
        with self._lock:
            private[attr.LABEL] = f"attest {kid}"
            public[attr.LABEL] = f"attest {kid}"
        log.info("generated %s signing key %s in PKCS#11 token %s", alg, kid, self.token_label)
        return self._signer(kid, alg, private, public_key, key_id)

    def _signer(
        self, kid: str, alg: Algorithm, private: Any, public: PublicKey, key_id: bytes
    ) -> _TokenSigner:
        return _TokenSigner(kid, alg, private, public, self._lock, self, key_id, self._generation)

    def _public_key(self, public: Any, alg: Algorithm) -> PublicKey:
        point = _der_octets(bytes(public[self._pkcs11.Attribute.EC_POINT]))
        if alg == "ES256":
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        return ed25519.Ed25519PublicKey.from_public_bytes(point)

    def load(self, kid: str, alg: Algorithm, ref: str | None = None) -> Signer:
        if ref is None or not ref.startswith("pkcs11:id="):
            raise KeystoreError(
                f"key {kid} is not held by a PKCS#11 keystore (ref {ref!r}): check ATTEST_KEYSTORE"
            )
        p = self._pkcs11
        key_id = bytes.fromhex(ref.removeprefix("pkcs11:id="))
        with self._lock:
            try:
                private = self._session.get_key(object_class=p.ObjectClass.PRIVATE_KEY, id=key_id)
                public = self._session.get_key(object_class=p.ObjectClass.PUBLIC_KEY, id=key_id)
                public_key = self._public_key(public, alg)
            except p.exceptions.NoSuchKey:
                raise KeystoreError(
                    f"private key {kid} is not in the PKCS#11 token {self.token_label!r}"
                ) from None
            except (p.exceptions.PKCS11Error, ValueError) as exc:
                raise KeystoreError(
                    f"cannot read key {kid} from the PKCS#11 token: {type(exc).__name__}"
                ) from None
            extractable = private[p.Attribute.EXTRACTABLE]
        if extractable:
            raise KeystoreError(f"PKCS#11 key {kid} is extractable: refusing to sign with it")
        if thumbprint(public_jwk(public_key)) != kid:
            raise KeystoreError(f"the PKCS#11 object {ref} does not hold the key {kid}")
        return self._signer(kid, alg, private, public_key, key_id)
