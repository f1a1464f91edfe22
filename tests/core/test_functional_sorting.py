"""F.sort, F.argsort and F.topk: MegEngine's semantics, a defined tie order, clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.functional as F
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager


def test_ties_keep_their_input_order_both_ways():
    x = Tensor([2.0, 1.0, 2.0, 1.0, 3.0])
    assert F.argsort(x).numpy().tolist() == [1, 3, 0, 2, 4]
    assert F.argsort(x, descending=True).numpy().tolist() == [4, 0, 2, 1, 3]
    values, indices = F.sort(x, descending=True)
    assert values.numpy().tolist() == [3.0, 2.0, 2.0, 1.0, 1.0]
    assert indices.numpy().tolist() == [4, 0, 2, 1, 3] and indices.dtype == np.int32


def test_unsigned_and_bool_sort_descending():
    assert F.argsort(Tensor(np.array([0, 255, 7, 255], np.uint8)), True).numpy().tolist() \
        == [1, 3, 2, 0]
    assert F.sort(Tensor(np.array([True, False, True])))[0].numpy().tolist() \
        == [False, True, True]


def test_rows_are_sorted_along_the_last_axis():
    values, indices = F.sort(Tensor([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]]))
    assert values.numpy().tolist() == [[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]]
    assert indices.numpy().tolist() == [[1, 2, 0], [1, 0, 2]]


def test_topk_is_the_smallest_by_default_and_kth_only_returns_no_indices():
    x = Tensor([[4.0, 1.0, 3.0, 2.0], [0.0, 9.0, 8.0, 7.0]])
    values, indices = F.topk(x, 2)
    assert values.numpy().tolist() == [[1.0, 2.0], [0.0, 7.0]]
    assert indices.numpy().tolist() == [[1, 3], [0, 3]]
    values, indices = F.topk(x, 3, descending=True)
    assert values.numpy().tolist() == [[4.0, 3.0, 2.0], [9.0, 8.0, 7.0]]
    kth, none = F.topk(x, 2, kth_only=True)
    assert none is None and kth.shape == (2,) and kth.numpy().tolist() == [2.0, 7.0]


def test_gradient_goes_back_to_where_each_value_came_from():
    x = Parameter([3.0, 1.0, 2.0])
    gm = GradManager().attach([x])
    with gm:
        values, _ = F.topk(x, 2, descending=True)  # picks x[0], x[2]
        gm.backward(values, Tensor([10.0, 20.0]))
    assert x.grad.numpy().tolist() == [10.0, 0.0, 20.0]


@pytest.mark.parametrize("call, kind, words", [
    (lambda: F.sort(Tensor(1.0)), ValueError, ["sort", "0-d"]),
    (lambda: F.argsort(Tensor([1.0]), descending="yes"), TypeError, ["argsort", "bool"]),
    (lambda: F.topk(Tensor([[1.0, 2.0]]), 3), ValueError, ["topk", "k=3", "(1, 2)", "1 <= k <= 2"]),
    (lambda: F.topk(Tensor([1.0, 2.0]), 0), ValueError, ["topk", "1 <= k <= 2"]),
    (lambda: F.topk(Tensor([1.0, 2.0]), 1.5), TypeError, ["topk", "k must be an int"]),
])
def test_bad_input_names_the_op_and_what_is_allowed(call, kind, words):
    with pytest.raises(kind) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)
