"""pytest-benchmark: one LeNet training step on the numpy backend (batch 64,
SGD(lr=0.01, momentum=0.9, weight_decay=5e-4), cross_entropy).

    PYTHONPATH=. python -m pytest benchmarks/bench_lenet_step.py --benchmark-only

The direct-kernel step (the same math without Tensors, tape or dispatch) is timed beside it,
so the report shows plugrad's framework overhead; compare_torch.py adds PyTorch.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lenet_step import (initial_state, kernels_step, make_batch, plugrad_step,  # noqa: E402
                        traced_step)


def _run(benchmark, make):
    step = make(initial_state(), *make_batch(64))
    for _ in range(10):  # warm-up: allocator, BLAS threads
        step()
    loss = benchmark.pedantic(step, rounds=100, iterations=1, warmup_rounds=5)
    assert np.isfinite(float(loss))


def test_lenet_step_plugrad(benchmark):
    _run(benchmark, plugrad_step)


def test_lenet_step_kernels_directly(benchmark):
    _run(benchmark, kernels_step)


def test_lenet_step_traced(benchmark):
    _run(benchmark, traced_step)
