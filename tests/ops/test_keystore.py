"""The file keystore: encrypted PKCS#8, never overwritten, loud on a wrong passphrase."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest

from attest.keys.jwk import thumbprint
from attest.keys.keystore import FileKeystore, KeystoreError

PASSPHRASE = "correct horse battery staple"


def test_generated_key_is_encrypted_private_and_named_by_thumbprint(tmp_path: Path) -> None:
    store = FileKeystore(tmp_path, PASSPHRASE)
    signer = store.generate("ES256")
    path = tmp_path / f"{signer.kid}.p8.pem"
    pem = path.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signer.kid == thumbprint(signer.public_jwk())
    loaded = store.load(signer.kid, "ES256")
    token = loaded.sign_jwt({"x": 1}, "elig+jwt")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": signer.kid, "typ": "elig+jwt"}


def test_wrong_passphrase_is_a_clear_error_not_a_new_key(tmp_path: Path) -> None:
    signer = FileKeystore(tmp_path, PASSPHRASE).generate("ES256")
    with pytest.raises(KeystoreError, match="wrong keystore passphrase") as info:
        FileKeystore(tmp_path, "a different passphrase!").load(signer.kid, "ES256")
    assert PASSPHRASE not in str(info.value)
    assert len(list(tmp_path.iterdir())) == 1


def test_a_key_file_swapped_for_another_key_is_refused(tmp_path: Path) -> None:
    store = FileKeystore(tmp_path, PASSPHRASE)
    first = store.generate("ES256")
    second = store.generate("ES256")
    (tmp_path / f"{first.kid}.p8.pem").write_bytes((tmp_path / f"{second.kid}.p8.pem").read_bytes())
    with pytest.raises(KeystoreError, match="does not hold the key"):
        store.load(first.kid, "ES256")


def test_damaged_and_missing_files(tmp_path: Path) -> None:
    store = FileKeystore(tmp_path, PASSPHRASE)
    signer = store.generate("EdDSA")
    (tmp_path / f"{signer.kid}.p8.pem").write_bytes(b"-----BEGIN garbage-----\n")
    with pytest.raises(KeystoreError):
        store.load(signer.kid, "EdDSA")
    with pytest.raises(KeystoreError, match="not in the keystore"):
        store.load("no-such-kid", "ES256")


def test_short_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="at least 16"):
        FileKeystore(tmp_path, "short")
