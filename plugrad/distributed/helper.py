"""Data-parallel helpers: the gradient all-reduce callback and the parameter broadcast.

Gradients are packed into buckets (one flat tensor per dtype, up to ``BUCKET_BYTES``) so that
LeNet's ten small gradients cost one all-reduce, not ten. Packing and unpacking are ops
(reshape, concat, getitem), so every backend runs them with its own kernels.
"""
from __future__ import annotations

import math
import os
from typing import Any, Iterable, Sequence

from plugrad.core.dispatch import apply
from plugrad.core.tensor import Tensor
from plugrad.distributed.functional import all_reduce_sum, broadcast
from plugrad.distributed.group import WORLD, Group
from plugrad.distributed.mpi import all_gather_objects

__all__ = ["make_allreduce_cb", "AllreduceCallback", "bcast_list_", "BUCKET_BYTES"]

#: A bucket is sent once its gradients reach this many bytes (MegEngine's 10 MiB default).
BUCKET_BYTES = int(os.environ.get("PLUGRAD_ALLREDUCE_BUCKET_BYTES", 10 * 1024 * 1024))


def _pack(tensors: Sequence[Tensor]) -> Tensor:
    """One flat tensor holding ``tensors`` one after another."""
    flats = [apply("reshape", t, shape=(math.prod(t.shape),)) for t in tensors]
    return flats[0] if len(flats) == 1 else apply("concat", *flats, axis=0)


def _unpack(packed: Tensor, shapes: Sequence[tuple[int, ...]]) -> list[Tensor]:
    """The tensors :func:`_pack` joined, back in their shapes."""
    out, start = [], 0
    for shape in shapes:
        stop = start + math.prod(shape)
        part = apply("getitem", packed, index=(slice(start, stop),))
        out.append(apply("reshape", part, shape=shape))
        start = stop
    return out


def _label(t: Tensor, position: int) -> str:
    return repr(t.name) if t.name else f"#{position} (in the order gradients arrived)"


class _DeferredGrad:
    """A gradient whose bucket may not have been all-reduced yet."""

    __slots__ = ("owner", "value")

    def __init__(self, owner: AllreduceCallback):
        self.owner = owner
        self.value: Tensor | None = None

    def get(self) -> Tensor:
        if self.value is None:
            self.owner.flush()
            if self.value is None:  # its bucket was dropped when an earlier all-reduce raised
                raise RuntimeError("make_allreduce_cb: this gradient was never all-reduced: "
                                   "an earlier bucket's all-reduce raised; fix that error and "
                                   "run the backward pass again")
        return self.value


class AllreduceCallback:
    """``GradManager`` callback: gradients all-reduced across ``group``, packed in buckets.

    Buckets fill in the order the backward pass produces gradients (the same on every rank);
    a full bucket is sent at once, the rest when the GradManager asks for the first deferred
    gradient. The first time a bucket layout is seen, the ranks compare their parameters'
    shapes, so a model built differently on one rank fails with the parameter's name instead
    of mixing unrelated numbers.
    """

    def __init__(self, reduce_method: str, group: Group = WORLD, backend: str | None = None):
        if reduce_method not in ("sum", "mean"):
            raise ValueError(f"make_allreduce_cb: reduce_method must be 'sum' or 'mean'; "
                             f"got {reduce_method!r}")
        self.reduce_method = reduce_method
        self.group = group
        self._open: dict[Any, list[tuple[Tensor, Tensor, _DeferredGrad]]] = {}
        self._open_bytes: dict[Any, int] = {}
        self._checked: set[tuple] = set()

    def __call__(self, param: Tensor, grad: Tensor) -> _DeferredGrad:
        deferred = _DeferredGrad(self)
        dtype = grad._dtype
        bucket = self._open.setdefault(dtype, [])
        bucket.append((param, grad, deferred))
        size = self._open_bytes.get(dtype, 0) + grad.size * dtype.itemsize
        if size >= BUCKET_BYTES:
            self._send(self._open.pop(dtype))
            self._open_bytes.pop(dtype, None)
        else:
            self._open_bytes[dtype] = size
        return deferred

    def flush(self) -> None:
        """Send every open bucket (in the order they opened, the same on every rank)."""
        buckets = list(self._open.values())
        self._open.clear()
        self._open_bytes.clear()
        for bucket in buckets:
            self._send(bucket)

    def _send(self, bucket: list[tuple[Tensor, Tensor, _DeferredGrad]]) -> None:
        shapes = [tuple(grad._data.shape) for _, grad, _ in bucket]
        signature = (str(bucket[0][1]._dtype), tuple(shapes))
        if signature not in self._checked:
            self._check_same_on_all_ranks(bucket, signature)
            self._checked.add(signature)
        reduced = all_reduce_sum(_pack([grad for _, grad, _ in bucket]), self.group)
        if self.reduce_method == "mean":
            reduced = reduced / self.group.size
        for (_, _, deferred), part in zip(bucket, _unpack(reduced, shapes)):
            deferred.value = part

    def _check_same_on_all_ranks(self, bucket: list, signature: tuple) -> None:
        """Compare this bucket's layout across ranks; every rank raises the same error."""
        signatures = all_gather_objects(self.group.comm, signature,
                                        "make_allreduce_cb (the check of parameter shapes)")
        if all(s == signature for s in signatures):
            return
        dtypes = {rank: s[0] for rank, s in enumerate(signatures)}
        if len(set(dtypes.values())) > 1:
            raise TypeError(f"make_allreduce_cb: the ranks all-reduce gradients of different "
                            f"dtypes {dtypes}; every rank must build the same model")
        counts = {rank: len(s[1]) for rank, s in enumerate(signatures)}
        for position, (param, _, _) in enumerate(bucket):
            per_rank = {rank: s[1][position] if position < len(s[1]) else None
                        for rank, s in enumerate(signatures)}
            if len(set(per_rank.values())) > 1:
                shown = ", ".join(f"{shape} on rank {rank}" for rank, shape in per_rank.items())
                raise ValueError(f"make_allreduce_cb: parameter {_label(param, position)} has "
                                 f"different shapes across ranks: {shown}; every rank must "
                                 f"build the same model")
        raise ValueError(f"make_allreduce_cb: the ranks all-reduce different numbers of "
                         f"gradients {counts}; every rank must attach the same parameters and "
                         f"use them all in the loss")


def make_allreduce_cb(reduce_method: str, group: Group = WORLD,
                      backend: str | None = None) -> AllreduceCallback:
    """A GradManager callback that all-reduces gradients ("sum" or "mean") across ``group``.

    Example:
        >>> gm = GradManager().attach(model.parameters(),
        ...                           callbacks=[dist.make_allreduce_cb("mean")])
    """
    return AllreduceCallback(reduce_method, group, backend)


def bcast_list_(inps: Iterable[Tensor], group: Group = WORLD) -> None:
    """Overwrite each tensor with rank 0's value (so every rank starts from the same weights).

    Tensors of one dtype travel as one packed broadcast.
    """
    by_dtype: dict[Any, list[Tensor]] = {}
    for position, t in enumerate(inps):
        if not isinstance(t, Tensor):
            raise TypeError(f"bcast_list_: expected Tensors; got {type(t).__name__} at "
                            f"position {position}")
        by_dtype.setdefault(t._dtype, []).append(t)
    for tensors in by_dtype.values():
        received = broadcast(_pack(tensors), group)
        for t, value in zip(tensors, _unpack(received, [tuple(t.shape) for t in tensors])):
            t._set_data(apply("copy", value)._data)
