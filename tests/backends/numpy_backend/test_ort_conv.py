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

from plugrad.backends.numpy_backend import conv, ort_conv  # noqa: E402
from tests.helpers.numerics import ref_conv2d, ref_conv_grads  # noqa: E402

NUMPY = conv.kernels(np)
ORT = ort_conv.kernels(NUMPY)


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
def test_the_forward_runs_on_onnxruntime_within_float32_rounding(case, with_bias):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w = _inputs(x_shape, w_shape)
    b = np.linspace(-1, 1, w_shape[0], dtype=np.float32).reshape(1, -1, 1, 1) if with_bias \
        else None
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    before = ort_conv.sessions_built()
    y = ORT["conv2d_bias"](x, w, b, **attrs)
    assert ort_conv.sessions_built() == before + 1  # a new geometry: a session was built
    expected = ref_conv2d(x.astype(np.float64), w.astype(np.float64), **attrs)
    _close(y, expected if b is None else expected + b)
    ORT["conv2d_bias"](x, w, b, **attrs)
    assert ort_conv.sessions_built() == before + 1  # and reused


@pytest.mark.parametrize("case", [
    ((2, 16, 10, 10), (8, 16, 3, 3), (1, 1), (1, 1)),
    ((2, 16, 12, 11), (4, 16, 5, 3), (0, 2), (1, 1)),
    ((2, 24, 13, 13), (5, 24, 3, 3), (2, 1), (2, 1)),  # dilated
])
def test_the_stride_one_input_gradient_runs_on_onnxruntime(case):
    x_shape, w_shape, padding, dilation = case
    x, w = _inputs(x_shape, w_shape)
    attrs = dict(stride=(1, 1), padding=padding, dilation=dilation, groups=1)
    g = np.random.default_rng(1).standard_normal(
        NUMPY["conv2d"](x, w, **attrs).shape).astype(np.float32)
    before = ort_conv.sessions_built()
    gx = ORT["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs)
    assert ort_conv.sessions_built() == before + 1
    expected, _ = ref_conv_grads(g.astype(np.float64), x.astype(np.float64),
                                 w.astype(np.float64), **attrs)
    _close(gx, expected)


@pytest.mark.parametrize("x_shape, w_shape, stride, groups", [
    ((2, 6, 12, 12), (16, 6, 5, 5), (1, 1), 1),    # too few input channels (LeNet's conv2)
    ((2, 16, 10, 10), (8, 16, 3, 3), (2, 2), 1),   # strided
    ((2, 16, 10, 10), (8, 8, 3, 3), (1, 1), 2),    # grouped
])
def test_other_input_gradients_are_the_numpy_kernels(x_shape, w_shape, stride, groups):
    x, w = _inputs(x_shape, w_shape)
    attrs = dict(stride=stride, padding=(1, 1), dilation=(1, 1), groups=groups)
    g = np.ones(NUMPY["conv2d"](x, w, **attrs).shape, np.float32)
    before = ort_conv.sessions_built()
    gx = ORT["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs)
    assert ort_conv.sessions_built() == before
    np.testing.assert_array_equal(gx, NUMPY["conv2d_grad_input"](g, w, input_shape=x.shape,
                                                                 **attrs))


def test_float64_and_empty_batches_are_the_numpy_kernels():
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    before = ort_conv.sessions_built()
    for x, w in (_inputs((2, 16, 6, 6), (4, 16, 3, 3), dtype=np.float64),
                 _inputs((0, 16, 6, 6), (4, 16, 3, 3))):
        np.testing.assert_array_equal(ORT["conv2d"](x, w, **attrs),
                                      NUMPY["conv2d"](x, w, **attrs))
    assert ort_conv.sessions_built() == before


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
    env = {k: v for k, v in os.environ.items() if k != ort_conv.ENGINE_VARIABLE}
    if engine is not None:
        env[ort_conv.ENGINE_VARIABLE] = engine
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == module


@pytest.mark.parametrize("engine, line", [
    (None, "convolutions (cpu, float32): onnxruntime's for the forward and the stride-1 input "
           "gradient, NumPy's otherwise"),
    ("numpy", "convolutions (cpu): NumPy's (PLUGRAD_CONV_ENGINE=numpy)")])
def test_plugrad_info_says_which_convolutions_run(engine, line):
    env = {k: v for k, v in os.environ.items() if k != ort_conv.ENGINE_VARIABLE}
    if engine is not None:
        env[ort_conv.ENGINE_VARIABLE] = engine
    done = subprocess.run([sys.executable, "-m", "plugrad", "info"], capture_output=True,
                          text=True, env=env, timeout=300)
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
