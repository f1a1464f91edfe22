"""Sequential: a chain of modules applied in order."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

from plugrad.nn.module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Calls its modules in order, each on the previous one's output.

    Built from modules (named "0", "1", ...) or from one OrderedDict of name -> module. Indexing
    with an int gives a module; with a slice, a new Sequential sharing those modules (and
    their names).

    Example:
        >>> net = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
        >>> net[0], len(net), type(net[1:])
        (Linear(in_features=4, out_features=8, bias=True), 3, <class '...Sequential'>)
    """

    _layer_keys: list[str]  # the layers' attribute names, in order (set past __setattr__)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(**kwargs)
        object.__setattr__(self, "_layer_keys", [])
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            items = list(args[0].items())
        else:
            items = [(str(index), module) for index, module in enumerate(args)]
        for key, module in items:
            self._add(str(key), module)

    def _add(self, key: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: layer {key!r} must be a Module; got "
                            f"{type(module).__name__}")
        if key in self._layer_keys:
            raise ValueError(f"Sequential: duplicate layer name {key!r}")
        setattr(self, key, module)
        self._layer_keys.append(key)

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end, named by the next free integer."""
        index = len(self._layer_keys)
        while str(index) in self._layer_keys:
            index += 1
        self._add(str(index), module)
        return self

    def _key(self, index: int) -> str:
        size = len(self._layer_keys)
        if not -size <= index < size:
            raise IndexError(f"Sequential: index {index} is out of range for {size} layers")
        return self._layer_keys[index]

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            keys = self._layer_keys[index]
            return type(self)(OrderedDict((key, getattr(self, key)) for key in keys))
        return getattr(self, self._key(index))

    def __setitem__(self, index: int, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: layers must be Modules; got {type(module).__name__}")
        setattr(self, self._key(index), module)

    def __delitem__(self, index: int | slice) -> None:
        keys = self._layer_keys[index] if isinstance(index, slice) else [self._key(index)]
        for key in keys:
            delattr(self, key)
            self._layer_keys.remove(key)

    def __len__(self) -> int:
        return len(self._layer_keys)

    def __iter__(self) -> Iterator[Module]:
        return iter([getattr(self, key) for key in self._layer_keys])

    def forward(self, x: Any) -> Any:
        for key in self._layer_keys:
            x = getattr(self, key)(x)
        return x
