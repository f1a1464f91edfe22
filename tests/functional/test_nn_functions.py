"""F.linear, F.nn.batch_norm, F.nn.dropout, the losses and activations against NumPy
references, with gradients by finite differences."""
import math

import numpy as np
import pytest

import plugrad as P
import plugrad.functional as F
from tests.helpers.numerics import assert_grads_match, t64

RNG = np.random.default_rng(11)


def r(*shape):
    return RNG.standard_normal(shape)


def test_linear_matches_numpy_and_gradients():
    x, w, b = r(2, 3, 4), r(5, 4), r(5)
    np.testing.assert_allclose(F.linear(t64(x), t64(w), t64(b)).numpy(), x @ w.T + b,
                               rtol=1e-12)
    np.testing.assert_allclose(F.nn.linear(t64(x), t64(w)).numpy(), x @ w.T, rtol=1e-12)
    assert_grads_match(lambda a, c, d: F.linear(a, c, d), [r(3, 4), w, b])
    assert_grads_match(lambda a, c: F.linear(a, c), [x, w])


def _bn_reference(x, weight, bias, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias, mean, var


def test_batch_norm_training_normalises_and_updates_running_stats():
    x, weight, bias = r(6, 3, 4, 5) * 2 + 1, r(1, 3, 1, 1), r(1, 3, 1, 1)
    running_mean, running_var = P.Tensor(np.zeros((1, 3, 1, 1))), P.Tensor(np.ones((1, 3, 1, 1)))
    out = F.nn.batch_norm(t64(x), running_mean, running_var, t64(weight), t64(bias),
                          training=True, momentum=0.9, eps=1e-5)
    want, mean, var = _bn_reference(x, weight, bias, 1e-5)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)
    n = x.size // 3
    np.testing.assert_allclose(running_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(running_var.numpy(), 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)


def test_batch_norm_eval_uses_running_stats_and_not_inplace_returns_them():
    x = r(4, 2, 3)
    mean, var = r(1, 2, 1), RNG.random((1, 2, 1)) + 0.5
    out = F.nn.batch_norm(t64(x), t64(mean), t64(var), training=False, eps=1e-3)
    np.testing.assert_allclose(out.numpy(), (x - mean) / np.sqrt(var + 1e-3), rtol=1e-12)
    running = t64(np.zeros((1, 2, 1)))
    result, new_mean, new_var = F.nn.batch_norm(t64(x), running, None, training=True,
                                                momentum=0.5, inplace=False)
    assert new_var is None
    np.testing.assert_array_equal(running.numpy(), 0)  # untouched
    np.testing.assert_allclose(new_mean.numpy(), 0.5 * x.mean(axis=(0, 2), keepdims=True))


def test_batch_norm_gradients_by_finite_differences():
    assert_grads_match(lambda x, w, b: F.nn.batch_norm(x, weight=w, bias=b, training=True),
                       [r(3, 2, 2, 3), r(1, 2, 1, 1), r(1, 2, 1, 1)], rtol=1e-4, atol=1e-6)


def test_the_batch_norm_op_takes_the_statistics_of_its_input_only():
    from plugrad.core.registry import OPS

    x, axes = r(4, 3, 2, 2), (0, 2, 3)
    stats = OPS["batch_norm_stats"].reference(x, axes=axes)
    weight, bias = np.ones((1, 3, 1, 1)), np.zeros((1, 3, 1, 1))
    out = OPS["batch_norm"].reference(x, weight, bias, stats, axes=axes, eps=0.0)
    np.testing.assert_allclose(out, (x - x.mean(axis=axes, keepdims=True))
                               / x.std(axis=axes, keepdims=True), rtol=1e-12)
    stats[1, 0, 1] *= 1.1
    with pytest.raises(ValueError, match=r"batch_norm: stats are not batch_norm_stats\(x, "
                                         r"axes\); got mean .* at \(0, 1, 0, 0\)"):
        OPS["batch_norm"].reference(x, weight, bias, stats, axes=axes, eps=0.0)
    with pytest.raises(ValueError, match=r"batch_norm: stats of shape \(1, 3, 1, 1\); expected "
                                         r"\(2, 1, 3, 1, 1\)"):
        OPS["batch_norm"].rule(x, weight, bias, stats[0], axes=axes, eps=0.0)


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (1, 3), (0, 2)])
def test_batch_norm_training_refuses_a_batch_without_a_variance_before_any_kernel(shape):
    with pytest.raises(ValueError, match=r"batch_norm: training needs more than one value per "
                                         r"channel to compute a variance; got input shape"):
        F.nn.batch_norm(t64(np.zeros(shape)), training=True)


def test_dropout_zeroes_and_rescales_and_is_identity_in_eval():
    P.random.seed(5)
    x = t64(np.ones((200, 100)))
    out = F.nn.dropout(x, 0.25).numpy()
    kept = out != 0
    assert set(np.unique(out)) == {0.0, 1 / 0.75}
    assert abs(kept.mean() - 0.75) < 0.01  # 20000 draws: sd of the mean ~0.003
    np.testing.assert_array_equal(F.nn.dropout(x, 0.25, training=False).numpy(), 1.0)
    P.random.seed(5)
    np.testing.assert_array_equal(F.nn.dropout(x, 0.25).numpy(), out)  # reproducible
    with pytest.raises(ValueError, match="drop_prob"):
        F.nn.dropout(x, 1.0)


def test_dropout_gradient_is_the_same_mask():
    from plugrad.autodiff import GradManager

    x = t64(r(30, 30))
    gm = GradManager().attach([x])
    with gm:
        out = F.nn.dropout(x, 0.5)
        gm.backward(out.sum())
    np.testing.assert_array_equal(x.grad.numpy(), (out.numpy() != 0) * 2.0)


def _ce_reference(logits, labels, axis):
    moved = np.moveaxis(logits, axis, -1)
    shifted = moved - moved.max(-1, keepdims=True)
    log_prob = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(log_prob, labels[..., None], -1)[..., 0]


@pytest.mark.parametrize("shape, axis", [((6, 4), 1), ((3, 5, 2), 1), ((4, 3), 0)])
def test_cross_entropy_fused_matches_reference(shape, axis):
    logits = r(*shape) * 3
    label_shape = shape[:axis] + shape[axis + 1:]
    labels = RNG.integers(0, shape[axis], label_shape).astype(np.int32)
    out = F.nn.cross_entropy(t64(logits), P.Tensor(labels), axis=axis, reduction="none")
    np.testing.assert_allclose(out.numpy(), _ce_reference(logits, labels, axis), rtol=1e-12)
    mean = F.nn.cross_entropy(t64(logits), P.Tensor(labels), axis=axis)
    np.testing.assert_allclose(mean.item(), _ce_reference(logits, labels, axis).mean())
    assert_grads_match(lambda z, y: F.nn.cross_entropy(z, y, axis=axis), [logits, labels])


def test_cross_entropy_with_probabilities_and_label_smoothing():
    logits, labels = r(5, 4), np.array([0, 1, 2, 3, 0], dtype=np.int32)
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    out = F.nn.cross_entropy(t64(prob), P.Tensor(labels), with_logits=False, reduction="sum")
    np.testing.assert_allclose(out.item(), _ce_reference(logits, labels, 1).sum(), rtol=1e-10)
    smooth = F.nn.cross_entropy(t64(logits), P.Tensor(labels), label_smooth=0.1,
                                reduction="none").numpy()
    log_prob = np.log(prob)
    want = 0.9 * _ce_reference(logits, labels, 1) - 0.1 * log_prob.mean(1)
    np.testing.assert_allclose(smooth, want, rtol=1e-10)


def test_binary_cross_entropy_both_forms():
    logits, target = r(4, 3) * 5, RNG.random((4, 3))
    p = 1 / (1 + np.exp(-logits))
    want = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    out = F.nn.binary_cross_entropy(t64(logits), t64(target), reduction="none")
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10)
    out = F.nn.binary_cross_entropy(t64(p), t64(target), with_logits=False)
    np.testing.assert_allclose(out.item(), want.mean(), rtol=1e-10)
    big = F.nn.binary_cross_entropy(t64([1000.0, -1000.0]), t64([0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(big.numpy(), [1000.0, 1000.0])  # no overflow
    assert_grads_match(lambda z, y: F.nn.binary_cross_entropy(z, y), [logits, target])
    assert_grads_match(lambda q, y: F.nn.binary_cross_entropy(q, y, with_logits=False),
                       [RNG.uniform(0.1, 0.9, (3, 2)), RNG.random((3, 2))])


def test_leaky_relu_and_gelu():
    x = r(5, 6) * 3
    np.testing.assert_allclose(F.leaky_relu(t64(x), 0.2).numpy(), np.where(x > 0, x, 0.2 * x))
    exact = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))(x)
    np.testing.assert_allclose(F.gelu(t64(x)).numpy(), exact, atol=1e-6)
    assert_grads_match(lambda a: F.leaky_relu(a, 0.1), [x + 0.05])
    assert_grads_match(lambda a: F.gelu(a), [x], rtol=1e-4, atol=1e-5)


def test_embedding_picks_rows_and_accumulates_gradients():
    weight = r(6, 3)
    index = np.array([[0, 5], [5, 2]], dtype=np.int32)
    out = F.embedding(P.Tensor(index), t64(weight))
    np.testing.assert_array_equal(out.numpy(), weight[index])
    grad = np.zeros_like(weight)
    np.add.at(grad, index, 1.0)
    from plugrad.autodiff import GradManager

    w = t64(weight)
    gm = GradManager().attach([w])
    with gm:
        gm.backward(F.embedding(P.Tensor(index), w).sum())
    np.testing.assert_array_equal(w.grad.numpy(), grad)
