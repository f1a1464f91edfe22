"""The autodiff tape: micrograd-shaped nodes and an iterative reverse pass.

Nothing is recorded unless a GradManager is recording *and* an op's input descends from an
attached tensor. A node keeps its parents, the op and the arrays its vjp reads; when the last
recording ends every node is emptied, so memory does not outlive the step.

The recording state is per thread: two threads each training their own model with their own
GradManager never see each other's tape. A GradManager, and the tensors it records, belong to
the thread that records them.

A node also keeps the version (see ``Tensor._version``) of each tensor whose array it saved;
backward refuses a node whose saved array was written in place since, instead of computing a
gradient from changed data.
"""
from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from plugrad.core.registry import OpDef
    from plugrad.core.tensor import Tensor

__all__ = ["Node", "Leaf", "ArraySpec", "state", "run_backward"]


class _State(threading.local):
    """This thread's recording state, read on every op (one attribute lookup when idle)."""

    def __init__(self) -> None:
        self.recording = False
        self.sessions: list[Any] = []
        self.live_nodes: list[Node] = []
        self.live_leaves: list[Leaf] = []


state = _State()


class Leaf:
    """Marks a tensor attached to recording GradManagers; gradients stop and accumulate here."""

    __slots__ = ("tensor", "managers")

    def __init__(self, tensor: Tensor):
        self.tensor = tensor
        self.managers: list[Any] = []


class ArraySpec:
    """What a node keeps of an input its vjp does not read: the shape and (plugrad's) dtype,
    not the data."""

    __slots__ = ("shape", "dtype")

    def __init__(self, tensor: Tensor):
        self.shape = tensor._data.shape
        self.dtype = tensor._dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Node:
    """One recorded op call: what its vjp needs, and where its input gradients go.

    ``saved`` holds an array per input the op's vjp reads and an :class:`ArraySpec` for the
    others; ``out_data`` is None unless the vjp reads the output.
    """

    __slots__ = ("op", "parents", "saved", "out_data", "device", "attrs", "needs", "versions")

    def __init__(self, op: OpDef, parents: tuple, saved: tuple, out_data: Any, device: Any,
                 attrs: dict, needs: tuple[bool, ...] | None = None,
                 versions: tuple = ()):
        self.op = op
        self.parents = parents
        self.saved = saved
        self.out_data = out_data
        self.device = device
        self.attrs = attrs
        #: Which inputs want a gradient, so a vjp can skip work (e.g. conv's input grad).
        self.needs = tuple([parent is not None for parent in parents]) if needs is None \
            else needs
        #: ``(tensor, version)`` for each tensor whose array ``saved`` keeps.
        self.versions = versions

    def check_versions(self) -> None:
        """Raise if an array this node saved was written in place after it was recorded."""
        for tensor, version in self.versions:
            if tensor._version != version:
                raise RuntimeError(
                    f"{self.op.name}: an array this op saved for its gradient was modified in "
                    f"place after the forward pass (a tensor of shape {tuple(tensor.shape)} is "
                    f"at version {tensor._version}, expected {version}); call "
                    f"optimizer.step() after gm.backward(), not between the forward pass and it")

    # The vjp context: fresh constant tensors over the saved arrays.
    @property
    def inputs(self) -> tuple[Tensor, ...]:
        device = self.device
        return tuple([_described(data, device) if data.__class__ is ArraySpec
                      else _wrap(data, device) for data in self.saved])

    @property
    def out(self) -> Tensor:
        return _wrap(self.out_data, self.device)


def _described(spec: ArraySpec, device: Any) -> Tensor:
    """A tensor standing for an input the tape did not keep: its shape and dtype only."""
    return _wrap_spec(spec, device)


def release_all() -> None:
    """Empty every node and leaf once no GradManager records any more."""
    for node in state.live_nodes:
        node.parents = ()
        node.saved = ()
        node.out_data = None
        node.versions = ()
    for leaf in state.live_leaves:
        if leaf.tensor._node is leaf:
            leaf.tensor._node = None
        leaf.managers = []
    state.live_nodes = []
    state.live_leaves = []


def run_backward(manager: Any, roots: list[tuple[Any, Tensor]],
                 accumulate: Callable[[Tensor, Tensor], None], free: bool = False) -> None:
    """Propagate ``(node, grad)`` seeds to the leaves ``manager`` attached.

    The live nodes run in reverse creation order: everything that consumed a node's output was
    created after it, so its gradient is complete when it runs (no graph sort needed); nodes no
    gradient reached are skipped. Leaves come last, in the order gradients reached them. Each
    gradient's shape is checked against its input, so a broken vjp fails where it is.

    ``free`` empties each node once its vjp has run (only when no other recording can still
    need the node): the activations it kept are returned while the backward pass goes on, and
    the pass's new arrays reuse their memory, still in cache.
    """
    grads: dict[int, Tensor] = {}
    leaves: list[Leaf] = []

    def arrive(target: Any, grad: Tensor) -> None:
        key = id(target)
        if key in grads:
            grads[key] = grads[key] + grad
        else:
            grads[key] = grad
            if target.__class__ is Leaf:
                leaves.append(target)

    for node, grad in roots:
        arrive(node, grad)
    for node in reversed(state.live_nodes):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        parents = node.parents
        if not parents:  # emptied by an earlier release
            continue
        if node.versions:
            node.check_versions()
        input_grads = node.op.vjp(node, grad)
        saved = node.saved
        for position, parent in enumerate(parents):
            if parent is None:
                continue
            input_grad = input_grads[position]
            if input_grad is None:
                continue
            expected = saved[position].shape
            if input_grad._data.shape != expected:
                raise RuntimeError(
                    f"{node.op.name}: vjp returned a gradient of shape {tuple(input_grad.shape)} "
                    f"for input {position}, expected {tuple(expected)}")
            arrive(parent, input_grad)
        if free:
            node.parents = ()
            node.saved = ()
            node.out_data = None
            node.versions = ()
    for leaf in leaves:
        grad = grads.pop(id(leaf))
        if manager in leaf.managers:
            accumulate(leaf.tensor, grad)


from plugrad.core.tensor import wrap as _wrap  # noqa: E402  (cycle: tensor -> dispatch -> tape)
from plugrad.core.tensor import wrap_spec as _wrap_spec  # noqa: E402
