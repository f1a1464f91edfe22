"""The state a traced function reads and writes besides its arguments.

Parameters, module buffers, optimizer state and gradients change between calls, so a replay reads
them from their tensors when it runs and writes the new values back. They are found where a
training step keeps them: in the Modules, Optimizers and GradManagers the function refers to
(closure cells, the globals its code names, its arguments, ``self`` of a bound method).
"""
from __future__ import annotations

from types import FunctionType, MethodType
from typing import Any, Callable, Iterable

from plugrad.core.grad_manager import GradManager
from plugrad.core.tensor import Tensor
from plugrad.nn.module import Module
from plugrad.optimizer.optimizer import Optimizer

__all__ = ["find_state"]


def _roots(function: Callable, seen: set[int]) -> list[Any]:
    """What ``function`` refers to, and what the plain functions it refers to refer to."""
    if id(function) in seen:
        return []
    seen.add(id(function))
    roots = []
    if isinstance(function, MethodType):
        roots.append(function.__self__)
        function = function.__func__
    code = getattr(function, "__code__", None)
    if code is None:
        return roots
    roots.extend(cell.cell_contents for cell in function.__closure__ or () if _filled(cell))
    names = function.__globals__
    roots.extend(names[name] for name in code.co_names if name in names)
    for value in list(roots):
        if isinstance(value, (FunctionType, MethodType)):
            roots.extend(_roots(value, seen))
    return roots


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a closure variable not assigned yet
        return False
    return True


def _tensors_of(value: Any) -> Iterable[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, Module):
        yield from value.parameters()
        yield from value.buffers()
    elif isinstance(value, Optimizer):
        for group in value.param_groups:
            yield from group["params"]
        for per_param in value._state.values():
            yield from (v for v in per_param.values() if isinstance(v, Tensor))
    elif isinstance(value, GradManager):
        yield from value.attached_tensors()
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (Tensor, Module, Optimizer, GradManager)):
                yield from _tensors_of(item)
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, (Tensor, Module, Optimizer, GradManager)):
                yield from _tensors_of(item)


def find_state(function: Callable, args: Iterable[Any]) -> dict[int, Tensor]:
    """The tensors ``function`` can reach through its Modules, Optimizers and GradManagers,
    by ``id``."""
    found: dict[int, Tensor] = {}
    for root in [*args, function, *_roots(function, set())]:  # function: maybe a Module
        for tensor in _tensors_of(root):
            found.setdefault(id(tensor), tensor)
    return found
