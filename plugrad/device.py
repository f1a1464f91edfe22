"""Public device functions (``plugrad.device``), as in MegEngine."""
from plugrad.core.device import (
    get_default_device,
    get_device_count,
    is_cuda_available,
    set_default_device,
    using_device,
    what_is_xpu,
)

__all__ = ["get_default_device", "set_default_device", "using_device", "get_device_count",
           "is_cuda_available", "what_is_xpu"]
