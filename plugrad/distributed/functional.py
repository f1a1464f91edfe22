"""Collective functions on tensors, differentiable where MegEngine defines a gradient.

Each call hands the tensor's array to the group's communicator for its device (the device
type's own collectives, or MPI through the host) and, while a GradManager records, puts a
node on the tape whose vjp is the dual collective: all_reduce_sum <-> all_reduce_sum,
all_gather <-> reduce_scatter_sum, broadcast -> a sum to the root. all_reduce_max/min pass no
gradient, as in MegEngine. Every rank of the group must make the same calls in the same order.
``device`` is accepted for MegEngine compatibility: a collective runs on its tensor's device.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from plugrad.core import dispatch
from plugrad.core.dispatch import apply, record
from plugrad.core.registry import OpDef
from plugrad.core.tensor import Tensor, wrap
from plugrad.distributed.group import WORLD, Group, communicator
from plugrad.functional._utils import normalize_axis

__all__ = ["all_reduce_sum", "all_reduce_max", "all_reduce_min", "broadcast", "all_gather",
           "reduce_scatter_sum"]


def _check(op: str, inp: Any, group: Any) -> None:
    if not isinstance(inp, Tensor):
        raise TypeError(f"{op}: expected a Tensor; got {type(inp).__name__}; wrap it with "
                        f"plugrad.tensor(...)")
    if not isinstance(group, Group):
        raise TypeError(f"{op}: group must be a plugrad.distributed.Group (WORLD or one from "
                        f"new_group); got {type(group).__name__}")


def _collective(definition: OpDef, run: Callable[[Any, Any], Any], inp: Tensor, group: Group,
                **attrs: Any) -> Tensor:
    """Run ``run(communicator, array)`` on ``inp`` and record ``definition`` for the tape."""
    device = inp._device
    comm = communicator(group, device)
    out = wrap(run(comm, inp._data), device)
    if dispatch.tracer is not None:  # not a dispatched op: a traced step must still replay it
        dispatch.tracer.record(definition.name, functools.partial(run, comm), (inp,), {},
                               out._data, device)
    if definition.differentiable:
        record(definition, (inp,), dict(attrs, group=group), out)
    return out


def _along_axis_0(inp: Tensor, axis: int, run: Callable[[Tensor], Tensor]) -> Tensor:
    """``run`` on ``inp`` with (the already normalised) ``axis`` moved to the front and back."""
    if axis == 0:
        return run(inp)
    ndim = inp.ndim
    perm = (axis,) + tuple(i for i in range(ndim) if i != axis)
    inverse = tuple(sorted(range(ndim), key=perm.__getitem__))
    return apply("transpose", run(apply("transpose", inp, perm=perm)), perm=inverse)


# -- ops outside the registry: no kernel, their arrays go through a communicator ------------

def _all_reduce_sum_vjp(ctx, g):
    return (all_reduce_sum(g, ctx.attrs["group"]),)


def _broadcast_vjp(ctx, g):
    group = ctx.attrs["group"]
    total = all_reduce_sum(g, group)
    return (total if group.rank == 0 else None,)


def _all_gather_vjp(ctx, g):
    return (reduce_scatter_sum(g, ctx.attrs["group"]),)


def _reduce_scatter_vjp(ctx, g):
    return (all_gather(g, ctx.attrs["group"]),)


# Their vjps read no array of the forward call: the tape keeps none.
_no_arrays = functools.partial(OpDef, primitive=False, keep_inputs=(), keep_out=False)
_ALL_REDUCE_SUM = _no_arrays("all_reduce_sum", vjp=_all_reduce_sum_vjp)
_ALL_REDUCE_MAX = _no_arrays("all_reduce_max", differentiable=False)
_ALL_REDUCE_MIN = _no_arrays("all_reduce_min", differentiable=False)
_BROADCAST = _no_arrays("broadcast", vjp=_broadcast_vjp)
_ALL_GATHER = _no_arrays("all_gather", vjp=_all_gather_vjp)
_REDUCE_SCATTER = _no_arrays("reduce_scatter_sum", vjp=_reduce_scatter_vjp)


def all_reduce_sum(inp: Tensor, group: Group = WORLD, device: Any = None) -> Tensor:
    """The elementwise sum of ``inp`` over the ranks of ``group``, on every rank.

    Example:
        >>> all_reduce_sum(plugrad.tensor([get_rank() + 1.0]))   # 2 ranks
        Tensor([3.], device=xpux:0)
    """
    _check("all_reduce_sum", inp, group)
    return _collective(_ALL_REDUCE_SUM, lambda c, x: c.all_reduce(x, "sum"), inp, group)


def all_reduce_max(inp: Tensor, group: Group = WORLD, device: Any = None) -> Tensor:
    """The elementwise maximum of ``inp`` over the ranks of ``group`` (no gradient)."""
    _check("all_reduce_max", inp, group)
    return _collective(_ALL_REDUCE_MAX, lambda c, x: c.all_reduce(x, "max"), inp, group)


def all_reduce_min(inp: Tensor, group: Group = WORLD, device: Any = None) -> Tensor:
    """The elementwise minimum of ``inp`` over the ranks of ``group`` (no gradient)."""
    _check("all_reduce_min", inp, group)
    return _collective(_ALL_REDUCE_MIN, lambda c, x: c.all_reduce(x, "min"), inp, group)


def broadcast(inp: Tensor, group: Group = WORLD, device: Any = None) -> Tensor:
    """Rank 0's ``inp`` (rank 0 of ``group``) on every rank; its gradient sums to rank 0."""
    _check("broadcast", inp, group)
    return _collective(_BROADCAST, lambda c, x: c.broadcast(x, 0), inp, group)


def all_gather(inp: Tensor, group: Group = WORLD, device: Any = None, axis: int = 0) -> Tensor:
    """Every rank's ``inp`` concatenated along ``axis`` in rank order.

    Example:
        >>> all_gather(plugrad.tensor([[get_rank()]]))            # 2 ranks
        Tensor([[0], [1]], dtype=int32, device=xpux:0)
    """
    _check("all_gather", inp, group)
    axis = normalize_axis("all_gather", axis, inp.ndim)
    return _along_axis_0(inp, axis, lambda x: _collective(
        _ALL_GATHER, lambda c, a: c.all_gather(a), x, group))


def reduce_scatter_sum(inp: Tensor, group: Group = WORLD, device: Any = None,
                       axis: int = 0) -> Tensor:
    """The sum over ranks of ``inp``, cut into ``group.size`` parts along ``axis``; rank r
    keeps part r."""
    _check("reduce_scatter_sum", inp, group)
    axis = normalize_axis("reduce_scatter_sum", axis, inp.ndim)
    size = group.size
    if inp.shape[axis] % size:
        raise ValueError(f"reduce_scatter_sum: axis {axis} of shape {tuple(inp.shape)} does not "
                         f"split evenly over {size} ranks; pad it to a multiple of {size}")
    return _along_axis_0(inp, axis, lambda x: _collective(
        _REDUCE_SCATTER, lambda c, a: c.reduce_scatter(a), x, group))
