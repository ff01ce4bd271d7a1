"""API keys: format, generation, hashing and constant-time checking. Pure: no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string

from attest.clients.models import NewKey

__all__ = ["generate_key", "parse_key", "secret_digest", "secret_matches"]

_KEY_RE = re.compile(r"attest_([a-z0-9]{16})_([a-z0-9]{52})")
_ID_ALPHABET = string.ascii_lowercase + string.digits
# Compared against when the key id is unknown, so both paths cost one digest comparison.
_DUMMY_DIGEST = hashlib.sha256(b"attest-unknown-key").digest()


def generate_key() -> NewKey:
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
    # 32 random bytes, base32 without padding: 52 characters of [a-z2-7].
    secret = base64.b32encode(secrets.token_bytes(32)).decode("ascii").rstrip("=").lower()
    return NewKey(key_id, secret)


def parse_key(api_key: str) -> NewKey | None:
    match = _KEY_RE.fullmatch(api_key)
    return NewKey(match[1], match[2]) if match else None


def secret_digest(secret: str) -> bytes:
    # The secret carries 256 bits of entropy, so a fast hash is enough (no password KDF).
    return hashlib.sha256(secret.encode("ascii")).digest()


def secret_matches(secret: str, stored: bytes | None) -> bool:
    """Constant-time comparison of a presented secret with the stored digest."""
    expected = stored if stored is not None else _DUMMY_DIGEST
    ok = hmac.compare_digest(secret_digest(secret), expected)
    return ok and stored is not None
