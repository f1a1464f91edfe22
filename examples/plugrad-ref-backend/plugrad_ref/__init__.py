"""plugrad-ref-backend: a complete plugrad backend that is nothing but an Array API namespace.

It declares the ``ref`` device type (two devices, ``ref0`` and ``ref1``, both in host memory)
over ``array_api_strict``. plugrad's generic kernels run every primitive on it, and every
composite op (relu, softmax, ...) runs through its decomposition. ``plugrad_ref.plugin`` is
the entry point.
"""

__version__ = "0.2.0"
__all__ = ["__version__"]
