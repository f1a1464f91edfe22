"""functional's API: signatures, defaults and error messages (values per op: conformance suite)."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.functional as F
from plugrad import Tensor
from plugrad.autodiff import GradManager


def test_seed_elementwise_functions():
    A = Tensor([[2.0, 4.0, 2.0], [2.0, 4.0, 2.0]])
    B = Tensor([[1.0, 2.0, 1.0], [1.0, 2.0, 1.0]])
    assert F.add(A, B).tolist() == [[3, 6, 3], [3, 6, 3]]
    assert F.sub(A, B).tolist() == [[1, 2, 1], [1, 2, 1]]
    assert F.mul(A, B).tolist() == [[2, 8, 2], [2, 8, 2]]
    assert F.div(A, B).tolist() == [[2, 2, 2], [2, 2, 2]]


def test_seed_matmul():
    x = Tensor([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])
    w = Tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert repr(F.matmul(x, w)) == "Tensor([[35. 44.]\n [44. 56.]], device=xpux:0)"


@pytest.mark.parametrize("a_shape, b_shape, ta, tb", [
    ((3,), (3,), False, False), ((2, 3), (3,), False, False), ((3,), (3, 4), False, False),
    ((5, 2, 3), (3, 4), False, False), ((5, 3, 2), (5, 4, 3), True, True),
    ((1, 2, 3), (4, 3, 2), False, False), ((2, 3), (2, 4), True, False),
])
def test_matmul_matches_numpy(a_shape, b_shape, ta, tb):
    rng = np.random.RandomState(1)
    a, b = rng.rand(*a_shape), rng.rand(*b_shape)
    ref_a = np.swapaxes(a, -1, -2) if ta else a
    ref_b = np.swapaxes(b, -1, -2) if tb else b
    got = F.matmul(Tensor(a), Tensor(b), transpose_a=ta, transpose_b=tb).numpy()
    np.testing.assert_allclose(got, np.matmul(ref_a, ref_b), rtol=1e-5)


def test_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        F.matmul(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range .* 2 dimension"):
        F.sum(Tensor(np.ones((2, 3))), axis=2)


def test_creation_functions():
    assert repr(F.arange(5)) == "Tensor([0. 1. 2. 3. 4.], device=xpux:0)"
    assert F.arange(1, 7, 2, dtype="int32").tolist() == [1, 3, 5]
    assert F.zeros((2, 1)).tolist() == [[0.0], [0.0]]
    assert F.ones(3, dtype="int32").dtype == np.int32
    assert F.full((2,), 7.0).tolist() == [7.0, 7.0]
    like = Tensor([[1, 2]])
    assert F.zeros_like(like).dtype == np.int32 and F.ones_like(like).tolist() == [[1, 1]]
    assert F.full_like(like, 3).tolist() == [[3, 3]]


def test_shape_functions():
    x = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert F.flatten(x, 1).shape == (2, 12)
    assert F.expand_dims(x, (0, -1)).shape == (1, 2, 3, 4, 1)
    assert F.squeeze(F.expand_dims(x, 1), 1).shape == (2, 3, 4)
    assert F.broadcast_to(Tensor([1.0, 2.0]), (3, 2)).tolist() == [[1, 2]] * 3
    assert F.concat([x, x], axis=1).shape == (2, 6, 4)
    assert F.stack([x, x], axis=-1).shape == (2, 3, 4, 2)
    parts = F.split(x, 2, axis=2)
    assert [p.shape for p in parts] == [(2, 3, 2), (2, 3, 2)]
    assert [p.shape for p in F.split(x, [1, 3], axis=2)] == [(2, 3, 1), (2, 3, 2), (2, 3, 1)]
    with pytest.raises(ValueError, match="concat: tensor 1 has shape"):
        F.concat([x, Tensor(np.ones((2, 2, 2)))], axis=1)
    with pytest.raises(ValueError, match="broadcast_to"):
        F.broadcast_to(Tensor([1.0, 2.0]), (3,))


def test_gather_one_hot_and_indexing_one_hot():
    src = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    index = Tensor([[2, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(F.gather(src, 1, index).numpy(),
                                  np.take_along_axis(src.numpy(), index.numpy(), 1))
    one_hot = F.one_hot(Tensor([1, 3]), 4)
    assert one_hot.dtype == np.int32 and one_hot.tolist() == [[0, 1, 0, 0], [0, 0, 0, 1]]
    assert F.indexing_one_hot(src, Tensor([2, 0])).tolist() == [3.0, 4.0]
    assert F.indexing_one_hot(src, Tensor([2, 0]), keepdims=True).shape == (2, 1)


def test_where_clip_and_rounding():
    x = Tensor([-2.5, -0.5, 0.5, 2.5])
    assert F.where(x > 0, x, 0.0).tolist() == [0.0, 0.0, 0.5, 2.5]
    assert F.clip(x, -1, 1).tolist() == [-1.0, -0.5, 0.5, 1.0]
    assert F.round(x).tolist() == [-3.0, -1.0, 1.0, 3.0]
    assert F.floor(x).tolist() == [-3.0, -1.0, 0.0, 2.0]
    assert F.ceil(Tensor([1, 2])).tolist() == [1, 2]
    with pytest.raises(TypeError, match="where: expected bool"):
        F.where(Tensor([1, 0]), x[:2], x[:2])


def test_exp_of_integers_is_float32():
    assert F.exp(Tensor([0, 1])).dtype == np.float32
    assert F.sqrt(Tensor([4])).tolist() == [2.0]


def test_softmax_default_axes_follow_megengine():
    rng = np.random.RandomState(0)
    for shape, axis in [((5,), 0), ((2, 5), 1), ((3, 4, 5), 0), ((2, 3, 4, 5), 1)]:
        data = rng.randn(*shape)
        expected = np.exp(data) / np.exp(data).sum(axis, keepdims=True)
        np.testing.assert_allclose(F.softmax(Tensor(data)).numpy(), expected, rtol=1e-5)


def _reference_cross_entropy(logits, label, smooth):
    shifted = logits - logits.max(1, keepdims=True)
    log_prob = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    nll = -log_prob[np.arange(len(label)), label]
    return (1 - smooth) * nll - smooth * log_prob.mean(1)


@pytest.mark.parametrize("smooth", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_numpy(smooth, reduction):
    rng = np.random.RandomState(2)
    logits, label = rng.randn(6, 4) * 3, rng.randint(0, 4, 6)
    expected = _reference_cross_entropy(logits, label, smooth)
    expected = {"mean": expected.mean(), "sum": expected.sum(), "none": expected}[reduction]
    got = F.nn.cross_entropy(Tensor(logits), Tensor(label), label_smooth=smooth,
                             reduction=reduction)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_cross_entropy_on_probabilities_and_its_gradient():
    rng = np.random.RandomState(3)
    logits, label = rng.randn(4, 3), np.array([0, 2, 1, 2])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = F.nn.cross_entropy(Tensor(probs), Tensor(label), with_logits=False)
    np.testing.assert_allclose(got.item(), _reference_cross_entropy(logits, label, 0).mean(),
                               rtol=1e-5)
    x = Tensor(logits)
    gm = GradManager().attach(x)
    with gm:
        gm.backward(F.nn.cross_entropy(x, Tensor(label)))
    expected = (probs - np.eye(3)[label]) / 4
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_loss_errors_and_values():
    assert F.loss.square_loss(np.array([3.0] * 4), np.array([2.0, 8.0, 6.0, 1.0])).item() == 9.75
    assert F.nn.l1_loss(Tensor([1.0, -1.0]), Tensor([0.0, 0.0])).item() == 1.0
    with pytest.raises(ValueError, match=r"label shape \(3,\) must be pred shape \(2, 4\)"):
        F.nn.cross_entropy(Tensor(np.ones((2, 4))), Tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.nn.square_loss(Tensor([1.0]), Tensor([1.0]), reduction="avg")


def test_statistics():
    data = np.random.RandomState(4).rand(3, 5)
    t = Tensor(data)
    np.testing.assert_allclose(F.var(t, 1).numpy(), data.var(1), rtol=1e-5)
    np.testing.assert_allclose(F.std(t).numpy(), data.std(), rtol=1e-5)
    np.testing.assert_allclose(F.logsumexp(t, 0).numpy(), np.log(np.exp(data).sum(0)), rtol=1e-5)
    assert F.argmax(t, axis=1).dtype == np.int32
    assert F.argmax(t, axis=1).tolist() == data.argmax(1).tolist()
    assert F.argmin(t).item() == data.argmin()
    with pytest.raises(ValueError, match="empty"):
        F.max(Tensor(np.zeros((0, 3))))


def test_logical_functions_need_bools():
    assert F.logical_and(Tensor([True, False]), True).tolist() == [True, False]
    with pytest.raises(TypeError, match="logical_or: expected bool"):
        F.logical_or(Tensor([1, 0]), Tensor([1, 1]))


def test_mean_is_one_op_on_the_tape_with_the_sum_divided_gradient():
    from plugrad.core import tape

    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    gm = GradManager().attach(x)
    with gm:
        m = F.mean(x, axis=1)
        assert [node.op.name for node in tape.state.live_nodes] == ["mean"]
        gm.backward(m, Tensor([1.0, 2.0]))
    np.testing.assert_allclose(m.numpy(), np.arange(6, dtype=np.float64).reshape(2, 3).mean(1))
    np.testing.assert_allclose(x.grad.numpy(), np.repeat([[1 / 3], [2 / 3]], 3, axis=1),
                               rtol=1e-6)


def test_mean_over_nothing_is_nan_and_integers_average_as_float32():
    with np.errstate(invalid="ignore"):
        assert np.isnan(F.mean(Tensor(np.zeros((0, 3), np.float32))).item())
    m = F.mean(Tensor([1, 2, 4]))
    assert m.dtype == np.float32 and np.isclose(m.item(), 7 / 3)
