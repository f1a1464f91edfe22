"""Watches every kernel call on the device under test and checks what it returns.

While a check runs, each kernel of the device type is wrapped: the call is counted, and its
result must be one of the device type's array classes with the shape and dtype the op's declared
shape and dtype rule gives for the same inputs (:mod:`plugrad.conformance.contract`). A wrong
result is recorded with the op, the backend and the inputs, so a failure names the kernel at
fault rather than the op downstream that tripped over its output.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any, Callable, Iterator

import numpy as np

from plugrad.conformance.contract import signature
from plugrad.core.device import Device
from plugrad.core.registry import OPS, Spec

__all__ = ["KernelSpy", "KernelContractError", "without_kernel", "show_attrs"]


class KernelContractError(AssertionError):
    """A kernel returned something of the wrong kind, shape or dtype."""


def _dtype_name(dtype: Any) -> str:
    """A NumPy dtype's name, or how another library prints its dtype object."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def _describe(value: Any) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{tuple(value.shape)} {_dtype_name(value.dtype)}"
    return repr(value)


def show_attrs(attrs: dict) -> str:
    """Attributes as text, with arrays (inside index tuples too) shown as shape and dtype."""

    def one(value: Any) -> str:
        if isinstance(value, tuple):
            inner = ", ".join(one(v) for v in value)
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.dtype):
            return f"<array {_describe(value)}>"
        if isinstance(value, np.dtype):
            return repr(value.name)
        return repr(value)

    return "{" + ", ".join(f"{k}={one(v)}" for k, v in attrs.items()) + "}"


def _host(value: Any, to_host: Callable[[Any], np.ndarray]) -> Any:
    """Host copies of device arrays, inside index tuples too (they carry device arrays)."""
    if isinstance(value, tuple):
        return tuple(_host(v, to_host) for v in value)
    if isinstance(value, (np.ndarray, np.generic, np.dtype)) or not hasattr(value, "shape"):
        return value
    return np.asarray(to_host(value))


class KernelSpy:
    """Wraps the device's kernel table for the duration of a ``with`` block."""

    def __init__(self, device: Device):
        self.device = device
        self.calls: Counter[str] = Counter()
        self.violations: list[str] = []
        self._saved: dict[str, Callable] | None = None
        #: Ops the device type implements natively (composites without a kernel are absent).
        self.native: frozenset[str] = frozenset(device.kernels)

    def __enter__(self) -> KernelSpy:
        table = self.device.kernels
        self._saved = dict(table)
        for name, kernel in self._saved.items():
            table[name] = self._wrap(name, kernel)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        table = self.device.kernels
        table.clear()
        table.update(self._saved or {})

    def raise_first(self) -> None:
        """Fail with the first wrong kernel result seen (the root cause of what followed)."""
        if self.violations:
            more = len(self.violations) - 1
            extra = f"\n(and {more} more wrong kernel result(s))" if more else ""
            raise KernelContractError(self.violations[0] + extra)

    def _wrap(self, name: str, kernel: Callable) -> Callable:
        spec = OPS.get(name)
        device_type = self.device.type

        def spied(*arrays: Any, **attrs: Any) -> Any:
            out = kernel(*arrays, **attrs)
            self.calls[name] += 1
            problem = self._check(name, spec, device_type, arrays, attrs, out)
            if problem:
                self.violations.append(problem)
            return out

        spied.__wrapped__ = kernel  # type: ignore[attr-defined]
        return spied

    def _check(self, name: str, spec, device_type, arrays: tuple, attrs: dict,
               out: Any) -> str | None:
        where = (f"{name}: the {device_type.backend!r} backend's kernel (device type "
                 f"{device_type.name!r}) returned")
        inputs = ", ".join(_describe(a) for a in arrays) or "no arrays"
        shown = show_attrs(attrs)
        called = f"for inputs [{inputs}]" + (f" with {shown}" if attrs else "")
        if isinstance(out, tuple):  # an update op: one array per updated tensor
            return self._check_each(name, spec, device_type, arrays, attrs, out, where, called)
        kinds = device_type.array_types
        if kinds and not isinstance(out, kinds):
            allowed = ", ".join(f"{k.__module__}.{k.__qualname__}" for k in kinds)
            return (f"{where} a {type(out).__module__}.{type(out).__qualname__} {called}; "
                    f"expected an instance of the device type's array_types ({allowed}); "
                    f"wrap 0-d results as arrays (NumPy ufuncs return scalars for them)")
        if not (hasattr(out, "shape") and hasattr(out, "dtype")):
            return f"{where} {type(out).__name__} {called}; expected an array with shape and dtype"
        if spec is None or spec.rule is None:
            return None
        expected = self._expected(spec, device_type, arrays, attrs)
        if expected is None:
            return None
        return self._compare_meta(name, spec, out, expected, where, called)

    def _expected(self, spec, device_type, arrays: tuple, attrs: dict) -> Any:
        """The op's declared rule on the call: inputs as plugrad's shape-and-dtype specs."""
        if spec is None or spec.rule is None:
            return None
        dtype_of = self.device.dtype_of
        specs = [Spec(tuple(a.shape), dtype_of.get(a.dtype, a.dtype)) for a in arrays]
        try:
            return spec.rule(*specs, **{k: self._host_attr(k, v, device_type)
                                        for k, v in attrs.items()})
        except Exception:  # the rule refuses inputs the front end never sends; not the kernel's
            return None

    def _check_each(self, name: str, spec, device_type, arrays: tuple, attrs: dict,
                    out: tuple, where: str, called: str) -> str | None:
        expected = self._expected(spec, device_type, arrays, attrs)
        if expected is not None and len(out) != len(expected):
            return (f"{where} {len(out)} arrays {called}; expected {len(expected)} "
                    f"(contract: {signature(name)} -> {spec.doc})")
        kinds = device_type.array_types
        for i, array in enumerate(out):
            if (kinds and not isinstance(array, kinds)) or not hasattr(array, "shape"):
                return (f"{where} a {type(array).__name__} as result {i} {called}; expected "
                        f"an array of the device type's array_types")
            if expected is not None:
                problem = self._compare_meta(name, spec, array, expected[i],
                                             f"{where} as result {i}", called)
                if problem:
                    return problem
        return None

    def _host_attr(self, key: str, value: Any, device_type) -> Any:
        """An attribute as the NumPy contract reads it: ``dtype=`` back as plugrad's dtype."""
        if key == "dtype":
            return self.device.dtype_of.get(value, value)
        return _host(value, device_type.to_host)

    def _compare_meta(self, name: str, spec, out: Any, expected: Any, where: str,
                      called: str) -> str | None:
        wanted = np.dtype(expected.dtype)
        got_shape, got_dtype = tuple(out.shape), self.device.dtype_of.get(out.dtype)
        if got_dtype is None:
            return (f"{where} dtype {_dtype_name(out.dtype)} {called}, which is not in the "
                    f"device type's dtype table; expected {wanted.name}")
        contract = f"(contract: {signature(name)} -> {spec.doc})"
        if got_shape != tuple(expected.shape):
            return f"{where} shape {got_shape} {called}; expected shape {expected.shape} {contract}"
        if got_dtype != wanted:
            return f"{where} dtype {got_dtype.name} {called}; expected {wanted.name} {contract}"
        return None


@contextlib.contextmanager
def without_kernel(device: Device, op: str) -> Iterator[None]:
    """Hide the device's kernel for ``op``, so a composite op runs through its decomposition."""
    table = device.kernels
    kernel = table.pop(op, None)
    try:
        yield
    finally:
        if kernel is not None:
            table[op] = kernel
