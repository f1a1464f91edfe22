"""Indexing primitives over an Array API namespace, with NumPy's indexing rules.

The standard indexes with slices, ints, ``None`` and ``...``, and with integer arrays only
when every axis gets an integer index. ``getitem`` reduces NumPy's advanced indexing (masks,
integer arrays mixed with slices) to basic indexing plus one ``take`` over the indexed axes
merged into one. Writes (``setitem``, ``index_add``, ``scatter_add``) never modify ``x`` (so
libraries with immutable arrays run them): they find the flat positions an index selects, sort
them, and sum each position's run of values; a backend with a scatter of its own (NumPy's
``add.at``, CuPy's ``scatter_add``) overrides them.
"""
from __future__ import annotations

import math
from typing import Any, Callable

NEEDS = ("take", "take_along_axis", "nonzero", "broadcast_arrays", "arange", "reshape",
         "permute_dims", "where", "argsort", "searchsorted", "cumulative_sum", "logical_or",
         "astype", "int64", "float64", "isdtype", "asarray", "broadcast_to")


def _is_array(item: Any) -> bool:
    return hasattr(item, "shape") and hasattr(item, "dtype")


def kernels(xp: Any) -> dict[str, Callable]:
    def expand(index: tuple, ndim: int) -> list:
        """Masks as integer arrays, ``...`` as slices, and trailing axes as slices."""
        items: list = []
        for item in index:
            if item is True:
                items.append(None)
            elif _is_array(item) and xp.isdtype(item.dtype, "bool"):
                items.extend(xp.nonzero(item))
            else:
                items.append(item)
        consumed = sum(1 for item in items if item is not None and item is not Ellipsis)
        fill = [slice(None)] * (ndim - consumed)
        at = next((i for i, item in enumerate(items) if item is Ellipsis), None)
        if at is None:
            return items + fill
        return items[:at] + fill + items[at + 1:]

    def backwards(y, items: list):
        """``y[items]`` where some slices step backwards (which not every library indexes):
        those axes are sliced whole, then taken in the slice's order."""
        reversed_axes, axis = [], 0
        for i, item in enumerate(items):
            if isinstance(item, slice) and item.step is not None and item.step < 0:
                reversed_axes.append((axis, item))
                items[i] = slice(None)
            if item is None or isinstance(item, slice):
                axis += 1
        y = y[tuple(items)]
        for axis, item in reversed_axes:
            order = xp.arange(*item.indices(y.shape[axis]), dtype=xp.int64)
            y = xp.take(y, order, axis=axis)
        return y

    def getitem(x, *, index):
        if not any(_is_array(item) or item is True for item in index):
            if any(isinstance(item, slice) and item.step is not None and item.step < 0
                   for item in index):
                return backwards(x, expand(index, x.ndim))
            basic = index if any(item is Ellipsis for item in index) else (*index, ...)
            return x[basic]
        items = expand(index, x.ndim)
        advanced = [i for i, item in enumerate(items) if _is_array(item) or isinstance(item, int)]
        basic = tuple(slice(None) if i in advanced else item for i, item in enumerate(items))
        y = x[basic]  # every entry left one axis in y: entry i is axis i
        axes = advanced
        if axes != list(range(axes[0], axes[0] + len(axes))):  # NumPy: apart -> to the front
            rest = [a for a in range(y.ndim) if a not in axes]
            y = xp.permute_dims(y, tuple(axes + rest))
            axes = list(range(len(axes)))
        first, sizes = axes[0], [y.shape[a] for a in axes]
        indices = [xp.asarray(items[i], dtype=xp.int64) for i in advanced]
        indices = xp.broadcast_arrays(*indices) if len(indices) > 1 else indices
        flat: Any = None  # an array once the loop ran (there is at least one index)
        for size, idx in zip(sizes, indices):
            idx = xp.where(idx < 0, idx + size, idx)
            flat = idx if flat is None else flat * size + idx
        lead, trail = y.shape[:first], y.shape[first + len(axes):]
        merged = xp.reshape(y, (*lead, math.prod(sizes), *trail))
        taken = xp.take(merged, xp.reshape(flat, (-1,)), axis=first)
        return xp.reshape(taken, (*lead, *flat.shape, *trail))

    def positions(x, select: Callable) -> Any:
        """Flat positions in ``x`` of the elements ``select`` picks from an array like it."""
        grid = xp.reshape(xp.arange(math.prod(x.shape), dtype=xp.int64), x.shape)
        return select(grid)

    def scatter(x, where_, value, accumulate: bool):
        """``x`` with ``value`` put (or added) at flat positions ``where_``.

        The positions are sorted, and each element of ``x`` finds its run of equal positions
        with ``searchsorted``; a run's sum is a difference of a cumulative sum taken in 64
        bits. Put keeps a run's last value (NumPy's rule for repeated positions).
        """
        if math.prod(where_.shape) == 0:
            return xp.asarray(x, copy=True)
        flat = xp.reshape(x, (-1,))
        positions = xp.reshape(where_, (-1,))
        values = xp.reshape(xp.broadcast_to(value, where_.shape), (-1,))
        order = xp.argsort(positions, stable=True)
        positions, values = xp.take(positions, order), xp.take(values, order)
        targets = xp.arange(flat.shape[0], dtype=xp.int64)
        start = xp.searchsorted(positions, targets, side="left")
        stop = xp.searchsorted(positions, targets, side="right")
        touched = stop > start
        is_bool = xp.isdtype(x.dtype, "bool")
        if not accumulate:
            last = xp.take(values, xp.where(touched, stop - 1, 0))
            return xp.reshape(xp.where(touched, last, flat), x.shape)
        wide = xp.float64 if xp.isdtype(x.dtype, "real floating") else xp.int64
        running = xp.cumulative_sum(xp.astype(values, wide), include_initial=True)
        added = xp.take(running, stop) - xp.take(running, start)
        if is_bool:
            return xp.reshape(xp.logical_or(flat, added > 0), x.shape)
        return xp.reshape(flat + xp.astype(added, x.dtype), x.shape)

    def setitem(x, value, *, index):
        return scatter(x, positions(x, lambda grid: getitem(grid, index=index)), value, False)

    def index_add(x, value, *, index):
        return scatter(x, positions(x, lambda grid: getitem(grid, index=index)), value, True)

    def gather(x, index, *, axis):
        # int64 indices: some libraries (torch) take no other
        return xp.take_along_axis(x, xp.astype(index, xp.int64), axis=axis)

    def scatter_add(x, index, value, *, axis):
        index = xp.astype(index, xp.int64)
        where_ = positions(x, lambda grid: xp.take_along_axis(grid, index, axis=axis))
        return scatter(x, where_, value, True)

    return {"getitem": getitem, "setitem": setitem, "index_add": index_add, "gather": gather,
            "scatter_add": scatter_add}
