"""plugrad-ref-backend: the smallest complete plugrad backend, as a worked example.

It declares the ``ref`` device type (two devices, ``ref0`` and ``ref1``, both in host memory)
and implements only the primitives plugrad requires, in plain NumPy. Every composite op
(relu, softmax, ...) therefore runs through its decomposition. ``plugrad_ref.plugin`` is the
entry point; ``plugrad_ref.kernels`` is imported the first time a ``ref`` device is used.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
