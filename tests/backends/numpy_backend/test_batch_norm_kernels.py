"""The numpy backend's batch-norm kernels (numpy_backend/batch_norm.py) against float64
formulas written here: the forward, its statistics and both gradients, in each layout the
kernels take (channels on axis 1 as (N, C, M), 2-D features (M = 1), other reduced axes moved to
the front), float16 computed in float32, strided inputs and a mean far from zero; and split
over the backend's threads, the same to the bit on one thread and on two. Every test runs the
kernels twice: with NumPy's passes and with the compiled loops of ``compiled.py`` (numba).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from plugrad.backends.numpy_backend import _threads, batch_norm, compiled

EPS = 1e-5
KERNELS: dict = {}  # the kernels of the running test's loops (the autouse fixture below)

# (label, shape, axes, channels-first layout?)
CASES = [
    ("images", (8, 4, 6, 5), (0, 2, 3), True),
    ("features", (16, 5), (0,), True),
    ("sequence", (4, 3, 7), (0, 2), True),
    ("other-axes", (4, 3, 5, 2), (0, 1, 3), False),
    ("last-axis", (6, 5, 3), (0, 1), False),
]


@pytest.fixture(autouse=True, params=["numpy", "compiled"])
def loops(request, monkeypatch):
    """The loops class the kernels under test run; the compiled one needs numba."""
    if request.param == "compiled":
        pytest.importorskip("numba")
        chosen = compiled.CompiledLoops
    else:
        chosen = batch_norm.NumpyLoops
    monkeypatch.setattr(sys.modules[__name__], "KERNELS", batch_norm.kernels(chosen))
    return chosen


def reference(x, w, b, g, axes):
    """(out, mean, var, sum(g * xhat), sum(g), gx) in float64."""
    x, w, b, g = (a.astype(np.float64) for a in (x, w, b, g))
    n = np.prod([x.shape[a] for a in axes])
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + EPS)
    xhat = (x - mean) * inv_std
    g_xhat = (g * xhat).sum(axis=axes, keepdims=True)
    g_sum = g.sum(axis=axes, keepdims=True)
    gx = w * inv_std * (g - g_sum / n - xhat * g_xhat / n)
    return xhat * w + b, mean, var, g_xhat, g_sum, gx


def inputs(shape, axes, dtype, offset=0.0, strided=False):
    rng = np.random.default_rng(7)
    kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
    wide = shape[:-1] + (2 * shape[-1],)
    x = rng.standard_normal(wide if strided else shape) * 1.5 + offset
    x = (x[..., ::2] if strided else x).astype(dtype)
    return (x, (rng.random(kept) + 0.5).astype(dtype), rng.standard_normal(kept).astype(dtype),
            rng.standard_normal(shape).astype(dtype))


def run_kernels(x, w, b, g, axes):
    stats = KERNELS["batch_norm_stats"](x, axes=axes)
    out = KERNELS["batch_norm"](x, w, b, stats, axes=axes, eps=EPS)
    params = KERNELS["batch_norm_grad_params"](g, x, stats, axes=axes, eps=EPS)
    gx = KERNELS["batch_norm_grad_input"](g, x, w, stats, params, axes=axes, eps=EPS)
    return out, stats, params, gx


def check(x, w, b, g, axes, rtol, atol):
    out, stats, params, gx = run_kernels(x, w, b, g, axes)
    ref_out, mean, var, g_xhat, g_sum, ref_gx = reference(x, w, b, g, axes)
    for got, want, what in ((out, ref_out, "output"), (stats[0], mean, "mean"),
                            (stats[1], var, "variance"), (params[0], g_xhat, "weight grad"),
                            (params[1], g_sum, "bias grad"), (gx, ref_gx, "input grad")):
        assert got.dtype == x.dtype and got.shape == want.shape, what
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=atol,
                                   err_msg=what)


@pytest.mark.parametrize("label, shape, axes, usual", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_layout_against_float64(label, shape, axes, usual, dtype):
    assert batch_norm._Layout(shape, axes).usual is usual  # the path these inputs take
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    check(*inputs(shape, axes, dtype), axes, **tol)


def test_a_mean_far_from_zero_keeps_float32_accuracy():
    # E[x^2] - mean^2 would lose about 4 digits here; the centred passes do not.
    check(*inputs((16, 3, 8, 8), (0, 2, 3), np.float32, offset=300.0), (0, 2, 3),
          rtol=2e-4, atol=1e-4)


def test_strided_inputs():
    check(*inputs((6, 3, 4, 5), (0, 2, 3), np.float32, strided=True), (0, 2, 3),
          rtol=1e-4, atol=1e-5)


def test_float16_computes_in_float32():
    x, w, b, g = inputs((8, 4, 6, 6), (0, 2, 3), np.float16)
    check(x, w, b, g, (0, 2, 3), rtol=2e-2, atol=2e-2)
    # 288 values per channel summed in float16 would drift by far more than this
    mean = KERNELS["batch_norm_stats"](x, axes=(0, 2, 3))[0]
    np.testing.assert_allclose(mean.astype(np.float64),
                               x.astype(np.float64).mean(axis=(0, 2, 3), keepdims=True),
                               atol=2e-3)


def test_compiled_loops_leave_rows_of_one_value_to_numpys():
    pytest.importorskip("numba")
    assert compiled.CompiledLoops.for_rows(1) is batch_norm.NumpyLoops
    assert compiled.CompiledLoops.for_rows(2) is compiled.CompiledLoops
    assert batch_norm.NumpyLoops.for_rows(1) is batch_norm.NumpyLoops


@pytest.fixture
def split_parts(monkeypatch, loops) -> list[int]:
    """Every kernel splits (whatever its size); the parts of each run_parts call are recorded.
    (The compiled loops hand rows of one value to NumPy's: both classes split.)"""
    for passes in {loops, batch_norm.NumpyLoops}:
        monkeypatch.setattr(passes, "split_elements", 0)
        monkeypatch.setattr(passes, "split_reduction", 0)
    seen: list[int] = []

    def recording_run_parts(fn, parts):
        seen.append(parts)
        _threads.run_parts(fn, parts)

    monkeypatch.setattr(batch_norm, "run_parts", recording_run_parts)
    return seen


@pytest.mark.parametrize("label, shape, axes, usual", CASES, ids=[c[0] for c in CASES])
def test_split_kernels_are_the_same_on_one_and_two_threads(label, shape, axes, usual,
                                                            split_parts, monkeypatch):
    args = inputs(shape, axes, np.float32)
    results = {}
    for threads in (1, 2):
        monkeypatch.setattr(_threads, "_threads", threads)
        split_parts.clear()
        results[threads] = run_kernels(*args, axes)
        # stats, forward, grad_params, grad_input: the reductions in two ranges whatever the
        # thread count, the elementwise kernels in one per thread (one: no hand-over at all)
        expected = [2, 2, 2, 2] if threads == 2 else [2, 2]
        assert split_parts == expected, split_parts
        check(*args, axes, rtol=1e-4, atol=1e-5)
    for one, two in zip(results[1], results[2]):
        np.testing.assert_array_equal(one, two)


def test_uneven_splits_a_far_mean_and_a_batch_of_one(split_parts, monkeypatch):
    # The ranges' statistics are merged (unequal sizes, a mean of 300 against a spread of 1.5:
    # as accurate as one range); a batch of one is never split.
    monkeypatch.setattr(_threads, "_threads", 2)
    check(*inputs((5, 3, 4, 4), (0, 2, 3), np.float64), (0, 2, 3), rtol=1e-10, atol=1e-12)
    check(*inputs((7, 3, 8, 8), (0, 2, 3), np.float32, offset=300.0), (0, 2, 3),
          rtol=2e-4, atol=1e-4)
    assert split_parts and set(split_parts) == {2}
    split_parts.clear()
    check(*inputs((1, 3, 4, 4), (0, 2, 3), np.float64), (0, 2, 3), rtol=1e-10, atol=1e-12)
    assert split_parts == []  # one range: run on the calling thread, no hand-over


@pytest.mark.parametrize("threads", [1, 2])
def test_an_empty_batch_keeps_its_shape(threads, split_parts, monkeypatch):
    monkeypatch.setattr(_threads, "_threads", threads)
    out, stats, params, gx = run_kernels(*inputs((0, 3, 4, 4), (0, 2, 3), np.float32), (0, 2, 3))
    assert out.shape == gx.shape == (0, 3, 4, 4)
    assert stats.shape == params.shape == (2, 1, 3, 1, 1)
    np.testing.assert_array_equal(params, 0)  # sums over nothing
