"""Every fused kernel of the numpy backend against its op's decomposition, forward and gradient.

The check is the conformance suite's own (``plugrad.conformance.checks.check_fused`` over the
suite's cases), run here in this process so the decompositions it compares against count in
the test suite's coverage; ``tests/conformance`` runs the whole suite as a user does.
"""
from __future__ import annotations

import pytest

from plugrad.conformance import checks
from plugrad.conformance.plugin import _cases
from plugrad.conformance.spy import KernelSpy
from plugrad.conformance.target import resolve
from plugrad.core.device import using_device

TARGET = resolve("numpy")
CASES = _cases(TARGET, "fused-forward") + _cases(TARGET, "fused-gradient")


def test_every_composite_op_with_a_numpy_kernel_has_cases():
    ops = {case.record.op for case in CASES}
    assert {"conv2d", "max_pool2d", "avg_pool2d_grad", "batch_norm", "softmax_cross_entropy",
            "dropout", "gelu", "linear"} <= ops, sorted(ops)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.check}-{c.id}" for c in CASES])
def test_fused_kernel_matches_its_decomposition(case):
    device = TARGET.device
    with using_device(device.logical), KernelSpy(device) as spy:
        checks.check_fused(case, device, spy, gradient=case.check == "fused-gradient")
