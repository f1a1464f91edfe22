"""Module: MegEngine's base class of layers and models.

A Module tracks what is assigned to it. ``__setattr__`` records, in assignment order, every
attribute holding a Parameter, a Tensor (a *buffer*, e.g. BatchNorm's running statistics), a
Module, or a list / tuple / dict that may hold them (walked when asked, so appending to a list
later is seen). Traversals (parameters, buffers, modules, state_dict) follow that registration
order, depth first: ``LeNet().named_parameters()`` yields ``conv1.weight, conv1.bias,
conv2.weight, ...`` in the order ``__init__`` assigned them. Containers are named by index or
key (``layers.0.weight``); a tensor or module reachable twice is yielded once by the iterators
(state_dict lists every name).
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any, Callable, Iterator, TypeGuard, TypeVar

from plugrad.core.tensor import Parameter, Tensor

__all__ = ["Module", "HookHandler"]

_hook_ids = itertools.count()
_T = TypeVar("_T", bound=Tensor)


def _trackable(value: Any) -> bool:
    """Whether an attribute may hold tensors or modules. Lists and dicts always may (they can
    be filled later); a tuple only if it holds some, or a list or dict, now."""
    if isinstance(value, (Tensor, Module, list, dict)):
        return True
    if isinstance(value, tuple):
        return any(_trackable(item) for item in value)
    return False


class HookHandler:
    """Returned by ``register_forward_*hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: OrderedDict[int, Callable], hook: Callable):
        self._hooks = hooks
        self._id = next(_hook_ids)
        hooks[self._id] = hook

    def remove(self) -> None:
        self._hooks.pop(self._id, None)


def _walk(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(name, leaf) for a value that is a Tensor or Module, or a container of them."""
    if isinstance(value, (Tensor, Module)):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{prefix}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{prefix}.{index}")


class Module:
    """Base class of layers and models: subclasses assign parts in ``__init__`` and define
    ``forward``.

    Example:
        >>> class Net(Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = Linear(4, 2)
        ...     def forward(self, x):
        ...         return self.fc(x)
        >>> [name for name, _ in Net().named_parameters()]
        ['fc.weight', 'fc.bias']
    """

    # Set in __init__ with object.__setattr__, past the tracking in __setattr__.
    _tracked: list[str]  # names of the attributes that may hold tensors or modules
    _forward_pre_hooks: OrderedDict[int, Callable]
    _forward_hooks: OrderedDict[int, Callable]
    _short_name: str | None  # the attribute name a parent first assigned this module to
    name: str | None
    training: bool

    def __init__(self, name: str | None = None) -> None:
        set_ = object.__setattr__
        set_(self, "_tracked", [])
        set_(self, "_forward_pre_hooks", OrderedDict())
        set_(self, "_forward_hooks", OrderedDict())
        set_(self, "_short_name", None)
        set_(self, "name", name)
        set_(self, "training", True)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # -- attribute tracking ------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        tracked = self.__dict__.get("_tracked")
        trackable = _trackable(value)
        if tracked is None:
            if isinstance(value, (Tensor, Module)):
                raise AttributeError(f"{type(self).__name__}: cannot assign {name!r} before "
                                     f"Module.__init__() is called; call super().__init__() "
                                     f"first")
        elif trackable:
            if name not in tracked:
                tracked.append(name)
            if isinstance(value, Module) and value._short_name is None:
                object.__setattr__(value, "_short_name", name)
        elif name in tracked:
            tracked.remove(name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        tracked = self.__dict__.get("_tracked")
        if tracked is not None and name in tracked:
            tracked.remove(name)
        object.__delattr__(self, name)

    def _items(self) -> Iterator[tuple[str, Any]]:
        """(name, Tensor or Module) directly owned, in registration order."""
        values = self.__dict__
        for attr in self._tracked:
            yield from _walk(values[attr], attr)

    # -- calling ------------------------------------------------------------------------------
    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        if not self._forward_pre_hooks and not self._forward_hooks:  # the common case
            return self.forward(*inputs, **kwargs)
        for hook in tuple(self._forward_pre_hooks.values()):
            changed = hook(self, inputs)
            if changed is not None:
                inputs = changed if isinstance(changed, tuple) else (changed,)
        outputs = self.forward(*inputs, **kwargs)
        for hook in tuple(self._forward_hooks.values()):
            changed = hook(self, inputs, outputs)
            if changed is not None:
                outputs = changed
        return outputs

    def register_forward_pre_hook(self, hook: Callable) -> HookHandler:
        """``hook(module, inputs)`` runs before ``forward``; a non-None result replaces the
        inputs (a tuple, or one value)."""
        return HookHandler(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook: Callable) -> HookHandler:
        """``hook(module, inputs, outputs)`` runs after ``forward``; a non-None result
        replaces the outputs."""
        return HookHandler(self._forward_hooks, hook)

    # -- traversal ------------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules (those in containers too, named ``layers.0``)."""
        seen: set[int] = set()
        for name, value in self._items():
            if isinstance(value, Module) and id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (named ``prefix``) and every descendant, depth first, each once."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module.named_children()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def _named_tensors(self, prefix: str, recursive: bool,
                       keep: Callable[[Tensor], TypeGuard[_T]]) -> Iterator[tuple[str, _T]]:
        seen: set[int] = set()
        for name, value in self._all_tensors(prefix, recursive):
            if keep(value) and id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def _all_tensors(self, prefix: str, recursive: bool) -> Iterator[tuple[str, Tensor]]:
        """Every (dotted name, tensor) in registration order, duplicates included."""
        for name, value in self._items():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(value, Tensor):
                yield full, value
            elif recursive:
                yield from value._all_tensors(full, True)

    def named_parameters(self, prefix: str | None = None,
                         recursive: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) in registration order."""
        return self._named_tensors(prefix or "", recursive, _is_parameter)

    def parameters(self, recursive: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recursive=recursive):
            yield param

    def named_buffers(self, prefix: str | None = None,
                      recursive: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, Tensor) for tensors that are not Parameters (running statistics...)."""
        return self._named_tensors(prefix or "", recursive, _is_buffer)

    def buffers(self, recursive: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recursive=recursive):
            yield buffer

    def named_tensors(self, prefix: str | None = None,
                      recursive: bool = True) -> Iterator[tuple[str, Tensor]]:
        """Parameters and buffers together, in registration order."""
        return self._named_tensors(prefix or "", recursive, _any_tensor)

    def apply(self, fn: Callable[[Module], Any]) -> None:
        """Call ``fn`` on this module and every descendant (e.g. to re-initialise)."""
        for module in self.modules():
            fn(module)

    # -- modes and gradients -------------------------------------------------------------------
    def train(self, mode: bool = True, recursive: bool = True) -> Module:
        """Training mode (dropout drops, BatchNorm uses batch statistics); returns self."""
        targets = self.modules() if recursive else (self,)
        for module in targets:
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Inference mode, the same as ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zeros (``optimizer.clear_grad()`` drops them)."""
        from plugrad.functional import zeros_like

        for param in self.parameters():
            if param.grad is not None:
                param.grad = zeros_like(param.grad)

    # -- state dicts ----------------------------------------------------------------------------
    def state_dict(self, rst: dict | None = None, prefix: str = "",
                   keep_var: bool = False) -> dict[str, Any]:
        """Every parameter and buffer by dotted name: NumPy copies, or the Tensors themselves
        with ``keep_var=True``; a new OrderedDict, or ``rst`` filled in."""
        out: dict[str, Any] = OrderedDict() if rst is None else rst
        for name, value in self._all_tensors(prefix.rstrip("."), True):
            out[name] = value if keep_var else value.numpy()
        return out

    def load_state_dict(self, state_dict: dict | Callable[[str, Tensor], Any],
                        strict: bool = True) -> None:
        """Copy values into this module's parameters and buffers, in place.

        Args:
            state_dict: a dict from :meth:`state_dict` (arrays or Tensors), or a callable
                ``closure(name, tensor) -> array or None`` (None leaves that tensor alone).
            strict: with True, names the model has but the dict lacks ("missing") and names
                the dict has but the model lacks ("unused") raise KeyError.

        Everything is checked before anything is copied, so a failed load changes nothing.
        Raises ValueError, naming the layer, when a value's shape differs from the model's.
        """
        from plugrad.nn._state import load_into

        load_into(self, state_dict, strict)

    # -- printing -------------------------------------------------------------------------------
    def _module_info_string(self) -> str:
        """The constructor arguments shown in the repr; layers override it."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self.named_children():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        head = f"{type(self).__name__}({self._module_info_string()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def _label(self) -> str:
        """How errors name this layer: its repr, and its attribute name when it has one."""
        info = f"{type(self).__name__}({self._module_info_string()})"
        name = self.name or self._short_name
        return f"{info} '{name}'" if name else info


def _is_parameter(t: Tensor) -> TypeGuard[Parameter]:
    return isinstance(t, Parameter)


def _is_buffer(t: Tensor) -> TypeGuard[Tensor]:
    return not isinstance(t, Parameter)


def _any_tensor(t: Tensor) -> TypeGuard[Tensor]:
    return True

