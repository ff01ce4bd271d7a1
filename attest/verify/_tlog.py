"""Offline checks of the attest transparency log: standard library and ``cryptography`` only.

RFC 9162 section 2.1 Merkle hashing and proof verification, C2SP ``signed-note`` with
Ed25519 (type 0x01) verifier keys, C2SP ``tlog-checkpoint`` and ``tlog-proof`` parsing.
Private: the auditor CLI (:mod:`attest.verify._auditor`) and the service use it; every
refusal is a :class:`LogError` whose ``code`` says which check failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "LogError",
    "TlogProof",
    "VerifierKey",
    "format_checkpoint",
    "format_tlog_proof",
    "key_id",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "parse_tlog_proof",
    "parse_vkey",
    "root_from_inclusion",
    "signature_line",
    "verify_consistency",
    "verify_inclusion",
    "vkey",
]

HASH_SIZE = 32
_ED25519 = 0x01  # C2SP signed-note: signature type of Ed25519 keys
_DASH = "\u2014"  # C2SP signed-note: every signature line starts with an em dash and a space
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_NOTE_SIZE = 1 << 20


class LogError(Exception):
    """A log artefact does not verify; ``code`` names the failed check."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# RFC 9162 section 2.1.1: domain separation of leaves (0x00) and interior nodes (0x01).
def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """The root an inclusion proof implies (RFC 9162 section 2.1.3.2), or LogError."""
    if not 0 <= index < size:
        raise LogError("bad_proof", f"index {index} is not inside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE:
            raise LogError("bad_proof", "an inclusion proof hash is not 32 bytes")
        if sn == 0:
            raise LogError("bad_proof", "the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise LogError("bad_proof", "the inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2: ``leaf`` (a leaf hash) is at ``index`` of the tree ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise LogError("bad_proof", f"the inclusion proof of leaf {index} misses the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2: the tree ``second_root`` extends the tree ``first_root``."""
    if not 0 <= first <= second:
        raise LogError("bad_proof", f"no consistency proof from size {first} to {second}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise LogError("bad_proof", "a consistency proof hash is not 32 bytes")
    if first == second:
        if proof:
            raise LogError("bad_proof", "a proof between equal sizes must be empty")
        if first_root != second_root:
            raise LogError("fork", f"two different roots for the same tree size {first}")
        return
    if first == 0:
        if proof:
            raise LogError("bad_proof", "a proof from the empty tree must be empty")
        return
    path = list(proof)
    # Step 1: if first is an exact power of 2, prepend first_hash to the path.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        raise LogError("bad_proof", "the consistency proof is empty")
    # Steps 2-4.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise LogError("bad_proof", "the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise LogError("bad_proof", "the consistency proof is too short")
    if fr != first_root or sr != second_root:
        raise LogError(
            "fork",
            f"the tree of size {second} does not extend the tree of size {first}: "
            "the log was rewritten or forked",
        )


# C2SP signed-note: key ID = first 4 bytes of SHA-256(name || 0x0A || type || public key).
def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + public_key).digest()[:4]


def vkey(name: str, public_key: bytes) -> str:
    """The C2SP verifier key ``<name>+<8 hex key id>+<base64(0x01 || public key)>``."""
    encoded = base64.b64encode(bytes([_ED25519]) + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


@dataclass(frozen=True, slots=True)
class VerifierKey:
    name: str
    key_id: bytes
    public_key: bytes

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_vkey(text: str) -> VerifierKey:
    name, sep1, rest = text.strip().partition("+")
    hex_id, sep2, encoded = rest.partition("+")
    if not (sep1 and sep2) or not name or any(c.isspace() for c in name):
        raise LogError("bad_key", "a verifier key is <name>+<8 hex digits>+<base64>")
    try:
        raw = base64.b64decode(encoded, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError):
        raise LogError("bad_key", "the verifier key is not valid hex and base64") from None
    if len(wanted) != 4 or len(raw) != 33 or raw[0] != _ED25519:
        raise LogError("bad_key", "only Ed25519 (type 0x01) verifier keys are supported")
    if key_id(name, raw[1:]) != wanted:
        raise LogError("bad_key", "the verifier key's id does not match its name and key")
    return VerifierKey(name, wanted, raw[1:])


def signature_line(name: str, public_key: bytes, signature: bytes) -> str:
    encoded = base64.b64encode(key_id(name, public_key) + signature).decode()
    return f"{_DASH} {name} {encoded}\n"


def _open_note(note: str, key: VerifierKey) -> str:
    """The text of a signed note that ``key`` signed (C2SP signed-note), or LogError."""
    if len(note) > MAX_NOTE_SIZE:
        raise LogError("bad_checkpoint", "the signed note is too large")
    text, sep, signatures = note.rpartition("\n\n")
    if not sep or not text:
        raise LogError("bad_checkpoint", "a signed note is text, a blank line, signature lines")
    text += "\n"
    if not signatures.endswith("\n"):
        raise LogError("bad_checkpoint", "a signed note ends with a newline")
    found_name = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(_DASH + " "):
            raise LogError("bad_checkpoint", "a signature line starts with an em dash")
        name, _, encoded = line[2:].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise LogError("bad_checkpoint", "a note signature is not base64") from None
        if name != key.name or raw[:4] != key.key_id:
            continue
        found_name = True
        if len(raw) == 68 and key.verify(text.encode(), raw[4:]):
            return text
        raise LogError("bad_signature", f"the signature by {key.name} does not verify")
    if not found_name:
        raise LogError(
            "unknown_key",
            f"the checkpoint is not signed by the expected log key {key.name}+"
            f"{key.key_id.hex()} (signed by another key?)",
        )
    raise LogError("bad_signature", "no valid signature")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str


def format_checkpoint(origin: str, size: int, root: bytes) -> str:
    """C2SP tlog-checkpoint note text: origin, tree size, base64 root, each on a line."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def open_checkpoint(note: str, key: VerifierKey) -> Checkpoint:
    """Check the signature by ``key`` and parse the checkpoint (C2SP tlog-checkpoint)."""
    text = _open_note(note, key)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise LogError("bad_checkpoint", "a checkpoint has origin, size and root lines")
    origin, size_text, root_text = lines[:3]
    if origin != key.name:
        raise LogError("bad_checkpoint", f"checkpoint origin {origin!r} is not {key.name!r}")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise LogError("bad_checkpoint", "the tree size is not a decimal without leading zeros")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise LogError("bad_checkpoint", "the root hash is not base64") from None
    if len(root) != HASH_SIZE:
        raise LogError("bad_checkpoint", "the root hash is not 32 bytes")
    return Checkpoint(origin, int(size_text), root, text)


@dataclass(frozen=True, slots=True)
class TlogProof:
    index: int
    proof: list[bytes]
    checkpoint: str


def format_tlog_proof(index: int, proof: list[bytes], checkpoint: str) -> str:
    """C2SP tlog-proof: header, ``index N``, the audit path, a blank line, the checkpoint."""
    hashes = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"{TLOG_PROOF_HEADER}\nindex {index}\n{hashes}\n{checkpoint}"


def parse_tlog_proof(text: str) -> TlogProof:
    head, sep, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != TLOG_PROOF_HEADER:
        raise LogError("bad_proof", f"not a {TLOG_PROOF_HEADER} proof")
    rest = lines[1:]
    if rest and rest[0].startswith("extra "):
        rest = rest[1:]  # opaque application data: attest sets none and reads none
    if not rest or not rest[0].startswith("index ") or not rest[0][6:].isdigit():
        raise LogError("bad_proof", "the tlog-proof has no 'index N' line")
    index = int(rest[0][6:])
    proof = []
    for line in rest[1:]:
        try:
            proof.append(base64.b64decode(line, validate=True))
        except binascii.Error:
            raise LogError("bad_proof", "a proof hash is not base64") from None
    return TlogProof(index, proof, checkpoint)
