"""Tensor and Parameter, with MegEngine's semantics and reprs.

A Tensor holds a backend array, the device it lives on and, while a GradManager records, the tape
node that produced it. Operations never mutate their inputs; in-place operators (``+=``,
``__setitem__``) rebind the tensor to a new result, so recorded gradients stay correct.

The few writes that do go into a tensor's array in place (optimizer updates) report themselves
through :meth:`Tensor._mark_written`, which bumps the tensor's version; the tape compares the
versions it saved with the current ones at backward (see ``core/tape.py``).
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from plugrad.core import dtypes
from plugrad.core.device import Device, get_device

__all__ = ["Tensor", "Parameter", "plugrad_dtype", "wrap", "wrap_spec"]

ShapeLike = Any


def _host(t: Tensor) -> np.ndarray:
    if _dispatch.tracer is not None:  # a traced function reads a value: jit must know
        _dispatch.tracer.read(t)
    device = t._device
    return device.type.to_host(t._data)


def _host_array(source: Any) -> np.ndarray:
    """``source`` as a NumPy array, with a clear error for ragged nested lists."""
    try:
        return np.asarray(source)
    except ValueError as exc:
        if "inhomogeneous" not in str(exc):
            raise
        raise ValueError(f"Tensor: the nested lists are ragged (rows of different lengths or "
                         f"depths), so they form no rectangular array; got "
                         f"{_describe_ragged(source)}; pad the rows to one length") from None


def _describe_ragged(source: Any) -> str:
    if isinstance(source, (list, tuple)):
        lengths = [len(row) if isinstance(row, (list, tuple)) else "a scalar"
                   for row in source[:6]]
        return f"rows of lengths {lengths}" + (" ..." if len(source) > 6 else "")
    return type(source).__name__


def _has_big_int(host: np.ndarray) -> bool:
    return any(isinstance(v, int) and not -2**63 <= v < 2**64 for v in host.flat)


def _to_backend_array(data: Any, dtype: np.dtype | None, device: Device) -> Any:
    """A fresh backend array for ``data`` under MegEngine's default dtype rules."""
    device_type = device.type
    if device_type.array_types and isinstance(data, device_type.array_types) \
            and not isinstance(data, np.ndarray):
        source = device_type.to_host(data)
    else:
        source = data
    host = _host_array(source)
    if host.dtype.kind in "OUSV":
        if host.dtype.kind == "O" and _has_big_int(host):
            raise ValueError(f"Tensor: an integer in the data does not fit in 64 bits, let "
                             f"alone {dtype or 'int32'}; bring the values into range")
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} data of "
                        f"dtype {host.dtype}; expected numbers or booleans")
    target = dtypes.default_dtype_for(host.dtype) if dtype is None else dtypes.as_dtype(dtype)
    if target != host.dtype:
        host = dtypes.cast_host("Tensor", host, target)
    elif host is source or host.base is not None:
        host = host.copy()  # the tensor owns its data: later writes to ``data`` do not leak in
    if target.name not in device_type.dtypes:
        raise TypeError(f"Tensor: backend {device_type.backend!r} (device {device.logical}) does "
                        f"not support dtype {target.name}; supported: "
                        f"{', '.join(device_type.dtypes)}")
    return device_type.from_host(host, device.index)


class Tensor:
    """A multi-dimensional array on a device, MegEngine's ``Tensor``.

    Args:
        data: a Python scalar, (nested) list, NumPy array, backend array or Tensor.
        dtype: the dtype to store; by default float64 data becomes float32 and int64 int32.
        device: a device string such as ``"xpux"`` or ``"cpu0"``; the default device otherwise.

    Example:
        >>> Tensor([1, 2, 3])
        Tensor([1 2 3], dtype=int32, device=xpux:0)
    """

    # ``_dtype`` is plugrad's dtype of ``_data`` (a numpy.dtype), read through the device
    # type's dtype table once per array: the core never reads a backend array's own dtype.
    __slots__ = ("_data", "_dtype", "_device", "_node", "_version", "grad", "name",
                 "__weakref__")
    _data: Any  # the backend's array
    _dtype: np.dtype
    _device: Device
    _node: Any  # the tape's Node or Leaf that produced this tensor, or None
    _version: int
    grad: Tensor | None
    name: str | None
    # Let NumPy defer to our reflected operators (``ndarray + Tensor`` gives a Tensor).
    __array_ufunc__ = None

    def __init__(self, data: Any = None, dtype: Any = None, device: Any = None,
                 is_const: bool = False, no_cache: bool = False, name: str | None = None):
        if data is None:
            data = []
        if isinstance(data, Tensor):
            device_obj = get_device(device) if device is not None else data._device
            same_dtype = dtype is None or dtypes.as_dtype(dtype) == data._dtype
            if device_obj.physical == data._device.physical and same_dtype:
                # The backend's copy kernel, not ndarray.copy(): CuPy copies onto the current
                # device, which on a machine with several GPUs need not be this one.
                copy = device_obj.kernels["copy"]
                array = copy(data._data)
                if _dispatch.tracer is not None:
                    _dispatch.tracer.record("copy", copy, (data,), {}, array, device_obj)
            else:
                array = _to_backend_array(_host(data), dtype or data._dtype, device_obj)
        else:
            device_obj = get_device(device)
            array = _to_backend_array(data, dtype, device_obj)
        self._data = array
        self._dtype = plugrad_dtype(array, device_obj)
        self._device = device_obj
        self._node = None
        self._version = 0
        self.grad = None
        self.name = name

    # -- properties ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> type:
        """The NumPy scalar type, e.g. ``numpy.float32`` (MegEngine prints it as a class)."""
        return self._dtype.type

    @property
    def device(self) -> Device:
        return self._device

    @property
    def ndim(self) -> int:
        return len(self._data.shape)

    @property
    def size(self) -> int:
        return math.prod(self._data.shape)

    @property
    def T(self) -> Tensor:
        return F.transpose(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def requires_grad(self) -> bool:
        """Whether a recording GradManager tracks this tensor now."""
        return self._node is not None

    # -- conversion ------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """A NumPy copy of the data; changing it does not change the tensor."""
        return np.array(_host(self))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        host = np.array(_host(self))
        return host if dtype is None else host.astype(dtype, copy=False)

    def item(self) -> Any:
        if self.size != 1:
            raise ValueError(f"item: only a tensor of one element can be converted to a Python "
                             f"scalar; got shape {self.shape}")
        return _host(self).item()

    def tolist(self) -> Any:
        return _host(self).tolist()

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                             f"use .any() / .all() style reductions, e.g. (x > 0).sum()")
        return bool(_host(self).item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._dtype.kind not in "iub" or self.size != 1:
            raise TypeError(f"only integer tensors of one element can be used as an index; got "
                            f"shape {self.shape} dtype {self._dtype}")
        return int(self.item())

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self.shape[0]):
            yield self[i]

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        body = str(_host(self))
        dtype = self._dtype
        dtype_part = "" if dtype == dtypes.float32 else f", dtype={dtype.name}"
        return f"{type(self).__name__}({body}{dtype_part}, device={self._device.logical})"

    def __format__(self, spec: str) -> str:
        if spec and self.size == 1:
            return format(self.item(), spec)
        return repr(self) if not spec else format(repr(self), spec)

    # -- methods ---------------------------------------------------------------------------
    def astype(self, dtype: Any) -> Tensor:
        return F.astype(self, dtype)

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, Tensor)):
            return F.reshape(self, shape[0])
        return F.reshape(self, shape)

    def transpose(self, *pattern: Any) -> Tensor:
        if len(pattern) == 1 and isinstance(pattern[0], (tuple, list)):
            return F.transpose(self, tuple(pattern[0]) if pattern[0] else None)
        return F.transpose(self, pattern or None)

    def flatten(self) -> Tensor:
        return F.flatten(self)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.min(self, axis, keepdims)

    def prod(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.prod(self, axis, keepdims)

    def to(self, device: Any) -> Tensor:
        """A copy on ``device`` (the only way data moves between devices)."""
        return F.copy(self, device)

    def detach(self) -> Tensor:
        """The same data, cut from the tape."""
        return wrap(self._data, self._device)

    def _mark_written(self) -> None:
        """Record that this tensor's array was just written in place.

        Every in-place write into ``_data`` must call this (it is the one place the version
        changes), so a recorded op that saved the array can tell its data is stale.
        """
        self._version += 1

    def _set_data(self, array: Any) -> None:
        """Store ``array`` as this tensor's data, keeping its tape marker.

        The one place a tensor's data changes under it: update ops (optimizer steps, running
        statistics), initialisers and state loading all end here, whether a kernel wrote into
        the tensor's own array in place (``array is self._data``) or returned a new one.
        """
        if array is self._data:
            self._mark_written()  # written in place: arrays the tape saved of it are stale
            return
        self._dtype = plugrad_dtype(array, self._device)
        self._data = array

    def _reset(self, other: Tensor) -> None:
        """Rebind to ``other``'s data and tape node (how in-place operators stay differentiable)."""
        self._data = other._data
        self._dtype = other._dtype
        self._device = other._device
        self._node = other._node

    # -- indexing --------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Tensor:
        return F.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._reset(F.setitem(self, index, value))

    # -- arithmetic ------------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _dispatch.binary("add", self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _dispatch.binary("add", other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _dispatch.binary("sub", self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _dispatch.binary("sub", other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _dispatch.binary("mul", self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _dispatch.binary("mul", other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return F.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return F.div(other, self)

    def __floordiv__(self, other: Any) -> Tensor:
        return F.floor_div(self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return F.floor_div(other, self)

    def __mod__(self, other: Any) -> Tensor:
        return F.mod(self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return F.mod(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return F.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return F.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return F.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return F.matmul(other, self)

    def __neg__(self) -> Tensor:
        return F.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return F.abs(self)

    def __invert__(self) -> Tensor:
        return F.logical_not(self)

    def __and__(self, other: Any) -> Tensor:
        return F.logical_and(self, other)

    def __rand__(self, other: Any) -> Tensor:
        return F.logical_and(other, self)

    def __or__(self, other: Any) -> Tensor:
        return F.logical_or(self, other)

    def __ror__(self, other: Any) -> Tensor:
        return F.logical_or(other, self)

    def __xor__(self, other: Any) -> Tensor:
        return F.logical_xor(self, other)

    def __rxor__(self, other: Any) -> Tensor:
        return F.logical_xor(other, self)

    # -- comparisons (bool results) --------------------------------------------------------
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _dispatch.binary("eq", self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _dispatch.binary("ne", self, other)

    def __lt__(self, other: Any) -> Tensor:
        return _dispatch.binary("lt", self, other)

    def __le__(self, other: Any) -> Tensor:
        return _dispatch.binary("le", self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _dispatch.binary("gt", self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _dispatch.binary("ge", self, other)

    # -- in-place forms: same object, new data -----------------------------------------------
    def _inplace(self, result: Tensor, op: str) -> Tensor:
        if result._dtype != self._dtype:
            raise TypeError(f"{op}: the result dtype {result._dtype} cannot be stored in a "
                            f"{self._dtype} tensor in place; use x = x {op[1:]} y instead")
        if result._data.shape != self._data.shape:
            raise ValueError(f"{op}: the result shape {result._data.shape} does not match the "
                             f"tensor's shape {self._data.shape} for an in-place update")
        self._reset(result)
        return self

    def __iadd__(self, other: Any) -> Tensor:
        return self._inplace(self + other, "+=")

    def __isub__(self, other: Any) -> Tensor:
        return self._inplace(self - other, "-=")

    def __imul__(self, other: Any) -> Tensor:
        return self._inplace(self * other, "*=")

    def __itruediv__(self, other: Any) -> Tensor:
        return self._inplace(self / other, "/=")

    def __ifloordiv__(self, other: Any) -> Tensor:
        return self._inplace(self // other, "//=")

    def __imod__(self, other: Any) -> Tensor:
        return self._inplace(self % other, "%=")

    def __ipow__(self, other: Any) -> Tensor:
        return self._inplace(self ** other, "**=")

    def __imatmul__(self, other: Any) -> Tensor:
        return self._inplace(self @ other, "@=")

    def __reduce__(self):
        return (_rebuild, (type(self), self.numpy(), str(self._device.logical).split(":")[0]))


class Parameter(Tensor):
    """A Tensor an optimizer may update. Operations on a Parameter return plain Tensors."""

    __slots__ = ()


def _rebuild(cls: type, array: np.ndarray, device: str) -> Tensor:
    return cls(array, dtype=array.dtype, device=device)


_new = object.__new__


def plugrad_dtype(array: Any, device: Device) -> np.dtype:
    """plugrad's dtype of a backend array, through its device type's dtype table."""
    try:
        return device.dtype_of[array.dtype]
    except KeyError:
        raise _foreign_dtype(array, device) from None


def _foreign_dtype(array: Any, device: Device) -> TypeError:
    device_type = device.type
    return TypeError(f"backend {device_type.backend!r} (device {device.logical}) produced an array "
                     f"of dtype {array.dtype!r}, which is not in its dtype table; expected one of "
                     f"{', '.join(device_type.dtype_names())}. A kernel must return the dtype its "
                     f"op's contract gives ('plugrad info' lists the ops)")


def wrap(data: Any, device: Device) -> Tensor:
    """A Tensor around a backend array the caller hands over (no copy)."""
    t = _new(Tensor)
    t._data = data
    try:
        t._dtype = device.dtype_of[data.dtype]
    except KeyError:
        raise _foreign_dtype(data, device) from None
    t._device = device
    t._node = None
    t._version = 0
    t.grad = None
    t.name = None
    return t


def wrap_spec(spec: Any, device: Device) -> Tensor:
    """A Tensor whose data is a shape-and-dtype stand-in (the tape's ArraySpec), not an array."""
    t = _new(Tensor)
    t._data = spec
    t._dtype = spec.dtype
    t._device = device
    t._node = None
    t._version = 0
    t.grad = None
    t.name = None
    return t


# MegEngine's classes print as ``megengine.tensor.Tensor``; ``plugrad.tensor`` re-exports them.
Tensor.__module__ = "plugrad.tensor"
Parameter.__module__ = "plugrad.tensor"

from plugrad import functional as F  # noqa: E402  (cycle: functional builds on Tensor)
from plugrad.core import dispatch as _dispatch  # noqa: E402  (cycle: dispatch wraps Tensors)
