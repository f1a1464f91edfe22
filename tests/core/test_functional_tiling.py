"""F.tile, F.repeat, F.eye and F.normalize: MegEngine's results (its docstring examples and
hand-derived values), gradients summed over copies."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.functional as F
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager


def test_tile_and_repeat_match_hand_written_results():
    x = Tensor([[1, 2], [3, 4]], dtype="int32")
    assert F.tile(x, (1, 2)).numpy().tolist() == [[1, 2, 1, 2], [3, 4, 3, 4]]
    assert F.tile(Tensor([5, 6], dtype="int32"), (2, 1)).numpy().tolist() == [[5, 6], [5, 6]]
    assert F.repeat(x, 2, axis=0).numpy().tolist() == [[1, 2], [1, 2], [3, 4], [3, 4]]
    assert F.repeat(x, 2).numpy().tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    # MegEngine's example: tile((2, 1)) stacks the rows twice
    assert F.tile(x, (2, 1)).numpy().tolist() == [[1, 2], [3, 4], [1, 2], [3, 4]]
    # a longer reps adds leading axes
    assert F.tile(x, (2, 1, 1)).shape == (2, 2, 2)
    assert F.tile(Tensor([7], dtype="int32"), Tensor([3], dtype="int32")).numpy().tolist() \
        == [7, 7, 7]


def test_gradient_of_each_copy_is_summed():
    x = Parameter([1.0, 2.0])
    gm = GradManager().attach([x])
    with gm:
        gm.backward(F.repeat(x, 3), Tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    assert x.grad.numpy().tolist() == [6.0, 15.0]
    x.grad = None
    with gm:
        gm.backward(F.tile(x, (2,)), Tensor([1.0, 2.0, 3.0, 4.0]))
    assert x.grad.numpy().tolist() == [4.0, 6.0]


def test_eye_takes_ints_or_0d_tensors():
    assert F.eye(2, 3).numpy().tolist() == [[1, 0, 0], [0, 1, 0]]
    assert F.eye(3).numpy().tolist() == np.eye(3).tolist() and F.eye(3).dtype == np.float32
    assert F.eye(2, dtype="int32").dtype == np.int32
    assert F.eye(Tensor(2, dtype="int32"), Tensor(1, dtype="int32")).numpy().tolist() \
        == [[1.0], [0.0]]


def test_normalize_megengine_examples_and_orders():
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    by_column = np.array([[1, 2, 3], [4, 5, 6]], np.float64)
    by_column = by_column / np.sqrt((by_column ** 2).sum(axis=0))
    assert np.allclose(F.normalize(x, ord=2, axis=0).numpy(), by_column, atol=1e-6)
    # MegEngine's printed values
    assert np.allclose(F.normalize(x, ord=2, axis=1).numpy(),
                       [[0.2673, 0.5345, 0.8018], [0.4558, 0.5698, 0.6838]], atol=1e-4)
    assert np.allclose(F.normalize(Tensor([[3.0, 4.0], [0.0, 0.0]]), axis=1).numpy(),
                       [[0.6, 0.8], [0.0, 0.0]])
    assert np.allclose(F.normalize(Tensor([1.0, -3.0]), ord=1).numpy(), [0.25, -0.75])
    assert np.allclose(F.normalize(Tensor([1.0, -4.0, 2.0]), ord=float("inf")).numpy(),
                       [0.25, -1.0, 0.5])
    assert np.allclose(F.normalize(Tensor([2.0, -4.0]), ord=-float("inf")).numpy(), [1.0, -2.0])
    # ord 0 counts the non-zero elements: [0, 3, 6] has two
    assert np.allclose(F.normalize(Tensor([0.0, 3.0, 6.0]), ord=0).numpy(), [0.0, 1.5, 3.0])


def test_norm_orders_along_an_axis():
    x = Tensor([[1.0, -5.0, 0.0], [2.0, 2.0, -1.0]])
    assert F.norm(x, float("inf"), axis=1).numpy().tolist() == [5.0, 2.0]
    assert F.norm(x, -float("inf"), axis=1).numpy().tolist() == [0.0, 1.0]
    assert F.norm(x, 0, axis=1).numpy().tolist() == [2.0, 3.0]
    assert F.norm(x, axis=1).numpy().tolist() == [np.float32(np.sqrt(26.0)), 3.0]


@pytest.mark.parametrize("call, kind, words", [
    (lambda: F.tile(Tensor([1.0]), 2.5), TypeError, ["tile", "reps"]),
    (lambda: F.tile(Tensor([1.0]), (2, -1)), ValueError, ["tile", "non-negative", "-1"]),
    (lambda: F.repeat(Tensor([1.0]), 2, axis=3), ValueError, ["repeat", "axis 3"]),
    (lambda: F.repeat(Tensor([1.0]), "2"), TypeError, ["repeat", "repeats must be an int"]),
    (lambda: F.eye(-1), ValueError, ["eye", "N", "non-negative"]),
    (lambda: F.tile(Tensor(np.ones((2, 2))), (3,)), ValueError,
     ["tile", "(3,)", "(2, 2)", "at least 2", "leading 1s"]),
    (lambda: F.normalize(Tensor(np.ones((2, 2)))), ValueError,
     ["normalize", "axis is required", "(2, 2)"]),
    (lambda: F.normalize(Tensor([1.0]), ord="fro"), TypeError, ["norm", "ord", "'fro'"]),
    (lambda: F.eye(Tensor(2.5)), TypeError, ["eye", "N", "int"]),
])
def test_bad_input_names_the_op_and_what_is_allowed(call, kind, words):
    with pytest.raises(kind) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)
