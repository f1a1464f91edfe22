"""A recorded call as a flat program: kernels over a slot list, run in order.

Replay is this loop and nothing else: no Tensor per op, no dispatch, no tape. The first slots
hold the inputs, constants sit in a template copied per call, state is loaded by steps of the
program when it is reached, and effects (gradients, rebound buffers, host calls) are steps too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from plugrad.core.tensor import Tensor, wrap
from plugrad.jit.recorder import Recorder, Step

__all__ = ["Program"]


@dataclass
class Program:
    """What one input signature of a traced function runs."""

    steps: list[Step]
    inputs: tuple[int, ...]
    outputs: list[tuple[int, Any] | None]
    rebuild: Callable[[list[Any]], Any]
    template: list[Any]
    specs: dict[int, tuple]
    constants: dict[int, Any]
    loads: dict[int, Tensor]

    @classmethod
    def from_recorder(cls, recorder: Recorder, inputs: tuple[int, ...], outputs: list,
                      rebuild: Callable[[list[Any]], Any]) -> Program:
        template: list[Any] = [None] * recorder.count
        for slot, array in recorder.constants.items():
            template[slot] = array
        program = cls(list(recorder.steps), inputs, outputs, rebuild, template,
                      dict(recorder.specs), dict(recorder.constants), dict(recorder.loads))
        program._plan = [(s.fn, s.inputs, s.attrs, s.out) for s in program.steps]
        return program

    @property
    def kernel_calls(self) -> int:
        """How many of the steps are op kernels (the rest load state or apply effects)."""
        return sum(1 for step in self.steps if not step.op.startswith("<"))

    def run(self, tensors: list[Tensor]) -> Any:
        """Replay with ``tensors`` as the inputs; returns the outputs in the traced structure."""
        slots = self.template.copy()
        for slot, tensor in zip(self.inputs, tensors):
            slots[slot] = tensor._data
        for fn, inputs, attrs, out in self._plan:
            slots[out] = fn(*[slots[i] for i in inputs], **attrs)
        return self.rebuild([None if spec is None else wrap(slots[spec[0]], spec[1])
                             for spec in self.outputs])
