"""Entry point of the cupy backend: declares the ``gpu`` device type without importing CuPy.

plugrad imports this module the first time a device is resolved, on every machine, so it must stay
light: CuPy is imported by ``is_available`` (and by the functions that run only after it
succeeded). Where CuPy is missing or sees no CUDA device, ``is_available`` raises and plugrad
reports the message as the reason the ``gpu`` device type is unavailable; ``xpux`` then
resolves to the CPU.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, ContextManager

import numpy as np

from plugrad.hookspecs import API_VERSION, DeviceType, hookimpl

__all__ = ["DTYPES", "PRIORITY", "PLUGRAD_API_VERSION", "make_device_type", "plugrad_register"]

DTYPES = ("bool", "int8", "uint8", "int16", "int32", "float16", "float32", "float64")
#: Above the CPU's 0, so ``xpux`` picks ``gpu`` whenever CuPy sees a CUDA device.
PRIORITY = 10

_cupy: ModuleType | None = None


def _import_cupy() -> ModuleType:
    """CuPy, imported on first use; the ImportError's message is the reason shown."""
    global _cupy
    if _cupy is None:
        import cupy

        _cupy = cupy
    return _cupy


def _device_count() -> int:
    return int(_import_cupy().cuda.runtime.getDeviceCount())


def _to_host(array: Any) -> np.ndarray:
    return _import_cupy().asnumpy(array)


def _from_host(array: np.ndarray, index: int) -> Any:
    cupy = _import_cupy()
    with cupy.cuda.Device(index):
        if array.ndim == 0:
            # Scalar operands arrive this way on every `x * 0.5`: a fill kernel is queued
            # asynchronously, where a host-to-device copy would wait for the transfer.
            return cupy.full((), array[()], dtype=array.dtype)
        return cupy.asarray(array)


def _synchronize(index: int) -> None:
    _import_cupy().cuda.Device(index).synchronize()


def _device_scope(index: int) -> ContextManager[Any]:
    # cupy.cuda.Device skips the driver call when ``index`` is already current.
    return _import_cupy().cuda.Device(index)


def _namespace() -> ModuleType:
    import array_api_compat.cupy

    return array_api_compat.cupy


def _collectives(comm: Any, index: int) -> Any:
    """NCCL through CuPy (cupy.cuda.nccl); through the host where ranks share a GPU."""
    from plugrad.backends.cupy_backend.nccl import nccl_communicator

    return nccl_communicator(comm, index)


def _kernels() -> dict:
    from plugrad.backends.cupy_backend.kernels import kernel_table

    return kernel_table(_import_cupy())


def make_device_type() -> DeviceType:
    """The ``gpu`` device type; its ``array_types`` is filled in once CuPy has been imported."""
    device_type = DeviceType(
        name="gpu",
        namespace=_namespace,
        kernels=_kernels,
        dtypes={name: np.dtype(name) for name in DTYPES},
        to_host=_to_host,
        from_host=_from_host,
        array_types=(),
        device_count=_device_count,
        priority=PRIORITY,
        synchronize=_synchronize,
        device_scope=_device_scope,
        inplace=True,
        collectives=_collectives,
    )

    def is_available() -> bool:
        cupy = _import_cupy()  # ModuleNotFoundError: No module named 'cupy'
        count = cupy.cuda.runtime.getDeviceCount()  # CUDARuntimeError without a driver
        if count < 1:
            raise RuntimeError("CuPy is installed but sees no CUDA device "
                               "(cupy.cuda.runtime.getDeviceCount() returned 0)")
        # Only now may plugrad meet CuPy arrays: Tensor(cupy_array) accepts them from here on.
        device_type.array_types = (cupy.ndarray,)
        return True

    device_type.is_available = is_available
    return device_type


PLUGRAD_API_VERSION = API_VERSION


@hookimpl
def plugrad_register(registry) -> None:
    registry.add_device_type(make_device_type())
