"""Recording a traced function's first call: every kernel it ran, over numbered slots.

Dispatch hands each op call to :meth:`Recorder.record` while a trace records. Each array gets a
slot: the function's inputs, an op's output, a *load* of a state tensor (a parameter, a buffer,
optimizer state: read when the replay runs, because it changes between calls) or a constant
captured now. What the call does to state outside ops (a gradient assigned, a buffer rebound, a
parameter an update op wrote) becomes a step of the program too, so replay has the same effects.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from operator import itemgetter
from types import FrameType
from typing import Any, Callable

import numpy as np

from plugrad.core.registry import OPS
from plugrad.core.tensor import Parameter, Tensor, wrap

__all__ = ["Recorder", "Step", "TraceError", "StaleTrace"]


class TraceError(RuntimeError):
    """A traced function did something a replay cannot reproduce."""


class StaleTrace(Exception):
    """A value the program was recorded with has changed: the function must be traced again."""


EXPECT = "<expect>"  # the op of the steps that check such values, which replays run first


@dataclass
class Step:
    """One call of the program: ``slots[out] = fn(*slots[inputs], **attrs)``.

    ``op`` names the op (or the effect, in angle brackets) and ``origin`` the layer that ran it,
    for error messages and the ONNX export.
    """

    fn: Callable
    inputs: tuple[int, ...]
    attrs: dict
    out: int
    op: str
    origin: str = ""


@dataclass
class _Synced:
    """What a state tensor's data and gradient are, as far as the program has written them."""

    data: int | None
    grad: Any


SCRATCH = 0  # the slot effects write their (None) result into


@dataclass
class Recorder:
    """Collects the program of one traced call. ``symbolic`` forbids host reads of traced data."""

    state: dict[int, Tensor]
    symbolic: bool = False
    steps: list[Step] = field(default_factory=list)
    constants: dict[int, Any] = field(default_factory=dict)
    constant_devices: dict[int, Any] = field(default_factory=dict)
    loads: dict[int, Tensor] = field(default_factory=dict)
    specs: dict[int, tuple[tuple[int, ...], np.dtype]] = field(default_factory=dict)
    slot_of: dict[int, int] = field(default_factory=dict)
    paused: bool = False

    def __post_init__(self) -> None:
        self.thread = threading.get_ident()
        self._seed_source: Any = None
        self.count = SCRATCH + 1
        self._alive: list[Any] = []  # every array seen stays alive, so ids stay unique
        self._owner: dict[int, Tensor] = {}
        self._synced: dict[int, _Synced] = {}
        self._index_state()

    # -- slots ---------------------------------------------------------------------------------
    def _new_slot(self, array: Any) -> int:
        slot = self.count
        self.count += 1
        self.slot_of[id(array)] = slot
        self._alive.append(array)
        self.specs[slot] = (tuple(array.shape), array.dtype)
        return slot

    def add_input(self, tensor: Tensor) -> int:
        return self._new_slot(tensor._data)

    def _index_state(self) -> None:
        """Which state tensor holds which array now (after an effect, arrays may have moved)."""
        self._owner = {id(t._data): t for t in self.state.values()}
        for t in self.state.values():
            self._synced.setdefault(id(t), _Synced(None, t.grad))

    def slot(self, tensor: Tensor) -> int:
        """The slot of ``tensor``'s array: recorded, loaded from its owner, or a constant."""
        array = tensor._data
        found = self.slot_of.get(id(array))
        if found is not None:
            return found
        owner = self._owner.get(id(array))
        if owner is None and isinstance(tensor, Parameter):  # a parameter no root led to
            owner = self.state[id(tensor)] = tensor
            self._index_state()
        slot = self._new_slot(array)
        if owner is None:
            self.constants[slot] = array
            self.constant_devices[slot] = tensor._device
        else:
            self.loads[slot] = owner
            self.steps.append(Step(_loader(owner), (), {}, slot, "<load>"))
            self._synced[id(owner)].data = slot
        return slot

    # -- what dispatch reports -----------------------------------------------------------------
    def record(self, op: str, kernel: Callable, inputs: tuple[Tensor, ...], attrs: dict,
               out: Any, device: Any) -> None:
        """One kernel call of the traced function (dispatch calls this after the kernel ran)."""
        if self.paused or threading.get_ident() != self.thread:
            return
        slots = tuple([self.slot(t) for t in inputs])
        index = attrs.get("index")
        if index is not None:  # index arrays computed in the trace become inputs of the step
            positions, traced = self._traced_index_arrays(index)
            if positions:
                kernel = _reindexed(kernel, len(inputs), positions)
                slots += traced
        scope = device.type.device_scope
        if not inputs and scope is not None:  # creation ops run in their device's scope
            kernel = _scoped(kernel, scope, device.index)
        if "seed" in attrs:  # a random op draws a new seed per call, as eager does
            kernel = _reseeded(kernel, self._seed_source)
            self._seed_source = None
        if _folds(op, attrs, out) and all(slot in self.constants for slot in slots):
            # Constants in, a constant out (a loss's seed and the scale of its mean): computed
            # once, now, as a replay would compute it every time.
            slot = self._new_slot(out)
            self.constants[slot] = out
            self.constant_devices[slot] = device
            return
        origin = _origin()
        if not isinstance(out, (tuple, list)):
            self.steps.append(Step(kernel, slots, attrs, self._new_slot(out), op, origin))
            return
        # Several outputs (an optimizer's update op): the tuple in a slot of its own, then
        # one step per array, so each output has its slot as any op output does. An array the
        # kernel wrote in place is already in its input's slot, where its owner loaded it from:
        # it needs no step, nor a step giving it back to its owner.
        results = self.count
        self.count += 1
        self.specs[results] = ((), np.dtype(object))
        self.steps.append(Step(kernel, slots, attrs, results, op, origin))
        written = {id(t._data) for t in inputs}
        for position, array in enumerate(out):
            if id(array) not in written:
                self.steps.append(Step(itemgetter(position), (results,), {},
                                       self._new_slot(array), "<output>"))

    def _traced_index_arrays(self, index: tuple) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Positions and slots of the index arrays a replay must take from its slots (an
        embedding's indices are the function's input), not from this call."""
        positions, slots = [], []
        for position, item in enumerate(index):
            slot = self.slot_of.get(id(item)) if hasattr(item, "shape") else None
            if slot is not None and slot not in self.constants:
                positions.append(position)
                slots.append(slot)
        return tuple(positions), tuple(slots)

    def seeded_by(self, generator: Any) -> None:
        """The next random op's seed comes from ``generator`` (a ``plugrad.random.RNG``)."""
        if not self.paused and threading.get_ident() == self.thread:
            self._seed_source = generator

    def refuse(self, why: str) -> None:
        """Something the traced function does cannot be replayed."""
        if not self.paused and threading.get_ident() == self.thread:
            raise TraceError(f"trace: {_origin() or 'the traced function'}: {why}")

    def read(self, tensor: Tensor) -> None:
        """The traced function reads ``tensor``'s value on the host (``.numpy()``, ``bool``...)."""
        if self.paused or threading.get_ident() != self.thread:
            return
        array = tensor._data
        slot = self.slot_of.get(id(array))
        if slot is None and id(array) not in self._owner:
            return  # a constant: the same every call
        if slot is not None and slot in self.constants:
            return
        where = _origin() or "the traced function"
        if self.symbolic:
            raise TraceError(
                f"trace(symbolic=True): {where} reads the value of a traced tensor of shape "
                f"{tuple(array.shape)} on the host (.numpy(), .item(), bool(), print...); a "
                f"symbolic trace has no values while it runs, so Python control flow cannot "
                f"depend on them. Compute the decision with tensor ops (F.where...), read the "
                f"value outside the traced function, or trace with symbolic=False")
        slot = self.slot(tensor)
        expected = np.array(tensor._device.type.to_host(array))
        self.steps.append(Step(_guard(expected, where, tensor._device), (slot,), {}, SCRATCH,
                               "<read>"))

    def guard(self, tensor: Tensor, check: Callable[[Any], None]) -> None:
        """``check(array)`` of ``tensor``'s array runs now and in every replay, at this point of
        the program (an index range: a replay must refuse what eager code refuses)."""
        check(tensor._data)
        if self.paused or threading.get_ident() != self.thread:
            return
        slot = self.slot(tensor)
        if slot not in self.constants:  # a constant passed its check now, for good
            self.steps.append(Step(check, (slot,), {}, SCRATCH, "<check>"))

    def expect(self, read: Callable[[], Any]) -> None:
        """The ops recorded next bake in ``read()`` (an optimizer's learning rate): a replay
        that finds it changed records the function again instead of running stale kernels."""
        if not self.paused and threading.get_ident() == self.thread:
            self.steps.append(Step(_unchanged(read, read()), (), {}, SCRATCH, EXPECT))

    # -- effects on state ----------------------------------------------------------------------
    def sync(self) -> None:
        """Add steps that give every state tensor the data and gradient it has now."""
        for t in list(self.state.values()):
            synced = self._synced[id(t)]
            slot = self.slot_of.get(id(t._data))
            if slot is not None and slot != synced.data and slot not in self.constants:
                self.steps.append(Step(_data_setter(t), (slot,), {}, SCRATCH, "<set data>"))
                synced.data = slot
            grad = t.grad
            if grad is synced.grad:
                continue
            synced.grad = grad
            grad_slot = None if grad is None else self.slot_of.get(id(grad._data))
            if grad is None or grad_slot is None or grad_slot in self.constants:
                self.steps.append(Step(_grad_setter(t, grad), (), {}, SCRATCH, "<set grad>"))
            else:
                self.steps.append(Step(_grad_wrapper(t, grad._device), (grad_slot,), {},
                                       SCRATCH, "<set grad>"))


def _folds(op: str, attrs: dict, out: Any) -> bool:
    """Whether a call of ``op`` on constants is a constant itself: a registered op (not a
    collective, which must communicate every time), not a random draw (a new seed each call),
    and one result (an update op returns its writes, which must happen every time)."""
    return op in OPS and "seed" not in attrs and not isinstance(out, (tuple, list))


# -- the functions steps call ------------------------------------------------------------------
def _loader(owner: Tensor) -> Callable[[], Any]:
    return lambda: owner._data


def _data_setter(owner: Tensor) -> Callable[[Any], None]:
    def set_data(array: Any) -> None:
        owner._data = array
    return set_data


def _unchanged(read: Callable[[], Any], recorded: Any) -> Callable[[], None]:
    def check() -> None:
        if read() != recorded:
            raise StaleTrace
    return check


def _grad_setter(owner: Tensor, grad: Tensor | None) -> Callable[[], None]:
    def set_grad() -> None:
        owner.grad = grad
    return set_grad


def _grad_wrapper(owner: Tensor, device: Any) -> Callable[[Any], None]:
    def set_grad(array: Any) -> None:
        owner.grad = wrap(array, device)
    return set_grad


def _scoped(kernel: Callable, scope: Callable, index: int) -> Callable:
    def run(*arrays: Any, **attrs: Any) -> Any:
        with scope(index):
            return kernel(*arrays, **attrs)
    return run


def _reindexed(kernel: Callable, arity: int, positions: tuple[int, ...]) -> Callable:
    """``kernel`` taking the traced index arrays as extra inputs, put back into ``index``."""
    def run(*arrays: Any, index: tuple, **attrs: Any) -> Any:
        items = list(index)
        for position, array in zip(positions, arrays[arity:]):
            items[position] = array
        return kernel(*arrays[:arity], index=tuple(items), **attrs)
    return run


def _reseeded(kernel: Callable, generator: Any) -> Callable:
    if generator is None:
        raise TraceError("trace: a random op's seed did not come from a plugrad.random "
                         "generator, so a replay could not draw a new one")

    def run(*arrays: Any, seed: int, **attrs: Any) -> Any:
        return kernel(*arrays, seed=generator._next_seed(), **attrs)
    return run


def _guard(expected: np.ndarray, where: str, device: Any) -> Callable[[Any], None]:
    to_host = device.type.to_host

    def check(array: Any) -> None:
        value = np.asarray(to_host(array))
        if value.shape != expected.shape or not np.array_equal(value, expected, equal_nan=True):
            raise TraceError(
                f"trace: {where} read a tensor's value on the host when the function was "
                f"traced ({_brief(expected)}), and this call computed {_brief(value)}; Python "
                f"control flow that depends on tensor values is not replayed. Compute the "
                f"decision with tensor ops (F.where...), or read the value outside the traced "
                f"function")
    return check


def _brief(value: np.ndarray) -> str:
    return repr(value.item()) if value.size == 1 else f"an array of shape {value.shape}"


def _origin() -> str:
    """The innermost Module whose forward is running, as ``Outer.attr (Type)``, or ''."""
    from plugrad.nn.module import Module

    modules: list[Module] = []
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, Module) and frame.f_code.co_name == "forward" \
                and (not modules or modules[-1] is not owner):
            modules.append(owner)
        frame = frame.f_back
    if not modules:
        return ""
    names = [type(modules[-1]).__name__]
    for outer, inner in zip(reversed(modules), list(reversed(modules))[1:]):
        names.append(next((name for name, child in outer.named_modules() if child is inner),
                          "?"))
    return f"{'.'.join(names)} ({type(modules[0]).__name__})"
