"""Entry point of the numpy backend: the ``cpu`` device type, NumPy's namespace plus overrides."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from plugrad.hookspecs import API_VERSION, DeviceType, hookimpl

DTYPES = ("bool", "int8", "uint8", "int16", "int32", "float16", "float32", "float64")


def _namespace() -> ModuleType:
    import array_api_compat.numpy

    return array_api_compat.numpy


def _kernels():
    from plugrad.backends.numpy_backend import compiled, ort_conv, parallel
    from plugrad.backends.numpy_backend._blas import scoped
    from plugrad.backends.numpy_backend._malloc import keep_freed_memory
    from plugrad.backends.numpy_backend.kernels import kernel_table

    keep_freed_memory()  # numpy frees and re-allocates each step's arrays: keep them mapped
    # The whole table, generic kernels included: NumPy returns scalars for 0-d results, and
    # kernel_table wraps every kernel that may into one returning arrays.
    table = kernel_table(np)
    table.update(parallel.split_kernels(table, np))  # big batches split over threads
    if compiled.available():  # numba's loops: batch norm, ReLU, max pooling, some conv grads
        table.update(compiled.kernels(table))
    if ort_conv.available():  # onnxruntime's convolutions where they measured faster
        table.update(ort_conv.kernels(table))
    # one BLAS thread inside its GEMM kernels only: as fast idle, far steadier busy (_blas.py)
    return scoped(table)


def _to_host(array: np.ndarray) -> np.ndarray:
    return array


def _from_host(array: np.ndarray, index: int) -> np.ndarray:
    return array


def _collectives(comm: Any, index: int) -> Any:
    """MPI on the arrays themselves (mpi4py)."""
    from plugrad.distributed.mpi import MPICommunicator  # mpi4py only when a group forms

    return MPICommunicator(comm)


PLUGRAD_API_VERSION = API_VERSION


@hookimpl
def plugrad_register(registry) -> None:
    registry.add_device_type(DeviceType(
        name="cpu",
        namespace=_namespace,
        dtypes={name: np.dtype(name) for name in DTYPES},
        kernels=_kernels,
        to_host=_to_host,
        from_host=_from_host,
        array_types=(np.ndarray,),
        inplace=True,
        priority=0,
        collectives=_collectives,
    ))
