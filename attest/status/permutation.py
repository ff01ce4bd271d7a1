"""A keyed permutation of ``[0, size)``: slot numbers in, status-list indexes out. Pure.

A counter would tell anyone holding two tokens how many were issued between them; a
keyed permutation of the counter gives indexes that look random and are still never
reused (it is a bijection). Construction: a balanced Feistel network of four rounds over
``2m`` bits (the smallest even width covering ``size``), keyed BLAKE2b as the round
function, and cycle walking down to ``[0, size)`` (Black and Rogaway, "Ciphers with
Arbitrary Finite Domains", 2002). Not for secrecy against cryptanalysis: for not leaking
issuance volume to relying parties.
"""

from __future__ import annotations

import hashlib

__all__ = ["permute"]

_ROUNDS = 4


def _width(size: int) -> int:
    """Half the bit width of the Feistel domain: the smallest m with 4**m >= size."""
    m = 1
    while 1 << (2 * m) < size:
        m += 1
    return m


def _round(key: bytes, number: int, half: int, m: int) -> int:
    # BLAKE2b's own keyed mode is a PRF (RFC 7693 2.5) and costs a fraction of an HMAC.
    digest = hashlib.blake2b(
        bytes([number]) + half.to_bytes(8, "big"), key=key[:64], digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") & ((1 << m) - 1)


def _feistel(key: bytes, value: int, m: int) -> int:
    mask = (1 << m) - 1
    left, right = value >> m, value & mask
    for number in range(_ROUNDS):
        left, right = right, left ^ _round(key, number, right, m)
    return (left << m) | right


def permute(key: bytes, size: int, slot: int) -> int:
    """The index of ``slot`` (0 <= slot < size) in a list of ``size`` entries."""
    if not 0 <= slot < size:
        raise ValueError("slot out of range")
    m = _width(size)
    value = _feistel(key, slot, m)
    while value >= size:  # cycle walking: stays a bijection on [0, size)
        value = _feistel(key, value, m)
    return value
