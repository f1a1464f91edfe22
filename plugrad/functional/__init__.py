"""plugrad.functional (``import plugrad.functional as F``): every op as a function.

``F.nn`` holds the neural-network functions and ``F.loss`` the losses, as in MegEngine.
"""
from plugrad.functional import loss, nn, vision
from plugrad.functional.elementwise import *  # noqa: F401,F403
from plugrad.functional.elementwise import __all__ as _elementwise_all
from plugrad.functional.linalg import dot, matmul
from plugrad.functional.math import *  # noqa: F401,F403
from plugrad.functional.math import __all__ as _math_all
from plugrad.functional.conv import conv1d, conv2d, conv_transpose2d, linear
from plugrad.functional.nn import (
    batch_norm,
    dropout,
    embedding,
    gelu,
    group_norm,
    indexing_one_hot,
    layer_norm,
    leaky_relu,
    logsoftmax,
    one_hot,
    prelu,
    softmax,
)
from plugrad.functional.pooling import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool2d,
)
from plugrad.functional.sorting import argsort, sort, topk
from plugrad.functional.tiling import eye, repeat, tile
from plugrad.functional.tensor import *  # noqa: F401,F403
from plugrad.functional.tensor import __all__ as _tensor_all

__all__ = [*_elementwise_all, *_math_all, *_tensor_all, "matmul", "dot", "softmax",
           "logsoftmax", "one_hot", "indexing_one_hot", "nn", "loss", "conv2d",
           "conv_transpose2d", "linear", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "adaptive_max_pool2d", "batch_norm", "dropout", "embedding", "leaky_relu", "gelu",
           "sort", "argsort", "topk", "eye", "tile", "repeat", "vision", "conv1d", "prelu",
           "layer_norm", "group_norm"]


def _name_errors() -> None:
    """Wrap every public function here, in ``F.nn`` and in ``F.loss`` (see ``_errors``)."""
    import inspect

    from plugrad.functional._errors import names_itself

    wrapped: dict[int, object] = {}
    for namespace in (globals(), vars(nn), vars(loss)):
        names = namespace["__all__"]
        for name in names:
            function = namespace.get(name)
            if not inspect.isfunction(function) or hasattr(function, "__wrapped_public__"):
                continue
            if id(function) not in wrapped:
                wrapped[id(function)] = names_itself(name, function)
            namespace[name] = wrapped[id(function)]


_name_errors()
