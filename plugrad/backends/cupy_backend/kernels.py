"""The ``gpu`` kernel table: the generic Array API kernels over CuPy, plus overrides.

Every primitive is written once against the Array API standard in
:mod:`plugrad.backends.generic`, and :mod:`plugrad.backends.numpy_backend.kernels` adds the
NumPy-like kernels (reductions, indexing, fused nn, convolution, pooling, in-place optimizer
updates) for any NumPy-like module. This module hands those ``cupy`` and replaces only what
CuPy lacks or where a CUDA kernel pays:

- ``index_add``, ``scatter_add``: ``cupyx.scatter_add`` (CuPy's ``indices`` has no ``sparse``
  form, and CUDA's atomic add covers fewer dtypes than plugrad's) - see :mod:`.indexing`;
- ``argsort``: CuPy's sort is always stable and takes no ``stable=`` keyword - see
  :mod:`.sorting`;
- ``uniform``, ``normal``, ``dropout``: a stateless counter-based generator, one kernel per call
  and no generator state to set up - see :mod:`.random`;
- ``sigmoid``, ``relu_grad``, ``softmax``, ``logsoftmax``, ``softmax_cross_entropy(_grad)``: one
  fused kernel each instead of a chain of passes - see :mod:`.fused`.

CuPy runs a kernel on the *current* device, whatever device its inputs live on. On a machine
with one GPU that is always the right one; with several, every kernel is wrapped to run on its
first input's device (creation kernels are placed by plugrad's ``DeviceType.device_scope``).
"""
from __future__ import annotations

from functools import wraps
from types import ModuleType
from typing import Any, Callable

from plugrad.backends.cupy_backend import fused, indexing, random, sorting
from plugrad.backends.numpy_backend.kernels import kernel_table as generic_table

__all__ = ["kernel_table", "overrides", "on_input_device"]

Kernel = Callable[..., Any]


def overrides(cupy: ModuleType, generic: dict[str, Kernel]) -> dict[str, Kernel]:
    """The kernels that replace generic ones on the GPU; ``generic`` serves their fallbacks."""
    table: dict[str, Kernel] = {}
    table.update(indexing.kernels(cupy))
    table.update(random.kernels(cupy))
    table.update(sorting.kernels(cupy))
    table.update(fused.kernels(cupy, generic))
    return table


def on_input_device(kernel: Kernel) -> Kernel:
    """``kernel`` run with its first input's device current (for machines with several GPUs)."""

    @wraps(kernel)
    def run(*arrays: Any, **attrs: Any) -> Any:
        if not arrays:  # creation kernels: plugrad enters the target device's scope
            return kernel(**attrs)
        with arrays[0].device:
            return kernel(*arrays, **attrs)

    return run


def _several_devices(cupy: ModuleType) -> bool:
    try:
        return cupy.cuda.runtime.getDeviceCount() > 1
    except Exception:  # no driver: the table is only listed (plugrad info), never run
        return False


def kernel_table(cupy: ModuleType) -> dict[str, Kernel]:
    """Every primitive and the fused ops plugrad declares, for the ``gpu`` device type.

    Building the table compiles nothing and touches no GPU: CUDA kernels are compiled by CuPy
    the first time they run.
    """
    from plugrad.core.registry import OPS

    table = generic_table(cupy)
    table.update(overrides(cupy, dict(table)))
    # Fused kernels for ops this plugrad does not declare (yet) are left out rather than
    # reported as unknown: the conv and pooling ops are declared by plugrad's nn layer.
    table = {name: kernel for name, kernel in table.items() if name in OPS}
    if _several_devices(cupy):
        table = {name: on_input_device(kernel) for name, kernel in table.items()}
    return table
