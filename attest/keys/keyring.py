"""The instance's view of the signing key: whichever key the database says is active.

Every issuance asks the database for the active kid (one indexed lookup in the request's
own connection; a group-commit batch reads it with its other reads), so an instance signs
with a newly activated key at once, without a restart, and never again with a key another
instance marked compromised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from attest.db import Conn
from attest.errors import ServiceUnavailable
from attest.keys import repository
from attest.keys.keystore import FileKeystore, Keystore, KeystoreError, Signer
from attest.settings import Settings

__all__ = ["Keyring", "open_keystore"]

log = logging.getLogger(__name__)


def open_keystore(settings: Settings, passphrase: Callable[[], str]) -> Keystore:
    """The configured keystore. ``passphrase`` is asked only for the file keystore."""
    if settings.keystore == "pkcs11":
        from attest.keys.pkcs11 import Pkcs11Keystore, read_pin  # noqa: PLC0415

        module, label = settings.pkcs11_module, settings.pkcs11_token_label
        if not module or not label:
            raise KeystoreError("ATTEST_PKCS11_MODULE and ATTEST_PKCS11_TOKEN_LABEL must be set")
        pin = read_pin(settings.pkcs11_pin, settings.pkcs11_pin_file)
        return Pkcs11Keystore(module, label, pin)
    return FileKeystore(settings.keystore_path, passphrase())


class Keyring:
    """Loads signers from the keystore by kid and follows the database's active key."""

    def __init__(self, keystore: Keystore) -> None:
        self.keystore = keystore
        self.current: Signer | None = None

    async def active(self, conn: Conn) -> Signer:
        return await self.signer_for(conn, await repository.current_signing_kid(conn))

    async def signer_for(self, conn: Conn, kid: str | None) -> Signer:
        """The signer of ``kid``, the active key's id just read on ``conn`` (None: no key
        is active); its key's row is read only when it is not the one loaded already."""
        current = self.current
        if current is not None and current.kid == kid:
            return current
        key = await repository.current_signing_key(conn)
        if key is None:
            raise KeystoreError("no signing key is active: see 'attest keys list'")
        # Only the active key is kept loaded: a replaced or compromised key is dropped here.
        try:
            self.current = self.keystore.load(key.kid, key.alg, key.keystore_ref)
        except KeystoreError as exc:
            # This instance cannot sign with the key the others use (keystore mount or token
            # missing): refuse to issue rather than sign with a key that is no longer active.
            log.exception("cannot load the active signing key %s", key.kid)
            raise ServiceUnavailable(
                "The active signing key cannot be loaded on this instance; no token was issued."
            ) from exc
        return self.current
