"""One op call: device check, kernel lookup in a prebuilt dict, wrap, and (only if recording) tape.

This is plugrad's hot path. It performs no hook calls and no entry-point scans: the kernel table
of a device was built when the device was first resolved.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from plugrad.core import dtypes
from plugrad.core.registry import DECOMPOSE_WHEN_RECORDING, OPS, OpDef, Spec
from plugrad.core.tape import ArraySpec, Node, state
from plugrad.core.tensor import Tensor, wrap

__all__ = ["apply", "update", "record", "binary", "check", "promote_pair", "create",
           "check_broadcast", "common_device", "as_tensor_like", "spec_of", "surfaced", "tracer"]

#: The recorder of the ``plugrad.jit.trace`` being recorded, or None. Dispatch reads it once per
#: op call: recording costs nothing else while no trace records.
tracer: Any = None


def common_device(op: str, inputs: tuple[Tensor, ...]):
    """The device of ``inputs``; they must live on one physical device."""
    device = inputs[0]._device
    for other in inputs[1:]:
        other_device = other._device
        if other_device is not device and other_device.physical != device.physical:
            raise RuntimeError(
                f"{op}: inputs are on different devices: {device.logical} ({device.physical}) and "
                f"{other_device.logical} ({other_device.physical}); move one with "
                f"Tensor.to(device) first")
    return device


def _describe_inputs(inputs: tuple[Tensor, ...]) -> str:
    return ", ".join(f"{tuple(t._data.shape)} {t._dtype}" for t in inputs)


def _kernel_failed(op: str, device, inputs: tuple[Tensor, ...], attrs: dict,
                   exc: Exception) -> Exception:
    shown = {k: v for k, v in attrs.items() if not hasattr(v, "shape")}
    if isinstance(exc, MemoryError):  # stays a MemoryError: callers may catch and retry smaller
        return MemoryError(f"{op}: out of memory on {device.logical} with inputs "
                           f"[{_describe_inputs(inputs)}]" + (f" and {shown}" if shown else "")
                           + f": {exc or 'the allocation failed'}; use a smaller batch or "
                           f"tensor")
    message = (f"{op}: the {device.backend!r} backend's kernel failed on inputs "
               f"[{_describe_inputs(inputs)}]" + (f" with {shown}" if shown else "")
               + f": {type(exc).__name__}: {exc}")
    return surfaced(exc)(message)


def surfaced(exc: Exception) -> type[Exception]:
    """The builtin class a kernel's exception is reported as: TypeError, ValueError,
    IndexError, MemoryError (callers may catch it and retry smaller) or RuntimeError. Never
    ``type(exc)``: a library's own exception class may take other constructor arguments
    (NumPy's _UFuncNoLoopError needs its ufunc and dtypes)."""
    return next((k for k in (TypeError, ValueError, IndexError, MemoryError)
                 if isinstance(exc, k)), RuntimeError)


def _native(attrs: dict, device) -> dict:
    """``attrs`` with plugrad's ``dtype=`` as the backend's own dtype object: the one rule for
    what a kernel's ``dtype=`` is."""
    return {**attrs, "dtype": device.native_dtype[attrs["dtype"]]}


def _missing(op: str, device) -> Exception:
    return NotImplementedError(
        f"{op}: backend {device.backend!r} (device type {device.type.name!r}) does not implement "
        f"the primitive {op!r}; every backend must provide it (see 'plugrad info' for coverage)")


def record(op: OpDef, inputs: tuple[Tensor, ...], attrs: dict, result: Tensor) -> None:
    """Put ``op``'s call on the tape if an input descends from an attached tensor.

    :func:`apply` calls it for registered ops; an op that runs no kernel (a collective, whose
    arrays go through a communicator) calls it itself, with an :class:`OpDef` of its own.
    """
    parents = [t._node for t in inputs]
    needs = tuple([parent is not None for parent in parents])
    if True not in needs:
        return
    if not op.differentiable or result._dtype.kind != "f":
        return
    keep = op.keep_inputs
    if keep is None:
        saved = [t._data for t in inputs]
        versions: Sequence = [(t, t._version) for t in inputs]
    elif not keep:  # drop what the vjp never reads: it is freed once the forward is done with it
        saved = [ArraySpec(t) for t in inputs]
        versions = ()
    else:
        saved = [t._data if i in keep else ArraySpec(t) for i, t in enumerate(inputs)]
        versions = [(t, t._version) for i, t in enumerate(inputs) if i in keep]
    node = Node(op, parents, saved, result._data if op.keep_out else None, result._device, attrs,
                needs, versions)
    result._node = node
    state.live_nodes.append(node)


def _without_kernel(op: str, device, inputs: tuple[Tensor, ...], attrs: dict) -> Tensor:
    definition = OPS[op]
    if definition.primitive:
        raise _missing(op, device)
    return definition.decomposition(*inputs, **attrs)  # type: ignore[misc]  # a composite


def spec_of(t: Tensor) -> Any:
    """What a shape rule reads of ``t``: its array where the array reports plugrad's own dtype
    (NumPy's, so nothing is built on the hot path), else a :class:`Spec` with that dtype."""
    data = t._data
    return data if data.dtype is t._dtype else Spec(data.shape, t._dtype)


def check(op: str, *inputs: Tensor, **attrs: Any) -> Spec:
    """Validate a call with the op's declared shape and dtype rule; returns the output's Spec.

    The front end's one check of a call: it runs before :func:`apply`, never inside it, so ops
    calling ops (decompositions, vjps) pay nothing for it.
    """
    return OPS[op].rule(*[spec_of(t) for t in inputs], **attrs)


def apply(op: str, *inputs: Tensor, **attrs: Any) -> Tensor:
    """Run ``op`` on tensors that are already validated and promoted; returns a new Tensor."""
    device = inputs[0]._device
    if len(inputs) > 1:
        for other in inputs:
            if other._device is not device:
                device = common_device(op, inputs)
                break
    kernel = device.kernels.get(op)
    if kernel is None:
        return _without_kernel(op, device, inputs, attrs)
    recording = state.recording
    if recording and op in DECOMPOSE_WHEN_RECORDING \
            and any(t._node is not None for t in inputs):
        return _without_kernel(op, device, inputs, attrs)
    called = _native(attrs, device) if "dtype" in attrs else attrs
    try:
        out = kernel(*[t._data for t in inputs], **called)
    except Exception as exc:
        raise _kernel_failed(op, device, inputs, attrs, exc) from exc
    result = wrap(out, device)
    if recording:
        record(OPS[op], inputs, attrs, result)
    if tracer is not None:
        tracer.record(op, kernel, inputs, called, out, device)
    return result


def update(op: str, inputs: tuple[Tensor, ...], writes: tuple[Tensor, ...], **attrs: Any) -> None:
    """Run an update op and store its results into ``writes`` (never recorded on the tape).

    The kernel returns one array per tensor in ``writes``: the input arrays written in place on
    a backend whose ``DeviceType.inplace`` allows it, new arrays otherwise; either way each is
    stored through ``Tensor._set_data``. Without a kernel the op's decomposition runs.
    """
    device = common_device(op, inputs)
    kernel = device.kernels.get(op)
    if kernel is None:
        detached = [t.detach() for t in inputs]  # an update is never differentiated
        results = [t._data for t in OPS[op].decomposition(*detached, **attrs)]  # type: ignore[misc]
    else:
        try:
            results = kernel(*[t._data for t in inputs], **attrs)
        except Exception as exc:
            raise _kernel_failed(op, device, inputs, attrs, exc) from exc
        if tracer is not None:
            tracer.record(op, kernel, inputs, attrs, results, device)
    for tensor, array in zip(writes, results):
        tensor._set_data(array)


def create(op: str, device, **attrs: Any) -> Tensor:
    """Run a creation op (no tensor inputs) on ``device``."""
    kernel = device.kernels.get(op)
    if kernel is None:
        raise _missing(op, device)
    scope = device.type.device_scope
    if "dtype" in attrs:
        attrs = _native(attrs, device)
    try:
        if scope is None:
            out = kernel(**attrs)
        else:
            with scope(device.index):
                out = kernel(**attrs)
    except Exception as exc:
        raise _kernel_failed(op, device, (), attrs, exc) from exc
    if tracer is not None:
        tracer.record(op, kernel, (), attrs, out, device)
    return wrap(out, device)


@lru_cache(maxsize=4096)
def _broadcast_shape(op: str, a: tuple, b: tuple) -> tuple:
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        raise ValueError(f"{op}: shapes {a} and {b} cannot be broadcast together; each trailing "
                         f"dimension must be equal or 1") from None


def check_broadcast(op: str, a: tuple, b: tuple) -> tuple:
    """The broadcast shape of ``a`` and ``b``, or a ValueError naming the op and both shapes."""
    return a if a == b else _broadcast_shape(op, a, b)


def as_tensor_like(value: Any, like: Tensor, dtype: np.dtype | None = None,
                   op: str = "Tensor") -> Tensor:
    """A Python scalar, list or array as a tensor on ``like``'s device (weak scalar typing);
    ``op`` names the caller in the error a non-numeric value gets."""
    if isinstance(value, Tensor):
        return value
    if dtype is None:
        if isinstance(value, (bool, int, float, np.number, np.bool_)):
            dtype = dtypes.result_dtype(like._dtype, value)
        else:
            dtype = dtypes.default_dtype_for(np.asarray(value).dtype)
    device = like._device
    try:
        host = np.array(value, dtype=dtype)
    except OverflowError:  # NumPy refuses a Python int too big for the dtype
        raise ValueError(f"{value!r} does not fit in the {dtype} of the tensor it is combined "
                         f"with; convert the tensor to a wider dtype first") from None
    if host.dtype.kind not in "biuf":
        raise TypeError(f"{op}: cannot combine a Tensor with {type(value).__name__} "
                        f"{_short_repr(value)}; expected a number, a (nested) list of numbers, "
                        f"an array or a Tensor")
    return wrap(device.type.from_host(host, device.index), device)


def _short_repr(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _cast(t: Tensor, dtype: np.dtype) -> Tensor:
    return apply("cast", t, dtype=dtype)


def promote_pair(op: str, x: Any, y: Any) -> tuple[Tensor, Tensor]:
    """Two tensors of one dtype from tensors or scalars, under MegEngine's promotion rules."""
    if not isinstance(x, Tensor):
        if not isinstance(y, Tensor):
            raise TypeError(f"{op}: expected at least one Tensor, got {type(x).__name__} and "
                            f"{type(y).__name__}")
        x = as_tensor_like(x, y, op=op)
    elif not isinstance(y, Tensor):
        y = as_tensor_like(y, x, op=op)
    x_dtype, y_dtype = x._dtype, y._dtype
    if x_dtype != y_dtype:
        target = dtypes.promote(x_dtype, y_dtype)
        if x_dtype != target:
            x = _cast(x, target)
        if y_dtype != target:
            y = _cast(y, target)
    return x, y


def binary(op: str, x: Any, y: Any) -> Tensor:
    """An elementwise binary op: MegEngine's promotion, then the op's rule (broadcasting)."""
    if x.__class__ is not Tensor or y.__class__ is not Tensor \
            or x._dtype != y._dtype:
        x, y = promote_pair(op, x, y)
    OPS[op].rule(spec_of(x), spec_of(y))
    return apply(op, x, y)
