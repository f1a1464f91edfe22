"""A recorded call as a flat program: kernels over a slot list, run in order.

Replay is this loop and nothing else: no Tensor per op, no dispatch, no tape. The first slots
hold the inputs, constants sit in a template copied per call, state is loaded by steps of the
program when it is reached, and effects (gradients, rebound buffers) are steps too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Callable

import numpy as np

from plugrad.core.dispatch import surfaced
from plugrad.core.tensor import Tensor, wrap
from plugrad.jit.recorder import EXPECT, Recorder, Step

__all__ = ["Program"]


@dataclass
class Program:
    """What one input signature of a traced function runs.

    ``plan`` is the flat list the replay runs: ``(kernel, gather, attrs, output slot)``, where
    ``gather(slots)`` picks the kernel's input arrays.
    """

    steps: list[Step]
    inputs: tuple[int, ...]
    outputs: list[tuple[int, Any] | None]
    rebuild: Callable[[list[Any]], Any]
    template: list[Any]
    specs: dict[int, tuple]
    constants: dict[int, Any]
    loads: dict[int, Tensor]
    constant_devices: dict[int, Any]
    plan: list[tuple] = field(default_factory=list)

    @classmethod
    def from_recorder(cls, recorder: Recorder, inputs: tuple[int, ...], outputs: list,
                      rebuild: Callable[[list[Any]], Any]) -> Program:
        template: list[Any] = [None] * recorder.count
        for slot, array in recorder.constants.items():
            template[slot] = array
        kept = set(inputs) | {spec[0] for spec in outputs if spec is not None}
        # Checks of recorded values first: a stale program stops before it changes any state.
        ordered = sorted(recorder.steps, key=lambda step: step.op != EXPECT)
        steps = _with_frees(ordered, recorder.specs, kept | set(recorder.constants))
        program = cls(steps, inputs, outputs, rebuild, template,
                      dict(recorder.specs), dict(recorder.constants), dict(recorder.loads),
                      dict(recorder.constant_devices))
        program.plan = [(s.fn, _getter(s.inputs), s.attrs, s.out) for s in program.steps]
        return program

    def host_value(self, slot: int) -> np.ndarray:
        """A NumPy copy of a loaded state tensor's current value or of a constant."""
        owner = self.loads.get(slot)
        if owner is not None:
            return np.asarray(owner._device.type.to_host(owner._data))
        return np.asarray(self.constant_devices[slot].type.to_host(self.constants[slot]))

    @property
    def kernel_calls(self) -> int:
        """How many of the steps are op kernels (the rest load state or apply effects)."""
        return sum(1 for step in self.steps if not step.op.startswith("<"))

    def run(self, tensors: list[Tensor]) -> Any:
        """Replay with ``tensors`` as the inputs; returns the outputs in the traced structure."""
        slots = self.template.copy()
        for slot, tensor in zip(self.inputs, tensors):
            slots[slot] = tensor._data
        try:
            for fn, gather, attrs, out in self.plan:
                slots[out] = fn(*gather(slots), **attrs)
        except Exception as exc:
            # The loop's names still hold the failing entry (found afterwards: the loop stays
            # as lean as it was); the plan has one entry per step, in order.
            position = next(i for i, entry in enumerate(self.plan)
                            if entry[0] is fn and entry[3] == out)
            step = self.steps[position]
            if step.op.startswith("<"):  # a check or an effect: its error says what it means
                raise
            raise _replay_failed(step, [self.specs[slot] for slot in step.inputs], exc) \
                from exc
        return self.rebuild([None if spec is None else wrap(slots[spec[0]], spec[1])
                             for spec in self.outputs])


def _replay_failed(step: Step, specs: list[tuple], exc: Exception) -> Exception:
    """A kernel's failure in a replay, as eager dispatch reports it: the op, the layer it was
    traced in, and the shapes and dtypes of its inputs."""
    described = ", ".join(f"{shape} {np.dtype(dtype)}" for shape, dtype in specs)
    where = f" (traced in {step.origin})" if step.origin else ""
    advice = "; use a smaller batch or tensor" if isinstance(exc, MemoryError) else ""
    return surfaced(exc)(
        f"{step.op}: its kernel failed in a replay of a traced function{where}, on inputs "
        f"[{described}]: {type(exc).__name__}: {exc}{advice}")


#: Arrays at least this large are dropped from the slots after their last use, as eager's
#: backward frees activations; smaller ones live until the replay returns (a step costs more).
FREE_BYTES = 1 << 18


def _free() -> None:
    return None


def _with_frees(steps: list[Step], specs: dict[int, tuple], kept: set[int]) -> list[Step]:
    """``steps`` with a step that empties each large slot after the last step reading it."""
    last: dict[int, int] = {}
    for position, step in enumerate(steps):
        for slot in step.inputs:
            last[slot] = position
    after: dict[int, list[int]] = {}
    for slot, position in last.items():
        shape, dtype = specs[slot]
        if slot not in kept and math.prod(shape) * np.dtype(dtype).itemsize >= FREE_BYTES:
            after.setdefault(position, []).append(slot)
    out = []
    for position, step in enumerate(steps):
        out.append(step)
        out.extend(Step(_free, (), {}, slot, "<free>") for slot in after.get(position, ()))
    return out


def _getter(inputs: tuple[int, ...]) -> Callable[[list[Any]], Any]:
    """The inputs of a step as a sequence, by one C call (a comprehension costs a frame)."""
    if len(inputs) > 1:
        return itemgetter(*inputs)
    return itemgetter(slice(inputs[0], inputs[0] + 1) if inputs else slice(0, 0))
