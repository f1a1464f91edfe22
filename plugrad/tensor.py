"""Public path of Tensor and Parameter (``plugrad.tensor.Tensor``, as MegEngine spells it)."""
from plugrad.core.tensor import Parameter, Tensor

__all__ = ["Tensor", "Parameter"]
