"""The keyed permutation behind status-list indexes: a bijection on [0, size), keyed."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.status.permutation import permute
from attest.status.service import encode_list


@pytest.mark.parametrize("size", [16, 20, 100, 1024, 4096])
def test_every_slot_gets_its_own_index_in_range(size: int) -> None:
    key = bytes(range(32))
    assert sorted(permute(key, size, slot) for slot in range(size)) == list(range(size))


def test_the_key_decides_the_order_and_slots_are_not_indexes() -> None:
    a = [permute(b"a" * 32, 4096, s) for s in range(64)]
    b = [permute(b"b" * 32, 4096, s) for s in range(64)]
    assert a != b
    assert a != list(range(64))
    # consecutive slots land far apart: a counter cannot be read back from indexes
    assert sum(abs(x - y) == 1 for x, y in itertools.pairwise(a)) < 4


@settings(max_examples=50, deadline=None)
@given(size=st.integers(min_value=1, max_value=300).map(lambda n: n * 4), data=st.data())
def test_permute_is_deterministic_and_in_range(size: int, data: st.DataObject) -> None:
    slot = data.draw(st.integers(min_value=0, max_value=size - 1))
    key = data.draw(st.binary(min_size=32, max_size=32))
    assert 0 <= permute(key, size, slot) < size
    assert permute(key, size, slot) == permute(key, size, slot)


def test_a_slot_outside_the_list_is_refused() -> None:
    with pytest.raises(ValueError, match="slot"):
        permute(b"k" * 32, 16, 16)


def test_entries_are_packed_two_bits_each_least_significant_first() -> None:
    import base64
    import zlib

    lst = encode_list(8, [(0, 1), (1, 2), (5, 1)])
    raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
    assert raw == bytes([0b00001001, 0b00000100])
