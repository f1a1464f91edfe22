"""State dicts as safetensors files, the format PyTorch and Hugging Face tools exchange weights in.

A safetensors file is a flat mapping of names to arrays (an 8-byte header length, a JSON header
of dtypes, shapes and offsets, then the raw data); it runs no code when read. The ``safetensors``
package (its NumPy API) reads and writes it; it is an optional extra, imported only here.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from plugrad.core.tensor import Tensor

__all__ = ["SUFFIX", "encode", "decode", "looks_like_safetensors"]

SUFFIX = ".safetensors"
_INSTALL = "pip install 'plugrad[safetensors]'"


def _package(who: str) -> tuple[Any, type[Exception]]:
    """safetensors' NumPy API and its error class."""
    try:
        import safetensors.numpy
        from safetensors import SafetensorError
    except ImportError:
        raise ImportError(f"{who}: .safetensors files need the safetensors package; install it "
                          f"with: {_INSTALL}") from None
    return safetensors.numpy, SafetensorError


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """Whether a file of ``size`` bytes starting with ``head`` (9+ bytes) is safetensors."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return int.from_bytes(head[:8], "little") <= size - 8


def encode(obj: Any, name: str) -> bytes:
    """The safetensors bytes of ``obj``, a flat dict of names to Tensors or NumPy arrays."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: {name} is a .safetensors file, which holds a flat dict of names "
                        f"to arrays; got a {type(obj).__name__}. Save a state dict, or use "
                        f"another file name for plugrad's own format")
    arrays: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"save: {name}: safetensors names must be strings; got the key "
                            f"{key!r} ({type(key).__name__})")
        if isinstance(value, Tensor):
            value = value.numpy()  # the backend's to-host transfer
        if not isinstance(value, np.ndarray):
            raise TypeError(f"save: {name}: safetensors holds only arrays, but obj[{key!r}] is "
                            f"a {type(value).__name__}; expected Tensors or NumPy arrays (a "
                            f"state dict). Use another file name for plugrad's own format, "
                            f"which holds nested objects too")
        arrays[key] = value
    api, error = _package("save")
    try:
        return api.save(arrays)
    except (error, ValueError, TypeError) as exc:
        dtypes = sorted({str(a.dtype) for a in arrays.values()})
        raise TypeError(f"save: {name}: safetensors cannot store these arrays (dtypes "
                        f"{', '.join(dtypes)}): {exc}") from exc


def decode(data: bytes, name: str) -> dict[str, np.ndarray]:
    """The dict of NumPy arrays a safetensors file holds."""
    from plugrad.serialization import CorruptFileError  # plugrad.serialization imports this

    api, error = _package("load")
    try:
        return api.load(data)
    except (error, ValueError) as exc:
        raise CorruptFileError(f"load: {name} is a truncated or corrupt safetensors file "
                               f"({exc})") from exc
