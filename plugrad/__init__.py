"""plugrad: a MegEngine-style deep-learning framework whose kernels come from backend plugins.

``import plugrad`` imports no backend and scans no plugins: that happens when the first tensor
asks for a device.
"""
from plugrad.core.tensor import Parameter, Tensor
from plugrad import tensor as _tensor_module  # noqa: F401  (loaded first: see `tensor` below)
from plugrad import ops as _ops  # noqa: F401  (declares every op)
from plugrad import functional, random
from plugrad.core.device import (
    get_default_device,
    get_device_count,
    is_cuda_available,
    set_default_device,
    using_device,
)
from plugrad import autodiff, device, optimizer
from plugrad.serialization import load, save

__version__ = "0.1.0"

# ``plugrad.tensor`` is the class, as in MegEngine; the module of that name was imported above,
# so a later ``import plugrad.tensor`` finds it loaded and leaves this name alone.
tensor = Tensor

# Heavier packages load on first use, so ``plugrad.jit.trace`` works after a bare ``import plugrad``
# (as in MegEngine) and ``import plugrad`` stays light.
_LAZY_SUBMODULES = ("data", "distributed", "jit", "module", "nn")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"plugrad.{name}")
    raise AttributeError(f"module 'plugrad' has no attribute {name!r}")


__all__ = [
    "Tensor", "Parameter", "tensor", "functional", "random", "autodiff", "optimizer",
    "get_default_device", "set_default_device", "using_device", "get_device_count",
    "is_cuda_available", "save", "load", "__version__",
]
