"""The numpy backend's convolutions on onnxruntime's CPU kernels (``ort_conv.py``): float32
results within float32 rounding of the float64 references, the NumPy kernels wherever the
onnxruntime path does not apply, and the backend's table using it unless turned off.

Each test counts the sessions ``ort_conv`` builds (one per new geometry), so it knows which
path really ran.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from plugrad.backends.numpy_backend import _threads, conv, ort_conv, parallel  # noqa: E402
from tests.helpers import ROOT  # noqa: E402
from tests.helpers.cli import plugrad, python  # noqa: E402
from tests.helpers.numerics import ref_conv2d, ref_conv_grads  # noqa: E402

NUMPY = conv.kernels(np)
ORT = ort_conv.kernels(NUMPY)
BLOCK = ort_conv.nchwc_block()  # MLAS's channel block on this CPU; 0 where it has none


@pytest.fixture
def ran(monkeypatch) -> list[str]:
    """The onnxruntime graphs (op names) each call runs, in order: which path really ran."""
    calls: list[str] = []
    run = ort_conv._run

    def spy(op, feeds, *args, **attributes):
        calls.append(op)
        return run(op, feeds, *args, **attributes)

    monkeypatch.setattr(ort_conv, "_run", spy)
    return calls


def _inputs(x_shape, w_shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)


def _close(actual, expected):
    """float32 rounding of sums of up to a few hundred products, relative to the largest."""
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=2e-6 * np.abs(expected).max())


# (x shape, w shape, stride, padding, dilation, groups)
FORWARD = [
    ((4, 1, 28, 28), (6, 1, 5, 5), (1, 1), (0, 0), (1, 1), 1),     # LeNet's conv1
    ((3, 16, 12, 12), (32, 16, 3, 3), (1, 1), (1, 1), (1, 1), 1),  # a padded 3x3
    ((2, 8, 11, 9), (6, 8, 3, 2), (2, 1), (1, 0), (1, 2), 1),      # strided, dilated, uneven
    ((2, 8, 9, 9), (6, 4, 3, 3), (1, 1), (1, 1), (1, 1), 2),       # grouped
]


@pytest.mark.parametrize("case", FORWARD)
@pytest.mark.parametrize("with_bias", [False, True])
def test_the_forward_runs_on_onnxruntime_within_float32_rounding(case, with_bias, ran):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w = _inputs(x_shape, w_shape)
    b = np.linspace(-1, 1, w_shape[0], dtype=np.float32).reshape(1, -1, 1, 1) if with_bias \
        else None
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = ORT["conv2d_bias"](x, w, b, **attrs)
    assert len(ran) == 1 and ran[0] in ("Conv", ort_conv.NCHWC_CONV)
    expected = ref_conv2d(x.astype(np.float64), w.astype(np.float64), **attrs)
    _close(y, expected if b is None else expected + b)


def test_one_session_serves_every_shape_of_a_geometry():
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    x, w = _inputs((3, 16, 10, 10), (8, 16, 3, 3), seed=5)
    ORT["conv2d"](x, w, **attrs)
    before = ort_conv.sessions_built()
    for batch, size in ((1, 10), (5, 7), (2, 12)):  # new batches and image sizes
        x = _inputs((batch, 16, size, size), (8, 16, 3, 3), seed=batch)[0]
        _close(ORT["conv2d"](x, w, **attrs),
               ref_conv2d(x.astype(np.float64), w.astype(np.float64), **attrs))
    assert ort_conv.sessions_built() == before


@pytest.mark.skipif(not BLOCK, reason="this onnxruntime has no NCHWc convolution")
@pytest.mark.parametrize("channels, groups, blocked", [
    (3, 1, True),               # fewer than a block: read as they are
    (2 * BLOCK, 1, True),       # whole blocks: reordered into them
    (BLOCK + 4, 1, False),      # neither: ONNX's Conv
    (2 * BLOCK, 2, False),      # grouped: ONNX's Conv
])
def test_the_blocked_convolution_runs_where_mlas_has_it(channels, groups, blocked, ran):
    x, w = _inputs((2, channels, 9, 8), (12, channels // groups, 3, 3), seed=4)
    b = np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, -1, 1, 1)
    attrs = dict(stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=groups)
    y = ORT["conv2d_bias"](x, w, b, **attrs)
    assert ran == [ort_conv.NCHWC_CONV if blocked else "Conv"]
    _close(y, ref_conv2d(x.astype(np.float64), w.astype(np.float64), **attrs) + b)


def test_the_blocked_filter_holds_every_weight_once():
    # 20 output channels: a whole block and a zero-padded one; 2 blocks of input channels
    block = 16
    w = np.arange(1, 20 * 32 * 3 * 2 + 1, dtype=np.float32).reshape(20, 32, 3, 2)
    blocked = ort_conv._blocked_filter(w, block).reshape(2, 2, 3, 2, block, block)
    for o, i, h, k in [(0, 0, 0, 0), (19, 31, 2, 1), (17, 5, 1, 0), (3, 20, 2, 1)]:
        assert blocked[o // block, i // block, h, k, i % block, o % block] == w[o, i, h, k]
    assert np.count_nonzero(blocked) == w.size
    few = ort_conv._blocked_filter(w[:, :3], block).reshape(2, 3, 3, 2, block)
    assert few[1, 2, 1, 1, 3] == w[19, 2, 1, 1] and np.count_nonzero(few) == 20 * 3 * 3 * 2


def _output_gradient(x, w, attrs, seed=1):
    shape = NUMPY["conv2d"](x, w, **attrs).shape
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _reference_grads(g, x, w, attrs):
    """(input gradient, weight gradient) in float64."""
    return ref_conv_grads(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
                          **attrs)


@pytest.mark.parametrize("case", [
    ((2, 16, 10, 10), (8, 16, 3, 3), (1, 1), (1, 1)),
    ((2, 16, 12, 11), (4, 16, 5, 3), (0, 2), (1, 1)),
    ((2, 24, 13, 13), (5, 24, 3, 3), (2, 1), (2, 1)),  # dilated
])
def test_the_stride_one_input_gradient_from_16_channels_is_the_flipped_convolution(case, ran):
    x_shape, w_shape, padding, dilation = case
    x, w = _inputs(x_shape, w_shape)
    attrs = dict(stride=(1, 1), padding=padding, dilation=dilation, groups=1)
    g = _output_gradient(x, w, attrs)
    gx = ORT["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs)
    assert len(ran) == 1 and ran[0] in ("Conv", ort_conv.NCHWC_CONV)
    _close(gx, _reference_grads(g, x, w, attrs)[0])


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", [
    ((2, 6, 12, 12), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1), 1),   # few channels (LeNet's conv2)
    ((2, 16, 11, 10), (8, 8, 3, 3), (1, 1), (1, 1), (1, 1), 2),   # grouped
    ((2, 4, 13, 12), (6, 2, 3, 3), (3, 2), (2, 0), (2, 1), 2),    # grouped, strided, uneven
    ((2, 8, 11, 9), (BLOCK + 4 or 20, 8, 3, 2), (2, 1), (1, 0), (1, 2), 1),  # g's channels
])
def test_other_input_gradients_are_the_transposed_convolution(x_shape, w_shape, stride,
                                                              padding, dilation, groups, ran):
    x, w = _inputs(x_shape, w_shape)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = _output_gradient(x, w, attrs)
    gx = ORT["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs)
    assert ran == ["ConvTranspose"]
    _close(gx, _reference_grads(g, x, w, attrs)[0])


@pytest.mark.skipif(not BLOCK, reason="this onnxruntime has no NCHWc convolution")
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, phases", [
    ((2, 32, 16, 16), (16, 32, 3, 3), (2, 2), (1, 1), (1, 1), 4),   # SmallVGG's strided layer
    ((2, 8, 11, 9), (16, 8, 3, 2), (2, 1), (1, 0), (1, 2), 2),      # the floor drops a row
    ((2, 8, 13, 12), (8, 8, 3, 3), (3, 2), (2, 0), (2, 1), 6),      # stride 3, dilated
    ((2, 8, 10, 10), (8, 8, 5, 5), (3, 3), (2, 2), (1, 1), 9),      # taps 2 or 1 per phase
    ((2, 8, 9, 9), (8, 8, 1, 1), (2, 2), (0, 0), (1, 1), 1),        # 3 phases no tap reaches
])
def test_strided_input_gradients_are_blocked_convolutions_per_phase(
        x_shape, w_shape, stride, padding, dilation, phases, ran):
    x, w = _inputs(x_shape, w_shape)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=1)
    g = _output_gradient(x, w, attrs)
    gx = ORT["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs)
    assert ran == [ort_conv.NCHWC_CONV] * phases
    _close(gx, _reference_grads(g, x, w, attrs)[0])


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", [
    ((3, 16, 10, 10), (8, 16, 3, 3), (1, 1), (1, 1), (1, 1), 1),   # wide im2col rows
    ((3, 32, 10, 10), (8, 32, 3, 3), (2, 2), (1, 1), (1, 1), 1),   # channels-last rows
    ((2, 32, 9, 9), (8, 16, 3, 3), (1, 1), (1, 1), (1, 1), 2),     # grouped
    ((2, 16, 11, 9), (6, 16, 3, 2), (2, 1), (1, 0), (1, 2), 1),    # strided, dilated, uneven
])
def test_the_weight_gradient_from_16_channels_multiplies_on_onnxruntime(
        x_shape, w_shape, stride, padding, dilation, groups, ran):
    x, w = _inputs(x_shape, w_shape)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = _output_gradient(x, w, attrs)
    gw = ORT["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs)
    assert ran and set(ran) == {"MatMul"}
    _close(gw, _reference_grads(g, x, w, attrs)[1])


def test_the_weight_gradient_below_16_channels_is_the_numpy_kernel(ran):
    x, w = _inputs((3, 6, 12, 12), (16, 6, 5, 5))  # LeNet's conv2
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    g = _output_gradient(x, w, attrs)
    gw = ORT["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs)
    assert ran == []
    np.testing.assert_array_equal(gw, NUMPY["conv2d_grad_weight"](g, x, weight_shape=w.shape,
                                                                   **attrs))


def test_the_weight_gradient_split_over_two_threads_is_one_threads_to_the_bit(monkeypatch,
                                                                               ran):
    # Each thread multiplies its blocks on MLAS sessions of their own thread; the blocks are
    # summed in order, so the split changes nothing.
    monkeypatch.setattr(_threads, "_threads", 2)
    parts: list[int] = []
    monkeypatch.setattr(parallel, "run_parts",
                        lambda fn, n: (parts.append(n), _threads.run_parts(fn, n)))
    x, w = _inputs((64, 16, 16, 16), (16, 16, 3, 3), seed=6)
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    g = _output_gradient(x, w, attrs)
    split = ORT["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs)
    assert parts == [2] and set(ran) == {"MatMul"}
    one_thread = conv.kernels(np, gemm=ort_conv.matmul, block_bytes=ort_conv.GEMM_BLOCK_BYTES)
    np.testing.assert_array_equal(
        split, one_thread["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs))
    _close(split, _reference_grads(g, x, w, attrs)[1])


@pytest.mark.parametrize("a_shape, b_shape, transpose", [
    ((5, 7), (7, 3), None),
    ((2, 3, 40, 6), (2, 3, 6, 4), "b"),   # a transposed view of the smaller operand
    ((2, 40, 6), (2, 40, 5), "a"),        # a transposed view of the larger operand
])
def test_matmul_multiplies_views_like_numpy(a_shape, b_shape, transpose, ran):
    rng = np.random.default_rng(2)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    if transpose == "a":
        a = a.swapaxes(-1, -2)  # (2, 6, 40) @ (2, 40, 5): b is transposed instead
    elif transpose == "b":
        b = np.ascontiguousarray(b.swapaxes(-1, -2)).swapaxes(-1, -2)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    out = np.empty(expected.shape, np.float32)
    assert ort_conv.matmul(a, b, out=out) is out
    assert ran == ["MatMul"]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    a64 = a.astype(np.float64)  # other dtypes are NumPy's
    np.testing.assert_array_equal(ort_conv.matmul(a64, b), np.matmul(a64, b))
    assert ran == ["MatMul"]


def test_float64_and_empty_batches_are_the_numpy_kernels(ran):
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    for x, w in (_inputs((2, 16, 6, 6), (4, 16, 3, 3), dtype=np.float64),
                 _inputs((0, 16, 6, 6), (4, 16, 3, 3))):
        np.testing.assert_array_equal(ORT["conv2d"](x, w, **attrs),
                                      NUMPY["conv2d"](x, w, **attrs))
    assert ran == []


def test_two_threads_convolve_at_once():
    x, w = _inputs((8, 16, 16, 16), (16, 16, 3, 3), seed=3)
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    expected = ref_conv2d(x.astype(np.float64), w.astype(np.float64), **attrs)
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(ORT["conv2d"](x, w, **attrs))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 40
    for y in results:
        _close(y, expected)


PROBE = ("import plugrad as P; from plugrad.core import registry; "
         "t = registry.dispatch_table(P.Tensor(0.0).device.type); "
         "k = t['conv2d']; print(getattr(k, '__wrapped__', k).__module__)")  # inside BLAS's scope


@pytest.mark.parametrize("engine, module", [
    (None, "plugrad.backends.numpy_backend.ort_conv"),
    ("numpy", "plugrad.backends.numpy_backend.parallel")])
def test_the_backend_uses_onnxruntime_unless_told_not_to(engine, module):
    done = python(PROBE, cwd=ROOT, env={ort_conv.ENGINE_VARIABLE: engine} if engine else None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == module


@pytest.mark.parametrize("engine, line", [
    (None, "convolutions (cpu, float32): onnxruntime's ("
           + (f"MLAS's direct kernels in {BLOCK}-channel blocks" if BLOCK else "im2col")
           + ") for the forward and the input gradient, and its GEMM for the weight gradient "
           "from 16 input channels"),
    ("numpy", "convolutions (cpu): NumPy's (PLUGRAD_CONV_ENGINE=numpy)")])
def test_plugrad_info_says_which_convolutions_run(engine, line):
    done = plugrad("info", cwd=ROOT, env={ort_conv.ENGINE_VARIABLE: engine} if engine else None)
    assert done.returncode == 0, done.stderr
    assert line in done.stdout


FORK_AFTER_A_SESSION = """
import os, sys, numpy as np
from plugrad.backends.numpy_backend import conv, ort_conv
kernels = ort_conv.kernels(conv.kernels(np))
x = np.ones((2, 16, 8, 8), np.float32); w = np.ones((4, 16, 3, 3), np.float32)
attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
expected = kernels["conv2d"](x, w, **attrs)
pid = os.fork()
if pid == 0:  # the child convolves on sessions of its own, and leaves as multiprocessing's do
    same = np.array_equal(kernels["conv2d"](x, w, **attrs), expected)
    os._exit(0 if same and ort_conv.sessions_built() == 1 else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_convolves_and_exits():
    # A session inherited through fork must never be used or destroyed there: its thread
    # pool's threads do not exist in the child (destroying one hung the child).
    done = subprocess.run([sys.executable, "-c", FORK_AFTER_A_SESSION], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
