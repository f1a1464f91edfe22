"""GradManager: MegEngine's interface to the tape (attach, record, backward, release)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

from plugrad.core import tape
from plugrad.core.dispatch import create
from plugrad.core.tape import Leaf, state
from plugrad.core.tensor import Tensor, wrap

__all__ = ["GradManager"]

GradCallback = Callable[[Tensor, Tensor], Tensor]


class GradManager:
    """Computes gradients of attached tensors for the ops recorded while it is recording.

    Example:
        >>> w = Parameter(3.0)
        >>> gm = GradManager().attach([w])
        >>> with gm:
        ...     gm.backward(w * 2.0)
        >>> w.grad
        Tensor(2.0, device=xpux:0)

    Gradients accumulate into ``.grad`` until they are cleared: ``optimizer.step().clear_grad()``,
    or ``param.grad = None`` after a hand-written update (docs/coming-from.md). ``backward`` ends
    the recording, as in MegEngine.
    """

    def __init__(self) -> None:
        self._attached: dict[int, tuple[Tensor, list[GradCallback]]] = {}
        self._recording = False
        self._deferred: list[tuple[Tensor, Any]] = []

    # -- attach ----------------------------------------------------------------------------
    def attach(self, tensors: Tensor | Iterable[Tensor],
               callbacks: GradCallback | Sequence[GradCallback] | None = None) -> GradManager:
        """Track ``tensors``; ``callbacks(tensor, grad) -> grad`` run before accumulation.

        A callback may return, instead of a Tensor, an object whose ``get()`` returns it once
        every gradient of the pass has been seen (how ``make_allreduce_cb`` packs buckets).
        """
        if isinstance(tensors, Tensor):
            tensors = [tensors]
        elif not isinstance(tensors, Iterable):
            hint = "; pass module.parameters()" if hasattr(tensors, "parameters") else ""
            raise TypeError(f"GradManager.attach: expected a Tensor or an iterable of Tensors, "
                            f"got {type(tensors).__name__}{hint}")
        if callbacks is None:
            callbacks = []
        elif callable(callbacks):
            callbacks = [callbacks]
        for position, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"GradManager.attach: expected Tensors, got "
                                f"{type(t).__name__} at position {position}")
            if t._dtype.kind != "f":
                raise TypeError(f"GradManager.attach: only floating-point tensors can have "
                                f"gradients; got a {t._dtype} tensor of shape {t.shape} at "
                                f"position {position}; cast it with astype('float32')")
            entry = self._attached.get(id(t))
            if entry is None:
                self._attached[id(t)] = (t, list(callbacks))
            else:
                entry[1].extend(callbacks)
            if self._recording:
                self._mark(t)
        return self

    def attached_tensors(self) -> list[Tensor]:
        return [t for t, _ in self._attached.values()]

    def _mark(self, t: Tensor) -> None:
        leaf = t._node
        if not isinstance(leaf, Leaf):
            leaf = Leaf(t)
            t._node = leaf
            state.live_leaves.append(leaf)
        if self not in leaf.managers:
            leaf.managers.append(self)

    # -- recording -------------------------------------------------------------------------
    def record(self) -> None:
        """Start recording ops on attached tensors."""
        if self._recording:
            raise RuntimeError("GradManager.record: this GradManager is already recording")
        self._recording = True
        state.sessions.append(self)
        state.recording = True
        mark = self._mark
        for t, _ in self._attached.values():
            mark(t)

    def release(self) -> None:
        """Stop recording; once nothing records, the tape's memory is returned."""
        if not self._recording:
            return
        self._recording = False
        state.sessions.remove(self)
        for t, _ in self._attached.values():
            leaf = t._node
            if isinstance(leaf, Leaf) and self in leaf.managers:
                leaf.managers.remove(self)
        if not state.sessions:
            state.recording = False
            tape.release_all()

    def __enter__(self) -> GradManager:
        self.record()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    # -- backward --------------------------------------------------------------------------
    def backward(self, y: Tensor | Sequence[Tensor] | None = None,
                 dy: Tensor | Sequence[Tensor] | None = None) -> None:
        """Accumulate d(y)/d(attached) into each attached tensor's ``.grad``, then release.

        Args:
            y: the tensor(s) to differentiate, usually the loss.
            dy: the gradient(s) of some scalar with respect to ``y``; ones by default.
        """
        if not self._recording:
            raise RuntimeError("GradManager.backward: no recording in progress; call backward "
                               "inside 'with gm:' or after gm.record()")
        if y is None:
            raise ValueError("GradManager.backward: y is required (the tensor to differentiate)")
        ys = [y] if isinstance(y, Tensor) else list(y)
        if dy is None:
            dys = [None] * len(ys)
        elif isinstance(dy, (Tensor, np.ndarray, int, float)):
            dys = [dy]
        else:
            dys = list(dy)
        if len(dys) != len(ys):
            raise ValueError(f"GradManager.backward: got {len(ys)} tensors but {len(dys)} "
                             f"gradients")
        try:
            roots = []
            for position, (out, grad) in enumerate(zip(ys, dys)):
                if grad is None:
                    grad = create("full", out._device, shape=out._data.shape, value=1,
                                  dtype=out._dtype)
                elif not isinstance(grad, Tensor):
                    grad = Tensor(grad, dtype=out._dtype, device=out._device)
                if tuple(grad.shape) != tuple(out.shape):
                    raise ValueError(f"GradManager.backward: dy[{position}] has shape "
                                     f"{tuple(grad.shape)} but y[{position}] has shape "
                                     f"{tuple(out.shape)}")
                if out._node is not None:
                    roots.append((out._node, grad))
            if not roots:
                raise ValueError(
                    "GradManager.backward: y was not computed from any tensor this GradManager "
                    "attached while it recorded, so every gradient would be missing; compute y "
                    "inside 'with gm:' from attached tensors. (A gradient made by another "
                    "GradManager's backward is not recorded: second-order gradients through "
                    "nested GradManagers are not supported.)")
            state.recording = False
            # Alone, this manager's release empties the tape right after: free it as it goes.
            alone = len(state.sessions) == 1
            self._deferred = []
            tape.run_backward(self, roots, self._accumulate, free=alone)
            # Gradients a callback deferred (an all-reduce in flight) are complete only now.
            for t, deferred in self._deferred:
                self._add_grad(t, deferred.get())
        finally:
            self._deferred = []
            state.recording = bool(state.sessions)
            self.release()

    def _accumulate(self, t: Tensor, grad: Tensor) -> None:
        for callback in self._attached[id(t)][1]:
            grad = callback(t, grad)
        if not isinstance(grad, Tensor):  # a deferred gradient: ``.get()`` after the pass
            self._deferred.append((t, grad))
            return
        self._add_grad(t, grad)

    def _add_grad(self, t: Tensor, grad: Tensor) -> None:
        grad = wrap(grad._data, grad._device)  # a grad of its own, never shared between tensors
        t.grad = grad if t.grad is None else t.grad + grad
