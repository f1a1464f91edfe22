"""The numpy backend's batch-split convolutions and the thread pool under them.

Splitting changes only which thread computes which samples. The forward pass and the input
gradient match the one-thread kernels to rounding, not to the bit: each slice is a GEMM of
another width, and BLAS libraries pick other micro-kernels for other widths (AVX-512 OpenBLAS
does). The weight gradient sums the same blocks in the same order, so it matches to the bit.
A batch of one is never split.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from plugrad.backends.numpy_backend import _threads, conv, parallel, pool

PLAIN = {**conv.kernels(np), **pool.kernels(np)}
SPLIT = parallel.split_kernels(PLAIN, np)

CASES = [  # (x shape, w shape, stride, padding, dilation, groups)
    ((7, 1, 12, 12), (6, 1, 5, 5), (1, 1), (0, 0), (1, 1), 1),
    ((5, 6, 9, 9), (8, 3, 3, 3), (2, 1), (1, 2), (1, 1), 2),
    ((3, 4, 10, 8), (4, 4, 3, 3), (1, 1), (2, 2), (2, 1), 1),
    ((1, 2, 6, 6), (3, 2, 1, 1), (1, 1), (0, 0), (1, 1), 1),
]


@pytest.fixture(autouse=True)
def splits(monkeypatch) -> list[int]:
    """How many parts each split kernel call ran in (tiny shapes are forced to split)."""
    monkeypatch.setattr(parallel, "MIN_SPLIT_MACS", 0)
    monkeypatch.setattr(parallel, "MIN_SPLIT_ELEMENTS", 0)
    monkeypatch.setattr(_threads, "_threads", 2)
    seen: list[int] = []

    def recording_run_parts(fn, parts):
        seen.append(parts)
        _threads.run_parts(fn, parts)

    monkeypatch.setattr(parallel, "run_parts", recording_run_parts)
    return seen


def split_once(splits: list[int], kernel, *args, **attrs):
    """``kernel(*args, **attrs)``, checking that it ran in two parts (one for a batch of one)."""
    splits.clear()
    out = kernel(*args, **attrs)
    expected = [2] if args[0].shape[0] > 1 else []
    assert splits == expected, f"expected parts {expected}, got {splits}"
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_split_convolutions_equal_the_one_thread_kernels(case, dtype, splits):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    y = PLAIN["conv2d"](x, w, **attrs)
    y_split = split_once(splits, SPLIT["conv2d"], x, w, **attrs)
    assert y_split.shape == y.shape and y_split.dtype == y.dtype
    np.testing.assert_allclose(y_split, y, **tol)
    b = rng.standard_normal((1, w_shape[0], 1, 1)).astype(dtype)
    np.testing.assert_allclose(split_once(splits, SPLIT["conv2d_bias"], x, w, b, **attrs),
                               PLAIN["conv2d_bias"](x, w, b, **attrs), **tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = PLAIN["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs)
    gx_split = split_once(splits, SPLIT["conv2d_grad_input"], g, w, input_shape=x.shape,
                          **attrs)
    assert gx_split.shape == gx.shape and gx_split.dtype == gx.dtype
    np.testing.assert_allclose(gx_split, gx, **tol)
    gw = PLAIN["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs)
    gw_split = split_once(splits, SPLIT["conv2d_grad_weight"], g, x, weight_shape=w.shape,
                          **attrs)
    assert gw_split.shape == gw.shape and gw_split.dtype == gw.dtype
    # The same blocks' products summed in the same order: equal to the bit.
    np.testing.assert_array_equal(gw_split, gw)


def test_lenet_layers_split_match_one_thread(splits):
    # Outputs and input gradients to float32 rounding, weight gradients to the bit.
    rng = np.random.default_rng(3)
    tol = dict(rtol=1e-5, atol=1e-5)
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    for x_shape, w_shape in (((64, 1, 32, 32), (6, 1, 5, 5)), ((64, 6, 14, 14), (16, 6, 5, 5))):
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        y = PLAIN["conv2d"](x, w, **attrs)
        np.testing.assert_allclose(split_once(splits, SPLIT["conv2d"], x, w, **attrs), y, **tol)
        g = rng.standard_normal(y.shape).astype(np.float32)
        np.testing.assert_allclose(
            split_once(splits, SPLIT["conv2d_grad_input"], g, w, input_shape=x.shape, **attrs),
            PLAIN["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs), **tol)
        np.testing.assert_array_equal(
            split_once(splits, SPLIT["conv2d_grad_weight"], g, x, weight_shape=w.shape, **attrs),
            PLAIN["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs))


POOL_CASES = [  # (x shape, kernel, stride, padding)
    ((5, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ((3, 2, 9, 7), (3, 3), (2, 1), (1, 1)),
    ((2, 1, 5, 5), (1, 1), (1, 1), (0, 0)),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_split_max_pooling_equals_the_one_thread_kernels(case, splits):
    shape, kernel, stride, padding = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 0, :2, :2] = 1.0  # a tie: the first maximum gets the gradient in both paths
    attrs = dict(kernel_size=kernel, stride=stride, padding=padding)
    y = PLAIN["max_pool2d"](x, **attrs)
    np.testing.assert_array_equal(split_once(splits, SPLIT["max_pool2d"], x, **attrs), y)
    g = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(split_once(splits, SPLIT["max_pool2d_grad"], g, x, y, **attrs),
                                  PLAIN["max_pool2d_grad"](g, x, y, **attrs))


def test_float16_is_not_split(splits):
    # Half-precision GEMMs are too slow to be worth a thread: the split kernel runs it whole.
    x = np.ones((4, 1, 6, 6), np.float16)
    w = np.ones((2, 1, 3, 3), np.float16)
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    y = SPLIT["conv2d"](x, w, **attrs)
    assert splits == []
    assert y.dtype == np.float16 and y.shape == (4, 2, 4, 4)
    np.testing.assert_array_equal(y, np.full((4, 2, 4, 4), 9.0, np.float16))  # 3x3 ones


def test_every_part_runs_once_and_errors_reach_the_caller():
    seen: list[int] = []
    _threads.run_parts(seen.append, 5)
    assert sorted(seen) == [0, 1, 2, 3, 4]

    def fail(part: int) -> None:
        if part == 1:
            raise ValueError("part 1 failed")

    with pytest.raises(ValueError, match="part 1 failed"):
        _threads.run_parts(fail, 2)
    _threads.run_parts(seen.append, 2)  # the pool still works after an error


def test_callers_on_several_threads_get_their_own_results(splits):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    expected = split_once(splits, SPLIT["conv2d"], x, w, **attrs)  # the same split, one caller
    failures: list[str] = []

    def caller() -> None:
        for _ in range(20):
            if not np.array_equal(SPLIT["conv2d"](x, w, **attrs), expected):
                failures.append("mismatch")

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_thread_count_comes_from_the_environment():
    code = "from plugrad.backends.numpy_backend import _threads; print(_threads.num_threads())"
    for value, expected in (("1", "1"), ("3", "3")):
        env = dict(os.environ, PLUGRAD_NUM_THREADS=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == expected
