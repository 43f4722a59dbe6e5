"""teiten.store.order: the radix orders equal numpy's stable sorts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.store.order import packet_order, radix_order

words = st.lists(st.integers(0, (1 << 32) - 1) | st.integers(0, 5), max_size=300)


@settings(max_examples=80, deadline=None)
@given(words)
def test_packet_order_sorts_by_source_then_shape_stably(values: list[int]) -> None:
    src = np.array(values, np.uint32)
    rows = np.arange(len(src))
    # a few protocols per source; the low bits (fragment fields) do not order rows
    shape = ((src.astype(np.int64) * 7919) % 3 << 55) | (rows % 5 << 6)
    want = np.lexsort((rows, shape >> 39, src))
    assert (packet_order(src, shape) == want).all()


@settings(max_examples=80, deadline=None)
@given(st.data(), st.integers(0, 300))
def test_radix_order_sorts_by_each_key_in_turn(data: st.DataObject, n: int) -> None:
    first = np.array(data.draw(st.lists(st.integers(0, 9) | st.integers(0, (1 << 32) - 1),
                                        min_size=n, max_size=n)), np.uint32)  # fmt: skip
    second = np.array(data.draw(st.lists(st.integers(0, 70000), min_size=n, max_size=n)), np.uint32)
    want = np.lexsort((np.arange(n), second, first))  # stable: ties keep their order
    assert (radix_order(first, second) == want).all()
    assert (radix_order() == np.zeros(0)).all()


@settings(max_examples=80, deadline=None)
@given(st.data(), st.integers(0, 300))
def test_radix_order_takes_any_integer_width_and_sign(data: st.DataObject, n: int) -> None:
    wide = st.integers(-(1 << 63), (1 << 63) - 1) | st.integers(-3, 3)
    first = np.array(data.draw(st.lists(wide, min_size=n, max_size=n)), np.int64)
    second = np.array(data.draw(st.lists(st.integers(0, (1 << 64) - 1), min_size=n, max_size=n)),
                      np.uint64)  # fmt: skip
    third = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    want = np.lexsort((np.arange(n), third, second, first))
    assert (radix_order(first, second, third) == want).all()
    assert (radix_order(np.sort(first)) == np.arange(n)).all()  # sorted: no pass, same rows
