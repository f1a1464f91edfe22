"""Every fused nn kernel agrees with its op's decomposition into primitives, in the forward
pass and (for ops with a vjp) in the gradients; the decomposition is forced by calling
``OPS[name].decomposition`` directly."""
import numpy as np
import pytest

import plugrad as P
from plugrad.core.dispatch import apply
from plugrad.core.registry import OPS
from nn_helpers import decomposed, grads, t64

RNG = np.random.default_rng(3)
CONV = dict(stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2)
POOL = dict(kernel_size=(3, 2), stride=(2, 2), padding=(1, 1))


def r(*shape):
    return RNG.standard_normal(shape)


def _pooled(x, **attrs):
    return apply("max_pool2d", t64(x), **attrs).numpy()


X_POOL = r(2, 3, 7, 6)
LABELS = np.array([0, 3, 2, 1], dtype=np.int32)

# name, input arrays (int arrays are labels), attributes
CASES = [
    ("conv2d", [r(2, 4, 7, 6), r(6, 2, 3, 3)], CONV),
    ("conv2d_grad_input", [r(2, 6, 4, 4), r(6, 2, 3, 3)], dict(CONV, input_shape=(2, 4, 7, 6))),
    ("conv2d_grad_weight", [r(2, 6, 4, 4), r(2, 4, 7, 6)],
     dict(CONV, weight_shape=(6, 2, 3, 3))),
    ("max_pool2d", [X_POOL], POOL),
    ("max_pool2d_grad", [r(2, 3, 4, 4), X_POOL, _pooled(X_POOL, **POOL)], POOL),
    ("avg_pool2d", [X_POOL], dict(POOL, count_include_pad=True)),
    ("avg_pool2d", [X_POOL], dict(POOL, count_include_pad=False)),
    ("avg_pool2d_grad", [r(2, 3, 4, 4)],
     dict(POOL, input_shape=(2, 3, 7, 6), count_include_pad=False)),
    ("linear", [r(5, 4), r(3, 4)], {}),
    ("linear", [r(2, 5, 4), r(3, 4), r(3)], {}),
    ("batch_norm", [r(4, 3, 2, 5), r(1, 3, 1, 1), r(1, 3, 1, 1)], dict(axes=(0, 2, 3),
                                                                       eps=1e-5)),
    ("dropout", [r(6, 7)], dict(drop_prob=0.3, seed=1234)),
    ("softmax_cross_entropy", [r(4, 5), LABELS], dict(axis=1)),
    ("softmax_cross_entropy", [r(5, 4), LABELS], dict(axis=0)),
    ("softmax_cross_entropy_grad", [r(4), r(4, 5), LABELS], dict(axis=1)),
    ("binary_cross_entropy", [r(3, 4) * 4, RNG.random((3, 4))], dict(with_logits=True)),
    ("binary_cross_entropy", [RNG.uniform(0.05, 0.95, (3, 4)), RNG.random((3, 4))],
     dict(with_logits=False)),
    ("leaky_relu", [r(4, 5)], dict(negative_slope=0.2)),
    ("gelu", [r(4, 5) * 3], {}),
    ("relu_grad", [r(4, 5), r(4, 5)], {}),
]


def _tensors(arrays):
    return [t64(a) if a.dtype.kind == "f" else P.Tensor(a) for a in arrays]


@pytest.mark.parametrize("name, arrays, attrs", CASES, ids=[c[0] for c in CASES])
def test_forward_agrees(name, arrays, attrs):
    fused = apply(name, *_tensors(arrays), **attrs)
    reference = decomposed(name)(*_tensors(arrays), **attrs)
    assert fused.shape == reference.shape and fused.dtype == reference.dtype
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, arrays, attrs",
                         [c for c in CASES if OPS[c[0]].vjp is not None],
                         ids=[c[0] for c in CASES if OPS[c[0]].vjp is not None])
def test_gradients_agree(name, arrays, attrs):
    weights = r(*apply(name, *_tensors(arrays), **attrs).shape)
    fused = grads(lambda *ts: apply(name, *ts, **attrs), arrays, weights)
    reference = grads(lambda *ts: decomposed(name)(*ts, **attrs), arrays, weights)
    # gelu's vjp uses the exact normal density; the decomposition differentiates the erf
    # approximation, whose derivative is accurate to ~1e-6 only.
    atol = 5e-6 if name == "gelu" else 1e-12
    assert len(fused) == len(reference) == sum(np.asarray(a).dtype.kind == "f" for a in arrays)
    for got, want in zip(fused, reference):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=atol)


def test_float32_forward_agrees_for_lenet_shapes():
    x = r(8, 6, 14, 14).astype(np.float32)
    w = r(16, 6, 5, 5).astype(np.float32)
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    fused = apply("conv2d", P.Tensor(x), P.Tensor(w), **attrs).numpy()
    reference = decomposed("conv2d")(P.Tensor(x), P.Tensor(w), **attrs).numpy()
    np.testing.assert_allclose(fused, reference, rtol=1e-4, atol=1e-4)
