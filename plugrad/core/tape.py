"""The autodiff tape: micrograd-shaped nodes and an iterative reverse pass.

Nothing is recorded unless a GradManager is recording *and* an op's input descends from an
attached tensor. A node keeps its parents, the op and the arrays its vjp reads; when the last
recording ends every node is emptied, so memory does not outlive the step.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from plugrad.core.registry import OpDef
    from plugrad.core.tensor import Tensor

__all__ = ["Node", "Leaf", "ArraySpec", "state", "run_backward"]


class _State:
    """Process-wide recording state, read on every op (one attribute lookup when idle)."""

    recording = False
    sessions: list[Any] = []
    live_nodes: list["Node"] = []
    live_leaves: list["Leaf"] = []


state = _State


class Leaf:
    """Marks a tensor attached to recording GradManagers; gradients stop and accumulate here."""

    __slots__ = ("tensor", "managers")

    def __init__(self, tensor: Tensor):
        self.tensor = tensor
        self.managers: list[Any] = []


class ArraySpec:
    """What a node keeps of an input its vjp does not read: the shape and dtype, not the data."""

    __slots__ = ("shape", "dtype")

    def __init__(self, array: Any):
        self.shape = array.shape
        self.dtype = array.dtype

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

    __slots__ = ("op", "parents", "saved", "out_data", "device", "attrs")

    def __init__(self, op: OpDef, parents: tuple, saved: tuple, out_data: Any, device: Any,
                 attrs: dict):
        self.op = op
        self.parents = parents
        self.saved = saved
        self.out_data = out_data
        self.device = device
        self.attrs = attrs

    # The vjp context: fresh constant tensors over the saved arrays.
    @property
    def inputs(self) -> tuple[Tensor, ...]:
        from plugrad.core.tensor import wrap

        return tuple(wrap(data, self.device) for data in self.saved)

    @property
    def out(self) -> Tensor:
        from plugrad.core.tensor import wrap

        return wrap(self.out_data, self.device)

    @property
    def needs(self) -> tuple[bool, ...]:
        """Which inputs want a gradient, so a vjp can skip work (e.g. conv's input grad)."""
        return tuple(parent is not None for parent in self.parents)


def release_all() -> None:
    """Empty every node and leaf once no GradManager records any more."""
    for node in state.live_nodes:
        node.parents = ()
        node.saved = ()
        node.out_data = None
    for leaf in state.live_leaves:
        if leaf.tensor._node is leaf:
            leaf.tensor._node = None
        leaf.managers = []
    state.live_nodes = []
    state.live_leaves = []


def _topological_order(roots: list[Any]) -> list[Any]:
    """Nodes reachable from ``roots``, each after all the nodes that consume it (iterative DFS)."""
    order: list[Any] = []
    visited: set[int] = set()
    for root in roots:
        if id(root) in visited:
            continue
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            if isinstance(node, Node):
                for parent in node.parents:
                    if parent is not None and id(parent) not in visited:
                        stack.append((parent, False))
    order.reverse()
    return order


def run_backward(manager: Any, roots: list[tuple[Any, Tensor]],
                 accumulate: Callable[[Tensor, Tensor], None]) -> None:
    """Propagate ``(node, grad)`` seeds to the leaves ``manager`` attached.

    Each gradient's shape is checked against its input, so a broken vjp fails where it is.
    """
    grads: dict[int, Tensor] = {}
    for node, grad in roots:
        key = id(node)
        grads[key] = grads[key] + grad if key in grads else grad
    for node in _topological_order([node for node, _ in roots]):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        if isinstance(node, Leaf):
            if manager in node.managers:
                accumulate(node.tensor, grad)
            continue
        if not node.parents:  # emptied by an earlier release
            continue
        input_grads = node.op.vjp(node, grad)
        for position, (parent, input_grad) in enumerate(zip(node.parents, input_grads)):
            if parent is None or input_grad is None:
                continue
            expected = node.saved[position].shape
            if tuple(input_grad.shape) != tuple(expected):
                raise RuntimeError(
                    f"{node.op.name}: vjp returned a gradient of shape {tuple(input_grad.shape)} "
                    f"for input {position}, expected {tuple(expected)}")
            key = id(parent)
            grads[key] = grads[key] + input_grad if key in grads else input_grad
