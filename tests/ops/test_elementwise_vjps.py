"""Gradients of the elementwise ops the mutation check found untested: pow (both inputs, the
x == 0 limit), div and sub with one input attached, where with broadcasting, and the where
rule's errors. Expectations are hand-derived or float64 finite differences."""
import numpy as np
import pytest

import plugrad as P
from plugrad.autodiff import GradManager
from plugrad.core.registry import Spec, lookup

F = P.functional
RNG = np.random.default_rng(11)


def t64(array):
    return P.Tensor(np.asarray(array, dtype=np.float64), dtype="float64")


def grads_of(fn, *arrays, attach):
    """d sum(fn(*tensors) * w)/d attached inputs, w fixed random weights; None where absent."""
    tensors = [t64(a) for a in arrays]
    wanted = [tensors[i] for i in attach]
    gm = GradManager().attach(wanted)
    with gm:
        out = fn(*tensors)
        weights = RNG.standard_normal(out.shape)
        gm.backward((out * t64(weights)).sum())
    return [t.grad.numpy() if t.grad is not None else None for t in tensors], weights


def test_pow_gradients_match_the_derivatives_of_x_to_the_y():
    x, y = RNG.uniform(0.5, 2.0, (3, 4)), RNG.uniform(-1.5, 2.5, (3, 4))
    (gx, gy), w = grads_of(F.pow, x, y, attach=[0, 1])
    np.testing.assert_allclose(gx, w * y * x ** (y - 1), rtol=1e-12)
    np.testing.assert_allclose(gy, w * x ** y * np.log(x), rtol=1e-12)


@pytest.mark.parametrize("attach", [[0], [1]])
def test_pow_gradient_reaches_the_one_attached_input(attach):
    x, y = RNG.uniform(0.5, 2.0, (2, 3)), RNG.uniform(0.5, 2.0, (2, 3))
    got, w = grads_of(F.pow, x, y, attach=attach)
    want = [w * y * x ** (y - 1), w * x ** y * np.log(x)]
    for position in range(2):
        if position in attach:
            np.testing.assert_allclose(got[position], want[position], rtol=1e-12)
        else:
            assert got[position] is None


def test_pow_exponent_gradient_is_zero_where_the_base_is_not_positive():
    # d/dy 0 ** y = 0 ** y * log 0 is taken as 0 (its limit for y > 0), never nan; a negative
    # base (real only for whole exponents) gets 0 as well, not log of anything.
    x, y = np.array([0.0, 2.0, 0.0, -2.0]), np.array([2.0, 3.0, 1.5, 3.0])
    (gx, gy), w = grads_of(F.pow, x, y, attach=[0, 1])
    np.testing.assert_allclose(gy, [0.0, w[1] * 8.0 * np.log(2.0), 0.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(gx, [0.0, w[1] * 3 * 4.0, 0.0, w[3] * 3 * 4.0], rtol=1e-12)


def test_pow_gradients_sum_over_a_broadcast_exponent():
    x, y = RNG.uniform(0.5, 2.0, (3, 4)), RNG.uniform(0.5, 2.0, (1, 4))
    (gx, gy), w = grads_of(F.pow, x, y, attach=[0, 1])
    assert gy.shape == (1, 4)
    np.testing.assert_allclose(gy, (w * x ** y * np.log(x)).sum(0, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(gx, w * y * x ** (y - 1), rtol=1e-12)


@pytest.mark.parametrize("attach", [[0], [1], [0, 1]])
def test_div_gradients_with_either_input_attached(attach):
    x, y = RNG.standard_normal((2, 3)), RNG.uniform(1.0, 3.0, (2, 3))
    got, w = grads_of(F.div, x, y, attach=attach)
    want = [w / y, -w * x / y ** 2]
    for position in range(2):
        if position in attach:
            np.testing.assert_allclose(got[position], want[position], rtol=1e-12)
        else:
            assert got[position] is None


def test_sub_gradient_of_the_subtrahend_alone_is_minus_g():
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal((3,))
    (gx, gy), w = grads_of(F.sub, x, y, attach=[1])
    assert gx is None
    np.testing.assert_allclose(gy, -w.sum(0), rtol=1e-12)


@pytest.mark.parametrize("attach", [[1], [2], [1, 2]])
def test_where_sends_each_gradient_to_the_branch_it_took(attach):
    mask = np.array([[True, False, True], [False, False, True]])
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal((1, 3))
    tensors = [P.Tensor(mask), t64(x), t64(y)]
    wanted = [tensors[i] for i in attach]
    w = RNG.standard_normal((2, 3))
    gm = GradManager().attach(wanted)
    with gm:
        gm.backward((F.where(*tensors) * t64(w)).sum())
    want = {1: np.where(mask, w, 0.0), 2: np.where(mask, 0.0, w).sum(0, keepdims=True)}
    for position in (1, 2):
        grad = tensors[position].grad
        if position in attach:
            np.testing.assert_allclose(grad.numpy(), want[position], rtol=1e-12)
        else:
            assert grad is None


def test_where_rule_names_what_is_wrong():
    rule = lookup("where").rule
    f32, f64, b = np.dtype("float32"), np.dtype("float64"), np.dtype(bool)
    assert rule(Spec((2, 1), b), Spec((3,), f32), Spec((1, 3), f32)) == Spec((2, 3), f32)
    with pytest.raises(TypeError, match=r"^where: y must have x's dtype float32; got float64; "
                                        r"promote or cast first$"):
        rule(Spec((2,), b), Spec((2,), f32), Spec((2,), f64))
    with pytest.raises(TypeError, match=r"^where: expected bool mask; got float32; compare "
                                        r"first, e\.g\. x > 0"):
        rule(Spec((2,), f32), Spec((2,), f32), Spec((2,), f32))
    with pytest.raises(ValueError, match=r"^where: shapes \(2,\) and \(3,\) cannot be broadcast"):
        rule(Spec((2,), b), Spec((2,), f32), Spec((3,), f32))
    with pytest.raises(ValueError, match=r"^where: shapes \(2,\) and \(3,\) cannot be broadcast"):
        rule(Spec((2,), b), Spec((3,), f32), Spec((3,), f32))
