"""RFC 9162 hashing and proofs: the tile-based tree against an independent implementation.

The reference below is written from RFC 9162 section 2.1 directly (MTH, PATH, PROOF over a
list of leaves), sharing no code with attest.log.merkle or attest.verify._tlog.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from attest.log import merkle
from attest.verify import _tlog


def _mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


def _tree(leaves: list[bytes], step: int = 1) -> dict[tuple[int, int], bytes]:
    """Tiles built by appending ``step`` leaves at a time (the sequencer's batches)."""
    tiles: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(leaves), step):
        tiles.update(merkle.append(start, tiles, leaves[start : start + step]))
    return tiles


LEAVES = [f"leaf {i}".encode() for i in range(300)]


def test_rfc6962_empty_and_known_roots() -> None:
    # RFC 6962 / transparency-dev known answers: the empty tree and one empty leaf.
    assert _mth([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert _tlog.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 300])
@pytest.mark.parametrize("step", [1, 7, 256])
def test_roots_and_inclusion_match_the_reference(size: int, step: int) -> None:
    leaves = LEAVES[:size]
    tiles = _tree(leaves, step)
    (root,) = merkle.resolve(merkle.root_plan(size), tiles)
    assert root == _mth(leaves)
    for index in {i for i in (0, 1, size // 2, size - 2, size - 1) if 0 <= i < size}:
        proof = merkle.resolve(merkle.inclusion_plan(index, size), tiles)
        assert proof == _path(index, leaves)
        _tlog.verify_inclusion(index, size, _tlog.leaf_hash(leaves[index]), proof, root)


@pytest.mark.parametrize(
    ("first", "second"), [(1, 2), (1, 8), (3, 7), (4, 8), (6, 8), (255, 256), (256, 257), (5, 300)]
)
def test_consistency_matches_the_reference(first: int, second: int) -> None:
    tiles = _tree(LEAVES[:second], 13)
    proof = merkle.resolve(merkle.consistency_plan(first, second), tiles)
    assert proof == _subproof(first, LEAVES[:second], True)
    _tlog.verify_consistency(first, second, _mth(LEAVES[:first]), _mth(LEAVES[:second]), proof)
    with pytest.raises(_tlog.LogError) as refused:
        _tlog.verify_consistency(
            first, second, _mth([b"forged", *LEAVES[1:first]]), _mth(LEAVES[:second]), proof
        )
    assert refused.value.code in {"fork", "bad_proof"}


def test_every_index_and_pair_of_a_small_tree() -> None:
    leaves = LEAVES[:20]
    tiles = _tree(leaves, 3)
    for size in range(1, 21):
        root = _mth(leaves[:size])
        for index in range(size):
            proof = merkle.resolve(merkle.inclusion_plan(index, size), tiles)
            _tlog.verify_inclusion(index, size, _tlog.leaf_hash(leaves[index]), proof, root)
            with pytest.raises(_tlog.LogError):
                _tlog.verify_inclusion(index, size, _tlog.leaf_hash(b"other"), proof, root)
        for first in range(1, size + 1):
            proof = merkle.resolve(merkle.consistency_plan(first, size), tiles)
            _tlog.verify_consistency(first, size, _mth(leaves[:first]), root, proof)


def test_a_full_tile_is_stored_and_the_level_one_tile_starts() -> None:
    tiles = _tree(LEAVES[:257], 100)
    assert len(tiles[(0, 0)]) == 256 * 32
    assert len(tiles[(0, 1)]) == 32
    assert tiles[(1, 0)] == _mth(LEAVES[:256])


def test_the_second_tile_level_boundary_65536_leaves() -> None:
    leaves = [b"%d" % i for i in range(65537)]
    tiles = _tree(leaves, 4096)
    assert len(tiles[(1, 0)]) == 256 * 32  # a full level-1 tile: 256 full level-0 tiles
    assert tiles[(2, 0)] == _mth(leaves[:65536])
    assert len(tiles[(0, 256)]) == 32
    root = _mth(leaves)
    (computed,) = merkle.resolve(merkle.root_plan(65537), tiles)
    assert computed == root
    for index in (0, 65535, 65536):
        proof = merkle.resolve(merkle.inclusion_plan(index, 65537), tiles)
        _tlog.verify_inclusion(index, 65537, _tlog.leaf_hash(leaves[index]), proof, root)
    proof = merkle.resolve(merkle.consistency_plan(65536, 65537), tiles)
    _tlog.verify_consistency(65536, 65537, tiles[(2, 0)], root, proof)


def test_wrong_proofs_are_refused() -> None:
    leaves = LEAVES[:9]
    tiles = _tree(leaves)
    root = _mth(leaves)
    proof = merkle.resolve(merkle.inclusion_plan(4, 9), tiles)
    for bad in (proof[:-1], [*proof, proof[0]], [b"\0" * 32, *proof[1:]], [b"short"]):
        with pytest.raises(_tlog.LogError):
            _tlog.verify_inclusion(4, 9, _tlog.leaf_hash(leaves[4]), bad, root)
    with pytest.raises(_tlog.LogError):
        _tlog.verify_inclusion(9, 9, _tlog.leaf_hash(leaves[4]), proof, root)


@pytest.mark.parametrize(
    ("index", "path"),
    [(0, "000"), (5, "005"), (1000, "x001/000"), (1234067, "x001/x234/067")],
)
def test_tile_paths(index: int, path: str) -> None:
    # C2SP tlog-tiles examples.
    assert merkle.tile_path_index(index) == path
    assert merkle.parse_tile_index(path.split("/")) == index


@pytest.mark.parametrize(
    "path",
    ["x000/005", "5", "0005", "x01/000", "abc", "x001/x002", "00\u00b9", "x\u00b9\u00b2\u00b3/000"],
)
def test_non_canonical_tile_paths_are_refused(path: str) -> None:
    assert merkle.parse_tile_index(path.split("/")) is None


def test_signed_note_and_vkey() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    vkey = _tlog.vkey("example.com/log", public)
    name, hex_id, encoded = vkey.split("+", 2)
    assert name == "example.com/log"
    assert len(hex_id) == 8
    assert base64.b64decode(encoded)[0] == 1
    text = _tlog.format_checkpoint("example.com/log", 3, b"\1" * 32)
    note = text + "\n" + _tlog.signature_line(name, public, key.sign(text.encode()))
    checkpoint = _tlog.open_checkpoint(note, _tlog.parse_vkey(vkey))
    assert (checkpoint.size, checkpoint.root) == (3, b"\1" * 32)
    with pytest.raises(_tlog.LogError) as refused:
        _tlog.open_checkpoint(note.replace("\n3\n", "\n4\n"), _tlog.parse_vkey(vkey))
    assert refused.value.code == "bad_signature"
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with pytest.raises(_tlog.LogError) as refused:
        _tlog.open_checkpoint(note, _tlog.parse_vkey(_tlog.vkey("example.com/log", other)))
    assert refused.value.code == "unknown_key"


def test_go_sumdb_note_known_answer() -> None:
    # golang.org/x/mod/sumdb/note documentation example: the verifier key of PeterNeumann.
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    parsed = _tlog.parse_vkey(vkey)
    assert parsed.key_id.hex() == "c74f20a3"
    note = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
        "\n"
        "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZS"
        "NXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    text = _tlog._open_note(note, parsed)
    assert text.startswith("If you think")
