"""``plugrad.jit``: trace a function once, replay its kernels, dump it to ONNX (MegEngine's
``megengine.jit``)."""
from __future__ import annotations

from plugrad.jit.recorder import TraceError
from plugrad.jit.trace import trace

__all__ = ["TraceError", "trace"]
