"""transparency-dev/merkle's RFC 6962 known answers (tests/vectors/transparency-dev): the
service's tile-based tree produces those roots and proofs, and the offline verifier accepts
them and refuses corrupted ones (the corruptions of the Go module's own tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attest.log import merkle
from attest.verify import _tlog

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors/transparency-dev/rfc6962_vectors.json").read_text()
)
LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots"]]
TILES = merkle.append(0, {}, LEAVES)


def test_roots() -> None:
    for size in range(1, len(LEAVES) + 1):
        assert merkle.resolve(merkle.root_plan(size), TILES) == [ROOTS[size]]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['index']}-{c['size']}")
def test_inclusion(case: dict[str, Any]) -> None:
    index, size = case["index"], case["size"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert merkle.resolve(merkle.inclusion_plan(index, size), TILES) == proof
    leaf = _tlog.leaf_hash(LEAVES[index])
    _tlog.verify_inclusion(index, size, leaf, proof, ROOTS[size])
    corrupt = [
        (index ^ 1, size, leaf, proof),
        (index, size * 2, leaf, proof),
        (index, size, _tlog.leaf_hash(b"WrongLeaf"), proof),
        (index, size, leaf, [*proof, ROOTS[size]]),
        (index, size, leaf, [ROOTS[size], *proof]),
        *[
            (
                index,
                size,
                leaf,
                [bytes([p[0] ^ 8]) + p[1:] if j == i else p for j, p in enumerate(proof)],
            )
            for i in range(len(proof))
        ],
    ]
    if proof:
        corrupt.append((index, size, leaf, proof[:-1]))
    for bad_index, bad_size, bad_leaf, bad_proof in corrupt:
        if bad_index >= bad_size:
            continue
        with pytest.raises(_tlog.LogError):
            _tlog.verify_inclusion(bad_index, bad_size, bad_leaf, bad_proof, ROOTS[size])


@pytest.mark.parametrize(
    "case", VECTORS["consistency"], ids=lambda c: f"{c['first']}-{c['second']}"
)
def test_consistency(case: dict[str, Any]) -> None:
    first, second = case["first"], case["second"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert merkle.resolve(merkle.consistency_plan(first, second), TILES) == proof
    _tlog.verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)
    if not proof:
        return
    corrupt = [
        (first, second, ROOTS[second], ROOTS[first], proof),  # swapped roots
        (first, second, ROOTS[first], ROOTS[second], []),
        (first, second, ROOTS[first], ROOTS[second], proof[:-1]),
        (first, second, ROOTS[first], ROOTS[second], [*proof, ROOTS[first]]),
        (first, second, ROOTS[first], ROOTS[second], [proof[0], *proof]),
        (first - 1 or 2, second, ROOTS[first], ROOTS[second], proof),
        *[
            (
                first,
                second,
                ROOTS[first],
                ROOTS[second],
                [bytes([p[0] ^ 16]) + p[1:] if j == i else p for j, p in enumerate(proof)],
            )
            for i in range(len(proof))
        ],
    ]
    for a, b, r1, r2, bad in corrupt:
        with pytest.raises(_tlog.LogError):
            _tlog.verify_consistency(a, b, r1, r2, bad)
