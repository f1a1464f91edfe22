"""Records of linear, batch_norm, dropout, the losses and the activations added with the nn
layers, checked against the ops' declared references. All are composites: a backend may fuse
any of them, and the suite then checks the fused kernel against the decomposition.
"""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad import random as R
from plugrad.autodiff import GradManager
from plugrad.conformance import samples as S
from plugrad.conformance.ops.conv import applied, small
from plugrad.conformance.table import Arg, OpRecord, Sample, declared_reference, register
from plugrad.core.device import Device
from plugrad.core.tensor import Tensor

_FLOATS = ("float16", "float32", "float64")
_F16 = {"float16": (2e-2, 5e-2)}


# -- linear and batch_norm --------------------------------------------------------------------
def _linear_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def arg(shape, layout="c"):
        return Arg(small(rng, shape, dtype), layout)

    return [
        Sample("bias", (arg((4, 3)), arg((5, 3)), arg((5,)))),
        Sample("no-bias", (arg((4, 3)), arg((2, 3)))),
        Sample("batched", (arg((2, 3, 4)), arg((5, 4)), arg((5,)))),
        Sample("empty-batch", (arg((0, 3)), arg((2, 3)), arg((2,)))),
        Sample("transposed", (arg((3, 4), "t"), arg((2, 4), "t"), arg((2,), "s"))),
    ]


def _batch_norm(x, weight, bias, *, eps):
    return F.batch_norm(x, weight=weight, bias=bias, training=True, eps=eps)


def _batch_norm_reference(x, weight, bias, *, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    stats = declared_reference("batch_norm_stats")(x, axes=axes)
    return declared_reference("batch_norm")(x, weight, bias, stats, axes=axes, eps=eps)


def _batch_norm_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def sample(label, shape, layout="c"):
        param = (1, shape[1]) + (1,) * (len(shape) - 2)
        return Sample(label, (Arg(S.values(rng, shape, dtype), layout),
                              Arg(S.values(rng, param, dtype, 0.5, 1.5)),
                              Arg(small(rng, param, dtype))), {"eps": 1e-5})

    return [sample("images", (4, 3, 2, 2)), sample("features", (5, 4)),
            sample("sequence", (3, 2, 4)), sample("transposed", (3, 4, 2, 2), "t"),
            sample("strided", (4, 2, 3), "s")]


register(
    OpRecord("linear", F.linear, None, _linear_samples, _FLOATS, tol=_F16),
    OpRecord("batch_norm", _batch_norm, _batch_norm_reference, _batch_norm_samples, _FLOATS,
             tol={"float16": (3e-2, 5e-2), "float32": (1e-4, 1e-5)}),
)


# -- dropout: random, so checked by its properties --------------------------------------------
def _check_dropout(device: Device, dtype: np.dtype) -> None:
    """Share of zeros about p, survivors scaled by 1 / (1 - p), seeded, gradient = the mask."""
    p = 0.3
    x = Tensor(np.full((4000,), 2.0), dtype=dtype, device=device)
    R.seed(11)
    gm = GradManager().attach([x])
    with gm:
        out = F.dropout(x, p)
        gm.backward(out, Tensor(np.full((4000,), 3.0), dtype=dtype, device=device))
    values = out.numpy().astype(np.float64)
    kept = values != 0
    assert out.shape == (4000,) and np.dtype(out.dtype) == dtype, (
        f"dropout: output {out.shape} {np.dtype(out.dtype).name}; expected (4000,) {dtype.name}")
    assert abs(1 - kept.mean() - p) < 0.04, (
        f"dropout: {1 - kept.mean():.3f} of the values were dropped; expected about {p}")
    assert np.allclose(values[kept], 2.0 / (1 - p), rtol=2e-3), (
        f"dropout: kept values {np.unique(values[kept])[:3]}; expected x / (1 - p) = "
        f"{2.0 / (1 - p):.4f}")
    assert x.grad is not None, (
        "dropout: x got no gradient; expected the upstream gradient through the mask, scaled")
    grad = x.grad.numpy().astype(np.float64)
    assert np.allclose(grad, np.where(kept, 3.0 / (1 - p), 0.0), rtol=2e-3), (
        "dropout: the gradient must be the upstream gradient through the same mask, scaled")
    R.seed(11)
    again = F.dropout(Tensor(np.full((4000,), 2.0), dtype=dtype, device=device), p)
    assert np.array_equal(again.numpy() != 0, kept), "dropout: the same seed gave another mask"


def _dropout_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # For fused-versus-decomposed only: both runs start from the same global seed.
    return [Sample("vector", (Arg(S.values(rng, (50,), dtype)),), {"drop_prob": 0.4}),
            Sample("matrix", (Arg(S.values(rng, (6, 7), dtype), "t"),), {"drop_prob": 0.1})]


register(OpRecord("dropout", F.dropout, None, _dropout_samples, _FLOATS, grad=False,
                  check=_check_dropout))


# -- losses -----------------------------------------------------------------------------------
def _cross_entropy(x, label, *, axis):
    return F.nn.cross_entropy(x, label, axis=axis, reduction="none")


_CE_CASES = (
    # label, logits shape, axis, layout
    ("rows", (4, 5), 1, "c"),
    ("vector", (6,), 0, "c"),
    ("images", (2, 3, 2, 2), 1, "c"),
    ("empty-batch", (0, 4), 1, "c"),
    ("large", (3, 4), 1, "c"),
    ("transposed", (5, 3), 0, "t"),
)


def _ce_samples(rng: np.random.Generator, dtype: np.dtype, grad_op: bool = False
                ) -> list[Sample]:
    made = []
    for label, shape, axis, layout in _CE_CASES:
        x = S.values(rng, shape, dtype, -3.0, 3.0)
        if label == "large" and dtype.itemsize > 2:
            x = (x + 100).astype(dtype)
        rest = shape[:axis] + shape[axis + 1:]
        labels = Arg(rng.integers(0, shape[axis], size=rest).astype(np.int32))
        if grad_op:
            made.append(Sample(label, (Arg(small(rng, rest, dtype)), Arg(x, layout), labels),
                               {"axis": axis}))
        else:
            made.append(Sample(label, (Arg(x, layout), labels), {"axis": axis}))
    return made


def _ce_grad_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return _ce_samples(rng, dtype, grad_op=True)


def _bce(pred, label, *, with_logits):
    return F.nn.binary_cross_entropy(pred, label, with_logits=with_logits, reduction="none")


def _bce_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for with_logits in (True, False):
        mode = "logits" if with_logits else "probabilities"
        for label, shape, layout in (("vector", (6,), "c"), ("matrix", (3, 4), "c"),
                                     ("0d", (), "c"), ("transposed", (4, 3), "t")):
            pred = S.values(rng, shape, dtype, -3, 3) if with_logits \
                else S.values(rng, shape, dtype, 0.05, 0.95)
            made.append(Sample(f"{mode}-{label}", (Arg(pred, layout),
                                                   Arg(S.values(rng, shape, dtype, 0, 1))),
                               {"with_logits": with_logits}))
    return made


register(
    OpRecord("softmax_cross_entropy", _cross_entropy, None, _ce_samples, _FLOATS),
    OpRecord("softmax_cross_entropy_grad", applied("softmax_cross_entropy_grad"), None,
             _ce_grad_samples, _FLOATS),
    OpRecord("binary_cross_entropy", _bce, None, _bce_samples, _FLOATS),
)


# -- activations ------------------------------------------------------------------------------
def _relu_grad_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, shape, layout in (("0d", (), "c"), ("matrix", (3, 4), "c"), ("empty", (0, 2), "c"),
                                 ("transposed", (4, 3), "t")):
        out = np.maximum(S.away_from_zero(rng, shape, dtype), 0).astype(dtype)
        made.append(Sample(label, (Arg(small(rng, shape, dtype), layout), Arg(out, grad=False))))
    return made


def _leaky_relu_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample(s.label, s.args, {"negative_slope": 0.1})
            for s in S.unary_samples(S.away_from_zero)(rng, dtype)]


register(
    OpRecord("relu_grad", applied("relu_grad"), None, _relu_grad_samples, _FLOATS),
    OpRecord("leaky_relu", F.leaky_relu, None, _leaky_relu_samples, _FLOATS),
    # The decomposition's erf has an absolute error of 1.5e-7 (Abramowitz and Stegun 7.1.26).
    OpRecord("gelu", F.gelu, None, S.unary_samples(), _FLOATS,
             tol={"float64": (1e-6, 5e-7)}, grad_tol={"float64": (1e-5, 1e-6)}),
)
