"""The checks every record goes through: forward, gradient, and fused against decomposed.

Inputs are built on the device under test from host values (transposed and strided layouts come
from the backend's own transpose and getitem, so they are views where the backend makes views).
Expected values come from the record's float64 NumPy reference, and expected gradients from
central differences of that reference, so nothing expected depends on the backend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from plugrad import functional as F
from plugrad import random as R
from plugrad.conformance.spy import KernelSpy, without_kernel
from plugrad.conformance.table import (
    DEFAULT_TOLERANCE,
    Arg,
    OpRecord,
    Sample,
    case_seed,
)
from plugrad.core.device import Device
from plugrad.core.grad_manager import GradManager
from plugrad.core.tensor import Tensor

__all__ = [
    "Case", "ConformanceFailure", "materialize", "reference_inputs", "numeric_gradient",
    "compare", "check_forward", "check_gradient", "check_fused", "check_property",
]


class ConformanceFailure(AssertionError):
    """A backend result that disagrees with the reference."""


@dataclass(frozen=True, repr=False)
class Case:
    """One record, dtype and sample under one check; ``id`` is its name in test ids."""

    record: OpRecord
    dtype: str
    sample: Sample | None
    check: str

    @property
    def id(self) -> str:
        label = f"-{self.sample.label}" if self.sample is not None else ""
        return f"{self.record.name}-{self.dtype}{label}"

    def __repr__(self) -> str:
        return f"<{self.check} case {self.id}>"

    def require_sample(self) -> Sample:
        """``sample``; a ValueError for a property case, which has none to run."""
        if self.sample is None:
            raise ValueError(f"conformance: {self!r} has no sample; expected a forward, gradient "
                             f"or fused case (property cases go through check_property)")
        return self.sample


def materialize(arg: Arg, device: Device) -> Tensor:
    """A tensor on ``device`` holding ``arg.value``, laid out as ``arg.layout`` asks."""
    host = arg.value
    if arg.layout == "t":
        base = Tensor(np.ascontiguousarray(host.transpose()), dtype=host.dtype, device=device)
        return F.transpose(base)
    if arg.layout == "s":
        wide = np.zeros(host.shape[:-1] + (2 * host.shape[-1],), dtype=host.dtype)
        wide[..., ::2] = host
        base = Tensor(wide, dtype=host.dtype, device=device)
        return F.getitem(base, (Ellipsis, slice(None, None, 2)))
    return Tensor(host, dtype=host.dtype, device=device)


def _inputs(sample: Sample, device: Device) -> list[Any]:
    return [materialize(a, device) if isinstance(a, Arg) else a for a in sample.args]


def reference_inputs(sample: Sample) -> list[Any]:
    """The sample's inputs as the reference sees them: floats as float64, ints as int64."""
    out: list[Any] = []
    for a in sample.args:
        if not isinstance(a, Arg):
            out.append(a)
        elif a.value.dtype.kind == "f":
            out.append(np.array(a.value, dtype=np.float64))
        elif a.value.dtype.kind in "iu":
            out.append(np.array(a.value, dtype=np.int64))
        else:
            out.append(np.array(a.value))
    return out


def _reference(record: OpRecord, sample: Sample) -> np.ndarray:
    reference = record.require_reference()
    with np.errstate(all="ignore"):
        return np.asarray(reference(*reference_inputs(sample), **sample.kwargs))


def numeric_gradient(reference: Callable[..., Any], args: Sequence[Any], kwargs: dict,
                     cotangent: np.ndarray, positions: Sequence[int],
                     eps: float = 1e-6) -> list[np.ndarray]:
    """d/d(args[p]) of sum(reference(*args) * cotangent) by central differences in float64."""
    args = list(args)

    def loss() -> float:
        with np.errstate(all="ignore"):
            out = np.asarray(reference(*args, **kwargs), dtype=np.float64)
        return float(np.sum(out * cotangent))

    grads = []
    for p in positions:
        x = np.array(args[p], dtype=np.float64)
        args[p] = x
        flat = x.reshape(-1)
        grad = np.zeros(x.size)
        for i in range(x.size):
            original = flat[i]
            step = eps * max(1.0, abs(original))
            flat[i] = original + step
            up = loss()
            flat[i] = original - step
            down = loss()
            flat[i] = original
            grad[i] = (up - down) / (2 * step)
        grads.append(grad.reshape(x.shape))
    return grads


def compare(op: str, what: str, got: np.ndarray, expected: np.ndarray, dtype: str,
            tolerance: tuple[float, float], against: str = "the float64 reference") -> None:
    """Raise :class:`ConformanceFailure` naming the worst element when values differ."""
    target = np.dtype(dtype)
    if target.kind in "biu":
        wanted = expected.astype(target)
        bad = got != wanted
        detail = "exactly"
    else:
        rtol, atol = tolerance
        wanted = expected.astype(np.float64)
        got64 = got.astype(np.float64)
        bad = ~np.isclose(got64, wanted, rtol=rtol, atol=atol, equal_nan=True)
        detail = f"beyond rtol={rtol:g}, atol={atol:g}"
    if not np.any(bad):
        return
    if target.kind in "biu":
        worst = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
    else:
        with np.errstate(invalid="ignore"):
            error = np.where(bad, np.abs(got64 - wanted), -1.0)
        error = np.where(np.isnan(error), np.inf, error)
        worst = np.unravel_index(int(np.argmax(error)), bad.shape) if bad.ndim else ()
    raise ConformanceFailure(
        f"{op}: {int(np.sum(bad))} of {bad.size} {what} value(s) differ from {against} "
        f"{detail}; worst at index {tuple(int(i) for i in worst)}: got {got[worst]!r}; "
        f"expected {wanted[worst]!r}")


def _check_meta(op: str, what: str, tensor: Any, shape: tuple, dtype: str,
                device: Device) -> None:
    if not isinstance(tensor, Tensor):
        raise ConformanceFailure(f"{op}: {what} is a {type(tensor).__name__}; expected a Tensor")
    if tuple(tensor.shape) != tuple(shape):
        raise ConformanceFailure(f"{op}: {what} has shape {tuple(tensor.shape)}; expected "
                                 f"{tuple(shape)}")
    got = np.dtype(tensor.dtype).name
    if got != dtype:
        raise ConformanceFailure(f"{op}: {what} has dtype {got}; expected {dtype}")
    if tensor.device.physical != device.physical:
        raise ConformanceFailure(f"{op}: {what} lives on {tensor.device.physical}; expected "
                                 f"{device.physical}, the device of its inputs")


def _reaches_kernel(case: Case, spy: KernelSpy) -> None:
    """The record must really call its op's kernel, or the table is testing something else."""
    op = case.record.op
    if op in spy.native and spy.calls[op] == 0:
        raise ConformanceFailure(
            f"{op}: record {case.record.name!r} case {case.require_sample().label!r} never "
            f"called the {op!r} kernel; the conformance table must exercise the op it names")


def check_forward(case: Case, device: Device, spy: KernelSpy) -> None:
    """Output shape, dtype, device, then values against the float64 reference."""
    record, sample = case.record, case.require_sample()
    out = record.fn(*_inputs(sample, device), **sample.kwargs)
    spy.raise_first()
    expected = _reference(record, sample)
    dtype = record.expected_dtype(sample, np.dtype(case.dtype))
    _check_meta(record.op, "the output", out, expected.shape, dtype, device)
    compare(record.op, "output", out.numpy(), expected, dtype, record.tolerance(dtype))
    _reaches_kernel(case, spy)


def _run_with_grads(case: Case, device: Device) -> tuple[Tensor, list[Tensor | None],
                                                          np.ndarray, list[Tensor], list[int]]:
    record, sample = case.record, case.require_sample()
    inputs = _inputs(sample, device)
    positions = [i for i, a in sample.tensor_args() if a.differentiable]
    gm = GradManager().attach([inputs[i] for i in positions])
    rng = np.random.default_rng(case_seed(case.id, "cotangent"))
    with gm:
        out = record.fn(*inputs, **sample.kwargs)
        cotangent = rng.standard_normal(tuple(out.shape)).astype(np.dtype(out.dtype))
        gm.backward(out, Tensor(cotangent, dtype=cotangent.dtype, device=device))
    grads = [inputs[i].grad for i in positions]
    return out, grads, cotangent, inputs, positions


def check_gradient(case: Case, device: Device, spy: KernelSpy) -> None:
    """Each input's gradient: shape, dtype, then values against central differences."""
    record, sample = case.record, case.require_sample()
    out, grads, cotangent, inputs, positions = _run_with_grads(case, device)
    spy.raise_first()
    numeric = numeric_gradient(record.require_reference(), reference_inputs(sample),
                               dict(sample.kwargs), cotangent.astype(np.float64), positions)
    tolerance = record.grad_tolerance(case.dtype)
    for position, grad, expected in zip(positions, grads, numeric):
        what = f"gradient of input {position}"
        if grad is None:
            if np.any(expected != 0):
                raise ConformanceFailure(
                    f"{record.op}: no {what} was computed; expected one with non-zero values "
                    f"(is the op recorded on the tape and its vjp defined?)")
            continue
        _check_meta(record.op, f"the {what}", grad, inputs[position].shape, case.dtype, device)
        compare(record.op, what, grad.numpy(), expected, case.dtype, tolerance,
                against="central differences of the float64 reference")


def check_fused(case: Case, device: Device, spy: KernelSpy, gradient: bool) -> None:
    """A composite op's native kernel against its decomposition (forward, and gradient)."""
    record, op, sample = case.record, case.record.op, case.require_sample()
    seed = case_seed(case.id, "random")
    R.seed(seed)  # random ops (dropout) must draw the same numbers in both runs
    if gradient:
        fused, fused_grads, *_ = _run_with_grads(case, device)
    else:
        fused, fused_grads = record.fn(*_inputs(sample, device), **sample.kwargs), []
    spy.raise_first()
    if spy.calls[op] == 0:
        raise ConformanceFailure(f"{op}: the backend's fused kernel was never called; expected "
                                 f"the native {op!r} kernel to run")
    R.seed(seed)
    with without_kernel(device, op):
        if gradient:
            plain, plain_grads, *_ = _run_with_grads(case, device)
        else:
            plain, plain_grads = record.fn(*_inputs(sample, device), **sample.kwargs), []
    spy.raise_first()
    against = f"the decomposition of {op!r} into primitives"
    _check_meta(op, "the fused output", fused, plain.shape, np.dtype(plain.dtype).name, device)
    tolerance = DEFAULT_TOLERANCE.get(case.dtype, (0.0, 0.0))
    compare(op, "fused output", fused.numpy(), plain.numpy(), case.dtype, tolerance, against)
    grad_tolerance = record.grad_tolerance(case.dtype)
    for i, (a, b) in enumerate(zip(fused_grads, plain_grads)):
        if (a is None) != (b is None):
            raise ConformanceFailure(f"{op}: the fused and decomposed runs disagree on whether "
                                     f"input {i} gets a gradient")
        if a is None or b is None:
            continue  # neither run computed one
        _check_meta(op, f"the fused gradient of input {i}", a, b.shape, np.dtype(b.dtype).name,
                    device)
        compare(op, f"fused gradient of input {i}", a.numpy(), b.numpy(), case.dtype,
                grad_tolerance, against)


def check_property(case: Case, device: Device, spy: KernelSpy) -> None:
    """Ops without a reference (random numbers) are checked by their record's own function."""
    check = case.record.check
    if check is None:
        raise ValueError(f"conformance: {case!r}: record {case.record.name!r} has no check "
                         f"function; expected one for a property case")
    check(device, np.dtype(case.dtype))
    spy.raise_first()
