"""Loading a state dict into a Module: check everything, then copy in place.

Parameters are updated in place (the same Parameter objects), so an optimizer built before the
load keeps optimising the loaded values.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from plugrad.core.tensor import Tensor

if TYPE_CHECKING:
    from plugrad.nn.module import Module

__all__ = ["load_into"]


def _as_array(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


def _owner(model: Module, name: str) -> str:
    """The layer that holds ``name`` (for error messages), e.g. "Linear(...) 'fc1'"."""
    modules = dict(model.named_modules())
    path = name.split(".")
    for cut in range(len(path) - 1, -1, -1):
        module = modules.get(".".join(path[:cut]))
        if module is not None:
            return module._label()
    return model._label()


def _format(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def load_into(model: Module, state_dict: dict | Callable[[str, Tensor], Any],
              strict: bool) -> None:
    """Implementation of :meth:`Module.load_state_dict`."""
    closure: Callable[[str, Tensor], Any]
    if isinstance(state_dict, dict):
        unused = set(state_dict)

        def closure(key: str, _: Tensor) -> Any:
            return state_dict.get(key)
    elif callable(state_dict):
        unused = set()
        closure = state_dict
    else:
        raise TypeError(f"load_state_dict: expected a dict or a callable(name, tensor); got "
                        f"{type(state_dict).__name__}")

    local = model.state_dict(keep_var=True)
    updates: list[tuple[Tensor, np.ndarray]] = []
    missing: list[str] = []
    for key, tensor in local.items():
        value = closure(key, tensor)
        unused.discard(key)
        if value is None:
            missing.append(key)
            continue
        array = _as_array(value)
        if tuple(array.shape) != tuple(tensor.shape):
            raise ValueError(
                f"load_state_dict: {key!r} of {_owner(model, key)} has shape "
                f"{tuple(tensor.shape)} in the model but {tuple(array.shape)} in the "
                f"state_dict; expected {tuple(tensor.shape)}. Was the state_dict saved from a "
                f"model built with other sizes?")
        if array.dtype.kind not in "fiub":
            raise TypeError(f"load_state_dict: {key!r} holds {array.dtype} data; expected "
                            f"numbers")
        updates.append((tensor, array))
    if strict and unused:
        raise KeyError(f"load_state_dict: unused keys violate strict=True: "
                       f"{_format(sorted(unused))}; the model has no such parameters or "
                       f"buffers (pass strict=False to ignore them)")
    if strict and missing:
        raise KeyError(f"load_state_dict: missing keys violate strict=True: "
                       f"{_format(missing)}; the state_dict lacks them (pass strict=False to "
                       f"keep their current values)")
    for tensor, array in updates:
        device = tensor.device
        fresh = Tensor(array, dtype=tensor.dtype, device=device)
        tensor._set_data(fresh._data)
