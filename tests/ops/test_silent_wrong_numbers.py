"""Values a dtype cannot hold and indices out of range raise instead of wrapping silently."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.functional as F
from plugrad import Tensor


@pytest.mark.parametrize("data, dtype, match", [
    ([2**40], None, "do not fit in int32"),
    (np.array([2**40, 1]), None, "do not fit in int32"),
    ([300], "int8", "do not fit in int8"),
    ([-1], "uint8", "do not fit in uint8"),
    ([float("nan")], "int32", "do not fit in int32"),
    (np.array([1e300]), None, "overflows float32"),
    ([70000.0], "float16", "overflows float16"),
    ([2**70], None, "does not fit in 64 bits"),
])
def test_conversions_refuse_values_the_dtype_cannot_hold(data, dtype, match):
    with pytest.raises(ValueError, match=rf"^Tensor: .*{match}"):
        Tensor(data, dtype=dtype)


@pytest.mark.parametrize("data, dtype, expected", [
    ([2**31 - 1, -2**31], None, [2**31 - 1, -2**31]),  # the int32 limits themselves fit
    (np.array([3.4e38, -np.inf, np.nan]), None, [3.4e38, -np.inf, np.nan]),  # inf/nan stay
    ([255], "uint8", [255]),
])
def test_values_that_fit_convert_exactly(data, dtype, expected):
    out = Tensor(data, dtype=dtype).numpy()
    np.testing.assert_array_equal(out, np.array(expected, dtype=out.dtype))


def test_a_tensor_does_not_share_the_array_it_was_made_from():
    source = np.array([1.0, 2.0], "float32")
    t = Tensor(source)
    source[0] = 9.0
    assert t.numpy().tolist() == [1.0, 2.0]


def test_a_ragged_list_names_the_row_lengths():
    with pytest.raises(ValueError, match=r"^Tensor: the nested lists are ragged.*\[2, 1\]"):
        Tensor([[1, 2], [3]])


def test_a_python_int_too_big_for_the_tensor_dtype_is_a_value_error():
    with pytest.raises(ValueError, match="does not fit in the int32"):
        Tensor([1, 2]) + 2**40


LOGITS = np.zeros((2, 10), "float32")


@pytest.mark.parametrize("call, op", [
    (lambda: F.nn.cross_entropy(Tensor(LOGITS), Tensor([1, -1])), "cross_entropy"),
    (lambda: F.nn.cross_entropy(Tensor(LOGITS), Tensor([10, 0])), "cross_entropy"),
    (lambda: F.nn.cross_entropy(Tensor(LOGITS), Tensor([1, -1]), label_smooth=0.1),
     "cross_entropy"),
    (lambda: F.nn.one_hot(Tensor([12]), 10), "one_hot"),
    (lambda: F.nn.one_hot(Tensor([-1]), 10), "one_hot"),
    (lambda: F.nn.indexing_one_hot(Tensor(LOGITS), Tensor([0, -1])), "indexing_one_hot"),
    (lambda: F.gather(Tensor(LOGITS), 1, Tensor([[0], [-1]])), "gather"),
    (lambda: F.scatter_add(Tensor(LOGITS), 1, Tensor([[0], [10]]), Tensor([[1.0], [1.0]])),
     "scatter_add"),
    (lambda: F.nn.embedding(Tensor([0, 3]), Tensor(np.ones((3, 2), "float32"))), "embedding"),
])
def test_indices_out_of_range_raise_an_index_error_naming_the_op(call, op):
    with pytest.raises(IndexError, match=rf"^{op}: .* out of range"):
        call()


def test_in_range_labels_still_give_the_reference_loss():
    logits = np.array([[1.0, 2.0, 0.5], [0.1, 0.2, 3.0]])
    labels = np.array([2, 0])
    log_prob = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -log_prob[np.arange(2), labels].mean()
    got = F.nn.cross_entropy(Tensor(logits, dtype="float64"), Tensor(labels)).item()
    assert got == pytest.approx(expected, rel=1e-12)
    assert F.nn.one_hot(Tensor([9]), 10).numpy().tolist() == [[0] * 9 + [1]]


@pytest.mark.parametrize("operand", ["a", None, {"k": 1}, [1.0, "x"], np.array(["u"])],
                         ids=["str", "None", "dict", "mixed list", "str array"])
def test_a_non_numeric_operand_is_a_type_error_naming_the_op(operand):
    with pytest.raises(TypeError, match=rf"^mul: cannot combine a Tensor with "
                                        rf"{type(operand).__name__} "):
        Tensor([1.0]) * operand
    with pytest.raises(TypeError, match=r"^sub: cannot combine"):
        operand - Tensor([1.0])
