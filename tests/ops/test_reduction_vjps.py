"""Reductions where the mutation check found the tests silent: ties in max/min split the gradient
evenly, prod's gradient around zeros, gradients keep the input's dtype, mean's decomposition (what
a backend without a fused mean runs) over an axis, and the reduction rule's shapes and axis
errors. Hand-derived expectations."""
import numpy as np
import pytest

import plugrad as P
from plugrad.autodiff import GradManager
from plugrad.core.registry import OPS, Spec

F = P.functional


@pytest.mark.parametrize("reduce", [F.max, F.min])
def test_tied_extrema_share_the_gradient_evenly(reduce):
    x = P.Tensor(np.array([[1.0, 3.0, 3.0], [3.0, 3.0, 3.0]]) * (1 if reduce is F.max else -1),
                 dtype="float64")
    gm = GradManager().attach([x])
    with gm:
        gm.backward((reduce(x, axis=1) * P.Tensor([2.0, 6.0], dtype="float64")).sum())
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 1.0, 1.0], [2.0, 2.0, 2.0]])


@pytest.mark.parametrize("reduce", [F.max, F.min, F.sum, F.mean, F.prod])
def test_reduction_gradients_keep_a_float64_input_s_dtype(reduce):
    x = P.Tensor(np.array([[1.0, 2.0], [4.0, 3.0]]), dtype="float64")
    gm = GradManager().attach([x])
    with gm:
        gm.backward(reduce(x, axis=0).sum())
    assert x.grad.dtype == np.float64


@pytest.mark.parametrize("axis, keepdims", [((1,), False), ((0, 2), True), (None, False)])
def test_mean_decomposition_reduces_only_the_given_axes(axis, keepdims):
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4) ** 1.5
    got = OPS["mean"].decomposition(P.Tensor(x, dtype="float64"), axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(got.numpy(), x.mean(axis=axis, keepdims=keepdims), rtol=1e-12)


def test_prod_gradient_is_the_product_of_the_other_elements_even_with_zeros():
    # Rows with no zero, one zero (only the zero's entry is non-zero) and two zeros (all zero).
    x = P.Tensor(np.array([[2.0, 3.0, 4.0], [0.0, 5.0, 6.0], [0.0, 0.0, 7.0]]), dtype="float64")
    g = P.Tensor([1.0, 2.0, 3.0], dtype="float64")
    gm = GradManager().attach([x])
    with gm:
        gm.backward((F.prod(x, axis=1) * g).sum())
    np.testing.assert_array_equal(x.grad.numpy(),
                                  [[12.0, 8.0, 6.0], [60.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


def test_reduction_rule_shapes_and_axis_errors():
    rule = OPS["sum"].rule
    f32 = np.dtype("float32")
    spec = Spec((2, 3), f32)
    assert rule(spec, axis=None, keepdims=True) == ((1, 1), f32)
    assert rule(spec, axis=None, keepdims=False) == ((), f32)
    assert rule(spec, axis=(1,), keepdims=True) == ((2, 1), f32)
    with pytest.raises(ValueError, match=r"^sum: axis must be None or a sorted tuple of axes in "
                                         r"\[0, 2\); got \(2,\)$"):
        rule(spec, axis=(2,), keepdims=False)
    with pytest.raises(ValueError, match=r"axis must be None"):
        rule(spec, axis=(1.0,), keepdims=False)
