"""The file signer's own JWS encoding agrees with cryptography and PyJWT."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from attest.keys.keystore import FileKeystore, KeystoreError, _der_to_jose


def test_der_to_jose_matches_cryptography() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    short = 0
    for i in range(3000):  # about 1 in 128 has an r or s shorter than 32 bytes
        der = key.sign(i.to_bytes(4, "big"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        assert _der_to_jose(der) == r.to_bytes(32, "big") + s.to_bytes(32, "big")
        short += r < 2**248 or s < 2**248
    assert short > 0


@pytest.mark.parametrize(
    "der", [b"\x31\x06\x02\x01\x01\x02\x01\x01", b"\x30\x06\x02\x01\x01\x03\x01\x01"]
)
def test_der_to_jose_refuses_other_encodings(der: bytes) -> None:
    with pytest.raises(KeystoreError):
        _der_to_jose(der)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_file_signer_tokens_decode_in_pyjwt(tmp_path: Path, alg: str) -> None:
    signer = FileKeystore(tmp_path, "a passphrase of 16+ chars").generate(alg)
    for i in range(200):
        token = signer.sign_jwt({"i": i, "aud": "x"}, "elig+jwt")
        key = jwt.PyJWK({**signer.public_jwk(), "alg": alg})
        assert jwt.decode(token, key.key, algorithms=[alg], audience="x")["i"] == i
        assert jwt.get_unverified_header(token) == {
            "alg": alg,
            "kid": signer.kid,
            "typ": "elig+jwt",
        }
