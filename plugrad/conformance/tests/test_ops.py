"""Every record of the op table: forward, gradient, fused against decomposed, properties."""
from __future__ import annotations

from plugrad.conformance import checks
from plugrad.conformance.tests._support import blocked_by_missing


def test_forward(forward_case, target, device, spy, repro):
    """Output shape, dtype and device, then values against the float64 NumPy reference."""
    repro(forward_case)
    with blocked_by_missing(target, (forward_case.record.op,)):
        checks.check_forward(forward_case, device, spy)


def test_gradient(gradient_case, target, device, spy, repro):
    """Gradients against central differences of the float64 reference."""
    repro(gradient_case)
    with blocked_by_missing(target, (gradient_case.record.op,)):
        checks.check_gradient(gradient_case, device, spy)


def test_fused_forward(fused_forward_case, target, device, spy, repro):
    """A composite op's native kernel gives what its decomposition gives."""
    repro(fused_forward_case)
    with blocked_by_missing(target):
        checks.check_fused(fused_forward_case, device, spy, gradient=False)


def test_fused_gradient(fused_gradient_case, target, device, spy, repro):
    """Gradients through the fused kernel (the op's vjp) match those through the decomposition."""
    repro(fused_gradient_case)
    with blocked_by_missing(target):
        checks.check_fused(fused_gradient_case, device, spy, gradient=True)


def test_property(property_case, target, device, spy, repro):
    """Ops without a reference (random numbers): shape, dtype, determinism, moments."""
    repro(property_case)
    with blocked_by_missing(target, (property_case.record.op,)):
        checks.check_property(property_case, device, spy)
