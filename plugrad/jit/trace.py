"""``plugrad.jit.trace``: MegEngine's decorator that records a function once and replays it.

The first call with a given input signature (shapes, dtypes, devices of the Tensor arguments,
values of the others) runs eagerly while every kernel is recorded; later calls replay the
recorded kernels. A whole training step can be traced: the forward ops, the vjp ops that
``gm.backward`` runs and the optimizer's update are all recorded.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable

from plugrad.core import dispatch
from plugrad.core.tensor import Tensor
from plugrad.jit.program import Program
from plugrad.jit.recorder import Recorder, StaleTrace, TraceError
from plugrad.jit.state import find_state

__all__ = ["trace"]

#: Dispatch has one recorder slot: one thread records at a time (the others run eagerly).
_recording = threading.Lock()


class trace:
    """Wrap a function that takes and returns Tensors so that later calls replay its kernels.

    Args:
        function: the function to trace (or use ``@trace(symbolic=True)``).
        symbolic: reading a traced tensor's value on the host inside the function (``.numpy()``,
            ``.item()``, ``bool()``) raises :class:`TraceError`. Without it such reads are
            allowed, and a replay that computes a different value raises instead.
        capture_as_const: parameters and buffers become constants of the graph that
            :meth:`dump` writes (read when dumping).

    Example:
        >>> @trace(symbolic=True)
        ... def train_step(x, y):
        ...     with gm:
        ...         loss = F.nn.cross_entropy(model(x), y)
        ...         gm.backward(loss)
        ...         opt.step().clear_grad()
        ...     return loss

    Values the function reads on the host, arguments that are not Tensors, and tensors it
    creates from Python data are constants of the trace; a different non-Tensor argument
    traces again.
    """

    def __new__(cls, function: Callable | None = None, **options: Any):
        if function is None:
            return functools.partial(cls, **options)
        return super().__new__(cls)

    def __init__(self, function: Callable, *, symbolic: bool = False,
                 capture_as_const: bool = False) -> None:
        if not callable(function):
            raise TypeError(f"trace: expected a function to trace; got "
                            f"{type(function).__name__}")
        self.__wrapped__ = function
        self.symbolic = bool(symbolic)
        self.capture_as_const = bool(capture_as_const)
        self._programs: dict[tuple, Program] = {}
        self._last: Program | None = None
        functools.update_wrapper(self, function)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """As a method decorator: one trace per instance, so each replays its own state."""
        if instance is None:
            return self
        traces = instance.__dict__.setdefault("_plugrad_traces", {})
        bound = traces.get(id(self))
        if bound is None:
            bound = traces[id(self)] = trace(self.__wrapped__.__get__(instance, owner),
                                             symbolic=self.symbolic,
                                             capture_as_const=self.capture_as_const)
        return bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        active = dispatch.tracer
        if active is not None and active.thread == threading.get_ident():
            return self.__wrapped__(*args, **kwargs)  # inside another trace: it records our ops
        key = _signature(args, kwargs)
        program = self._programs.get(key)
        if program is not None:
            try:
                return program.run(_tensor_args(args, kwargs))
            except StaleTrace:  # recorded with hyper-parameters since changed: record again
                del self._programs[key]
        if not _recording.acquire(blocking=False):  # another thread records: run eagerly
            return self.__wrapped__(*args, **kwargs)
        try:
            return self._record(key, args, kwargs)
        finally:
            _recording.release()

    @property
    def programs(self) -> dict[tuple, Program]:
        """The recorded programs, one per input signature."""
        return self._programs

    def _record(self, key: tuple, args: tuple, kwargs: dict) -> Any:
        inputs = _tensor_args(args, kwargs)
        others = [a for a in (*args, *kwargs.values()) if not isinstance(a, Tensor)]
        state = find_state(self.__wrapped__, others)
        for tensor in inputs:
            state.pop(id(tensor), None)
        recorder = Recorder(state, symbolic=self.symbolic)
        input_slots = tuple(recorder.add_input(t) for t in inputs)
        before = set(state)
        dispatch.tracer = recorder
        try:
            out = self.__wrapped__(*args, **kwargs)
            recorder.sync()
            outputs, rebuild = _flatten_outputs(out, recorder)
        finally:
            dispatch.tracer = None
        # State the call created (an optimizer's first-step buffers) was recorded as made from
        # scratch; the next call, which finds it, is recorded instead.
        created = set(find_state(self.__wrapped__, others)) - before - {id(t) for t in inputs}
        if not created - set(recorder.state):
            program = Program.from_recorder(recorder, input_slots, outputs, rebuild)
            self._programs[key] = self._last = program
        return out

    def dump(self, file: Any, *, arg_names: list[str] | None = None,
             output_names: list[str] | None = None, opset: int = 17, **unsupported: Any) -> None:
        """Write the traced function as an ONNX model (needs ``pip install "plugrad[onnx]"``).

        Args:
            file: a path or a binary file object.
            arg_names: names of the graph inputs, one per Tensor argument (``arg_0``... by
                default).
            output_names: names of the graph outputs (``output_0``... by default).
            opset: the ONNX opset (17 or later).
        """
        if unsupported:
            raise TypeError(f"trace.dump: options {sorted(unsupported)} are MegEngine's graph "
                            f"options and do not apply to ONNX; supported: arg_names, "
                            f"output_names, opset")
        if not self.capture_as_const:
            raise ValueError("trace.dump: the function must be traced with "
                             "capture_as_const=True, so its parameters become constants of the "
                             "model; use @trace(capture_as_const=True)")
        if self._last is None:
            raise ValueError("trace.dump: the function has not been traced yet; call it once "
                             "with example inputs before dumping")
        from plugrad.jit.onnx_export import to_onnx

        model = to_onnx(self._last, arg_names, output_names, opset,
                        getattr(self, "__name__", "traced"))  # from update_wrapper
        data = model.SerializeToString()
        if hasattr(file, "write"):
            file.write(data)
        else:
            with open(file, "wb") as handle:
                handle.write(data)


def _signature(args: tuple, kwargs: dict) -> tuple:
    return tuple(_key(a) for a in args) + tuple((k, _key(v)) for k, v in sorted(kwargs.items()))


def _key(value: Any) -> Any:
    if isinstance(value, Tensor):
        data = value._data
        return ("tensor", data.shape, data.dtype.str, value._device.physical)
    try:
        hash(value)
    except TypeError:
        return ("object", id(value))
    return ("value", type(value), value)


def _tensor_args(args: tuple, kwargs: dict) -> list[Tensor]:
    return [a for a in (*args, *(kwargs[k] for k in sorted(kwargs))) if isinstance(a, Tensor)]


def _flatten_outputs(out: Any, recorder: Recorder) -> tuple[list, Callable[[list], Any]]:
    """The outputs' (slot, device) and a function that rebuilds ``out``'s structure."""
    if isinstance(out, Tensor):
        return [(recorder.slot(out), out._device)], lambda values: values[0]
    if isinstance(out, (tuple, list)):
        specs = [(recorder.slot(o), o._device) if isinstance(o, Tensor) else None for o in out]
        kind, constants = type(out), list(out)

        def rebuild(values: list) -> Any:
            return kind(v if s is not None else c for v, s, c in zip(values, specs, constants))
        return specs, rebuild
    if isinstance(out, dict):
        keys = list(out)
        specs, rebuild_values = _flatten_outputs([out[k] for k in keys], recorder)
        return specs, lambda values: dict(zip(keys, rebuild_values(values)))
    if out is None or isinstance(out, (int, float, str, bool)):
        return [], lambda values: out
    raise TraceError(f"trace: the traced function returned a {type(out).__name__}; expected "
                     f"Tensors (alone, or in a tuple, list or dict) or None")
