"""plugrad.functional (``import plugrad.functional as F``): every op as a function.

``F.nn`` holds the neural-network functions and ``F.loss`` the losses, as in MegEngine.
"""
from plugrad.functional import loss, nn
from plugrad.functional.elementwise import *  # noqa: F401,F403
from plugrad.functional.elementwise import __all__ as _elementwise_all
from plugrad.functional.linalg import dot, matmul
from plugrad.functional.math import *  # noqa: F401,F403
from plugrad.functional.math import __all__ as _math_all
from plugrad.functional.nn import indexing_one_hot, logsoftmax, one_hot, softmax
from plugrad.functional.tensor import *  # noqa: F401,F403
from plugrad.functional.tensor import __all__ as _tensor_all

__all__ = [*_elementwise_all, *_math_all, *_tensor_all, "matmul", "dot", "softmax",
           "logsoftmax", "one_hot", "indexing_one_hot", "nn", "loss"]
