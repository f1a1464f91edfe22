"""F.tile, F.repeat, F.eye and F.normalize: NumPy's results, gradients summed over copies."""
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


def test_eye_and_normalize():
    assert F.eye(2, 3).numpy().tolist() == [[1, 0, 0], [0, 1, 0]]
    assert F.eye(2, dtype="int32").dtype == np.int32
    assert np.allclose(F.normalize(Tensor([[3.0, 4.0], [0.0, 0.0]]), axis=1).numpy(),
                       [[0.6, 0.8], [0.0, 0.0]])
    assert np.allclose(F.normalize(Tensor([1.0, -3.0]), ord=1).numpy(), [0.25, -0.75])


@pytest.mark.parametrize("call, kind, words", [
    (lambda: F.tile(Tensor([1.0]), 2.5), TypeError, ["tile", "reps"]),
    (lambda: F.tile(Tensor([1.0]), (2, -1)), ValueError, ["tile", "non-negative", "-1"]),
    (lambda: F.repeat(Tensor([1.0]), 2, axis=3), ValueError, ["repeat", "axis 3"]),
    (lambda: F.repeat(Tensor([1.0]), "2"), TypeError, ["repeat", "repeats must be an int"]),
    (lambda: F.eye(-1), ValueError, ["eye", "N", "non-negative"]),
    (lambda: F.normalize(Tensor([1.0]), ord=0), ValueError, ["normalize", "positive"]),
])
def test_bad_input_names_the_op_and_what_is_allowed(call, kind, words):
    with pytest.raises(kind) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)
