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


def test_topk_takes_the_largest_by_default_as_megengine_1_13():
    x = Tensor([[4.0, 1.0, 3.0, 2.0], [0.0, 9.0, 8.0, 7.0]])
    values, indices = F.topk(x, 2)
    assert values.numpy().tolist() == [[4.0, 3.0], [9.0, 8.0]]
    assert indices.numpy().tolist() == [[0, 2], [1, 2]] and indices.dtype == np.int32
    values, indices = F.topk(x, 3, descending=False)
    assert values.numpy().tolist() == [[1.0, 2.0, 3.0], [0.0, 7.0, 8.0]]
    assert indices.numpy().tolist() == [[1, 3, 2], [0, 3, 2]]
    # MegEngine's docstring example: the 5 smallest of a vector
    top, where = F.topk(Tensor([2.0, 4.0, 6.0, 8.0, 7.0, 5.0, 3.0, 1.0]), 5, descending=False)
    assert top.numpy().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert where.numpy().tolist() == [7, 0, 6, 1, 5]


def test_topk_k_may_be_a_0d_tensor_or_numpy_int():
    x = Tensor([5.0, 1.0, 4.0])
    assert F.topk(x, Tensor(2, dtype="int32"))[0].numpy().tolist() == [5.0, 4.0]
    assert F.topk(x, np.int64(1))[1].numpy().tolist() == [0]


def test_kth_only_returns_the_kth_value_and_where_it_first_occurs():
    x = Tensor([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 1.0, 0.0]])
    kth, index = F.topk(x, 2, kth_only=True)  # second largest: 3 (twice), 5 (twice)
    assert kth.shape == (2,) and kth.numpy().tolist() == [3.0, 5.0]
    assert index.dtype == np.int32 and index.numpy().tolist() == [1, 0]
    kth, index = F.topk(Tensor([3.0, 1.0, 2.0, 1.0]), 2, descending=False, kth_only=True)
    assert kth.shape == () and kth.item() == 1.0 and index.item() == 1


def test_gradient_goes_back_to_where_each_value_came_from():
    x = Parameter([3.0, 1.0, 2.0])
    gm = GradManager().attach([x])
    with gm:
        values, _ = F.topk(x, 2)  # the two largest: x[0], x[2]
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
