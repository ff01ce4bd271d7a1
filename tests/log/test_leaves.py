"""The leaf encoder's fast path writes exactly the bytes of the rfc8785 package (RFC 8785),
and leaves everything else to it, errors included (attest/log/leaves.py)."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from attest.log import leaves
from attest.log.leaves import canonical_json

SAFE = 2**53 - 1
# Every kind of character that canonicalisation treats apart: controls, the quote and the
# backslash, DEL, non-ASCII, the BMP's private use area and characters beyond the BMP
# (whose UTF-16 order differs), U+2028/U+2029 (not escaped by JSON).
TEXT = st.text(
    st.one_of(
        st.characters(max_codepoint=0x7F),
        st.sampled_from(["\u00e9", "\u2028", "\u2029", "\ue000", "\uffff", "\U0001f600"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=12,
)
KEYS = st.one_of(st.text(st.characters(max_codepoint=0x7F), max_size=8), TEXT)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-SAFE, max_value=SAFE),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)


def _either(value: object) -> tuple[str, bytes | str]:
    try:
        return "ok", rfc8785.dumps(value)
    except Exception as exc:
        return "error", type(exc).__name__


def _ours(value: object) -> tuple[str, bytes | str]:
    try:
        return "ok", canonical_json(value)
    except Exception as exc:
        return "error", type(exc).__name__


@settings(max_examples=3000, deadline=None)
@given(VALUES)
def test_canonical_json_is_rfc8785_on_any_value(value: object) -> None:
    assert _ours(value) == _either(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [True, None, 'x\u0000\u001f\u007f"\\\b\f\n\r\t']},
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order puts the emoji first
        {"n": 2**53 - 1, "m": -(2**53) + 1},
        {"n": 2**53},  # beyond the safe domain: rfc8785's error
        {"s": "\ud800"},  # a lone surrogate: rfc8785's error
        {"f": 1.0, "g": 1e21, "h": -0.0},
        {"data": {"reasons": ["ial2_required"], "audience": "model:fable-5"}},
    ],
)
def test_canonical_json_matches_rfc8785_on_the_edges(value: object) -> None:
    assert _ours(value) == _either(value)


def test_plain_events_never_reach_the_rfc8785_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(value: object) -> bytes:
        raise AssertionError("the slow path was taken")

    monkeypatch.setattr(leaves.rfc8785, "dumps", refuse)
    value = {"z": "\u00e9\u2028", "a": [1, -2, None, False], "d": {"k": "v\n"}}
    assert (
        canonical_json(value)
        == '{"a":[1,-2,null,false],"d":{"k":"v\\n"},"z":"\u00e9\u2028"}'.encode()
    )
    with pytest.raises(AssertionError, match="slow path"):
        canonical_json({"f": 0.5})
