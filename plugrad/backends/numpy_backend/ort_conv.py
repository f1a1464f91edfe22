"""Convolutions on onnxruntime's CPU kernels, where onnxruntime is installed (``plugrad[onnx]``).

The numpy backend's own convolutions (``conv.py``) are im2col copies and OpenBLAS GEMMs.
onnxruntime's CPU kernels (MLAS, with AVX-512 where the CPU has it) are faster where measured:

* The float32 forward is MLAS's blocked direct convolution (the NCHWc kernels onnxruntime
  substitutes for ``Conv`` when it optimises a model with constant weights): ``x`` reordered into
  blocks of channels (16 with AVX-512, 8 with AVX2) unless it has fewer than a block, the weight
  into the layout ``_blocked_filter`` writes, the output reordered back. Where that does not
  apply (several groups, input channels neither fewer than a block nor whole blocks) it is ONNX's
  ``Conv`` (im2col and MLAS's GEMM).
* The stride-1 input gradient from 16 input channels is the same forward convolution of ``g`` by
  the flipped, transposed weight. A strided one is ``stride_h * stride_w`` of them, one per phase
  of the input's rows and columns, each by the taps of the kernel that reach it
  (:func:`_strided_grad_input`: SmallVGG's 32->64 stride-2 layer 1.5 -> 1.0 ms against
  ``ConvTranspose``, alone; at stride 1 that was 1.1-1.3x the flipped convolution's time, with
  the strided write). The others (fewer input channels, groups) are ``ConvTranspose``, its
  output padded by the rows and columns the forward's floor dropped.
* The weight gradient from 16 input channels is ``conv.py``'s, with its GEMMs on MLAS
  (:func:`matmul`, in 4 MB column blocks); below that OpenBLAS's GEMMs were as fast. As a
  convolution (the batch as channels, ``g`` as a kernel the size of the output) it took 1.3-3.9x
  as long blocked (LeNet's conv2 alone 0.77x) and 1-5x with ONNX's ``Conv``.

``benchmarks/bench_conv_kernels.py --engines``, two runs, batch 64, 2 threads, medians in ms,
NumPy's kernels -> these (the input gradients of first layers are never needed in training):

layer                  forward                 input gradient            weight gradient
LeNet conv1 1->6 5x5   0.31-0.37 -> 0.16-0.18  (0.34-0.40 -> 0.24-0.26)  0.38-0.42 (NumPy's)
LeNet conv2 6->16 5x5  0.26-0.30 -> 0.12-0.13  0.51-0.53 -> 0.29         0.26-0.33 (NumPy's)
3x3, 3->16 at 32x32    0.64-0.75 -> 0.36-0.39  (0.75-0.80 -> 0.69-0.71)  0.74-0.77 (NumPy's)
3x3, 16->16 at 32x32   2.66-2.80 -> 1.14-1.27  2.75-2.95 -> 1.13-1.27    2.39-2.58 -> 1.83-2.10
3x3, 16->32 at 16x16   1.24-1.37 -> 0.50-0.53  1.30-1.44 -> 0.64-0.68    1.19-1.24 -> 0.85-0.89
3x3, 32->32 at 16x16   2.25-2.51 -> 0.88-0.89  2.42-2.59 -> 0.90-0.91    2.23-2.34 -> 1.47-1.58
3x3, 32->64 stride 2   0.98-1.07 -> 0.51-0.56  1.64-1.71 -> 1.09-1.35    1.08-1.18 -> 0.75-0.83

Each graph (an op and its attributes: a convolution's geometry) gets one ``InferenceSession``,
built on its first call and kept (the last ``MAX_SESSIONS``); its inputs' shapes are left
symbolic, so every batch and image size shares it (a model has a few geometries, not a few per
batch size: SmallVGG's step builds 10, and static shapes measured no faster). This path's
compile time is 0.5-1.2 ms a graph, and about 60 ms for the process's first, which imports onnx
and onnxruntime and reads MLAS's channel block. Sessions use the backend's thread count
(``PLUGRAD_NUM_THREADS``; the weight gradient's GEMMs one thread each, as its batch is split
over those threads already) without spinning threads, so a busy machine costs a wait, not a core
(spinning ones took LeNet's step from 3.4-3.6 to 8.0-8.5 ms). ``PLUGRAD_CONV_ENGINE=numpy``
turns this off; other dtypes and an empty batch run the NumPy kernels. Results match those to
float32 rounding.

Once onnxruntime is imported (1.32 at least), a child made by a bare ``os.fork()`` hangs if it
leaves through Python's normal exit (onnxruntime's exit handlers wait for threads the child
does not have): it must leave with ``os._exit``, as multiprocessing's children (and the
DataLoader's workers) do. A forked child builds sessions of its own.
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os
import threading
from collections import Counter, OrderedDict
from typing import Any, Callable

import numpy as np

from plugrad.backends.numpy_backend import conv
from plugrad.backends.numpy_backend._threads import num_threads
from plugrad.backends.numpy_backend.parallel import split_grad_weight

__all__ = ["ENGINE_VARIABLE", "MIN_CHANNELS", "NCHWC_CONV", "available", "kernels", "matmul",
           "nchwc_block", "sessions_built", "turned_off"]

ENGINE_VARIABLE = "PLUGRAD_CONV_ENGINE"
#: Input channels from which the stride-1 input gradient is the flipped convolution (below, the
#: transposed one measured faster) and the weight gradient's GEMMs run on onnxruntime's (below,
#: OpenBLAS's were as fast or faster).
MIN_CHANNELS = 16
MAX_SESSIONS = 64
#: The weight gradient's column blocks and passes for MLAS's GEMMs: longer products than
#: OpenBLAS's cache-sized blocks (``conv.CPU_BLOCK_BYTES``). On SmallVGG's 3x3 layers, half a
#: batch on one thread: 0.81-0.95x the time with 256 KB blocks in 1 MB passes.
GEMM_BLOCK_BYTES = {"grad_weight": 4 << 20, "pass": 4 << 20}
_F32 = np.dtype(np.float32)
_OPSET = 17
_NCHWC_DOMAIN = "com.microsoft.nchwc"
#: The op name under which sessions of MLAS's blocked convolution (three nodes) are cached.
NCHWC_CONV = "nchwc.Conv"


def turned_off() -> bool:
    """Whether ``PLUGRAD_CONV_ENGINE=numpy`` asks for NumPy's convolutions only."""
    return os.environ.get(ENGINE_VARIABLE, "auto").strip().lower() == "numpy"


def available() -> bool:
    """Whether convolutions run on onnxruntime: installed (with onnx, which builds the graphs)
    and not turned off."""
    return not turned_off() and all(importlib.util.find_spec(name) is not None
                                    for name in ("onnxruntime", "onnx"))


class _Sessions:
    """One InferenceSession per graph, built once, the newest MAX_SESSIONS kept."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.built: Counter[str] = Counter()  # sessions built so far, per op: compile counts

    def run(self, key: tuple, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The output of the session ``key`` (the arguments of :func:`_session`) on ``feeds``."""
        session = self._cache.get(key)
        if session is None:
            session = self._build(key)
        return session.run(None, feeds)[0]

    def _build(self, key: tuple) -> Any:
        with self._lock:
            session = self._cache.get(key)
            if session is None:
                session = _session(*key)
                self._cache[key] = session
                self.built[key[0]] += 1
                while len(self._cache) > MAX_SESSIONS:
                    self._cache.popitem(last=False)
            return session


def _session(op: str, inputs: tuple[tuple[str, int], ...],
             attributes: tuple[tuple[str, Any], ...], threads: int) -> Any:
    """A session of one ``op`` node (or :data:`NCHWC_CONV`'s graph) over float32 ``inputs``
    (name, rank) of any shape, on ``threads``."""
    import onnxruntime
    from onnx import TensorProto, helper

    names = [name for name, _ in inputs]
    if op == NCHWC_CONV:
        nodes = _nchwc_nodes(helper, names, dict(attributes))
    else:
        nodes = [helper.make_node(op, names, ["y"], **dict(attributes))]
    graph = helper.make_graph(
        nodes, op,
        [helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                       [f"{name}{axis}" for axis in range(rank)])
         for name, rank in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET),
                                                    helper.make_opsetid(_NCHWC_DOMAIN, 1)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def _nchwc_nodes(helper: Any, names: list[str], attributes: dict[str, Any]) -> list[Any]:
    """MLAS's blocked convolution of NCHW ``x`` by a :func:`_blocked_filter` weight: ``x``
    reordered into channel blocks (``reorder``; an input of fewer channels than a block is read
    as it is), convolved, and its output's ``channels`` reordered back to NCHW."""
    out_channels = attributes.pop("channels")
    nodes = []
    if attributes.pop("reorder"):
        nodes.append(helper.make_node("ReorderInput", [names[0]], ["xb"], domain=_NCHWC_DOMAIN))
        names = ["xb", *names[1:]]
    nodes.append(helper.make_node("Conv", names, ["yb"], domain=_NCHWC_DOMAIN, **attributes))
    nodes.append(helper.make_node("ReorderOutput", ["yb"], ["y"], domain=_NCHWC_DOMAIN,
                                  channels=out_channels))
    return nodes


@functools.cache
def nchwc_block() -> int:
    """MLAS's NCHWc channel block on this CPU (16 with AVX-512, 8 with AVX2; 0: none), read off
    the channels ``ReorderInput`` pads 4 to."""
    import onnxruntime
    from onnx import TensorProto, helper

    try:
        node = helper.make_node("ReorderInput", ["x"], ["y"], domain=_NCHWC_DOMAIN)
        graph = helper.make_graph(
            [node], "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 1, 1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET),
                                                        helper.make_opsetid(_NCHWC_DOMAIN, 1)])
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4
        session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
        block = session.run(None, {"x": np.zeros((1, 4, 1, 1), _F32)})[0].shape[1]
    except Exception:  # an onnxruntime build without the NCHWc kernels
        return 0
    return block if block >= 4 and block & (block - 1) == 0 else 0


def _blocked_filter(w: np.ndarray, block: int) -> np.ndarray:
    """An OIHW weight in the layout MLAS's blocked convolution reads, its output (and, from a
    block of input channels on, input) channels zero-padded to whole blocks: ``(O/B, I, H, W,
    B)`` for fewer input channels than a block, else ``(O/B, I/B, H, W, B_in, B_out)``, shaped
    ``(O', I', H, W)``."""
    o, c, kh, kw = w.shape
    ob = -(-o // block)
    if c < block:
        padded = np.zeros((ob * block, c, kh, kw), _F32)
        padded[:o] = w
        blocked = padded.reshape(ob, block, c, kh, kw).transpose(0, 2, 3, 4, 1)
        return np.ascontiguousarray(blocked).reshape(ob * block, c, kh, kw)
    cb = -(-c // block)
    padded = np.zeros((ob * block, cb * block, kh, kw), _F32)
    padded[:o, :c] = w
    blocked = padded.reshape(ob, block, cb, block, kh, kw).transpose(0, 2, 4, 5, 3, 1)
    return np.ascontiguousarray(blocked).reshape(ob * block, cb * block, kh, kw)


_sessions = _Sessions()


def _run(op: str, feeds: dict[str, np.ndarray], threads: int | None = None,
         **attributes: Any) -> np.ndarray:
    """``op`` with these ``attributes`` (hashable values) on ``feeds`` (contiguous float32
    arrays), by its session, which takes inputs of any shape; ``threads`` defaults to the
    backend's."""
    key = (op, tuple((name, a.ndim) for name, a in feeds.items()), tuple(attributes.items()),
           num_threads() if threads is None else threads)
    return _sessions.run(key, feeds)


def _conv_attributes(kernel, stride, padding, dilation, groups) -> dict[str, Any]:
    """ONNX Conv / ConvTranspose attributes of a convolution's geometry; ``padding`` is
    ``(h, w)`` on both sides or ONNX's ``(top, left, bottom, right)``."""
    pads = tuple(padding) if len(padding) == 4 else (padding[0], padding[1]) * 2
    return dict(kernel_shape=tuple(kernel), strides=tuple(stride), pads=pads,
                dilations=tuple(dilation), group=groups)


def _blocked(channels: int, groups: int) -> bool:
    """Whether MLAS's blocked convolution takes an input of ``channels``: one group, and fewer
    channels than a block or whole blocks."""
    block = nchwc_block()
    return groups == 1 and block > 0 and (channels < block or channels % block == 0)


def _convolve(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride, padding, dilation,
              groups) -> np.ndarray:
    """The float32 convolution of ``x`` by ``w`` (+ ``b``, ``(O,)``) on onnxruntime: MLAS's
    blocked direct convolution where it applies (:func:`_blocked`), ONNX's ``Conv`` (im2col
    and MLAS's GEMM) otherwise."""
    attributes = _conv_attributes(w.shape[2:], stride, padding, dilation, groups)
    if _blocked(x.shape[1], groups):
        del attributes["group"]
        feeds = {"x": np.ascontiguousarray(x), "w": _blocked_filter(w, nchwc_block())}
        if b is not None:
            feeds["b"] = np.zeros(feeds["w"].shape[0], _F32)
            feeds["b"][:len(b)] = b
        return _run(NCHWC_CONV, feeds, channels=w.shape[0],
                    reorder=x.shape[1] >= nchwc_block(), **attributes)
    feeds = {"x": np.ascontiguousarray(x), "w": np.ascontiguousarray(w)}
    if b is not None:
        feeds["b"] = np.ascontiguousarray(b)
    return _run("Conv", feeds, **attributes)


def _phase(r: int, size: int, k: int, s: int, p: int, d: int, g_size: int) -> tuple | None:
    """One axis of :func:`_strided_grad_input`'s phase ``r``, the input positions ``s*a + r``:
    (the kernel taps reaching them, in the order the correlation over ``g`` reads them; where
    ``g`` starts; the correlation's padding before and after; its dilation; the positions'
    count), or None when no tap reaches them.

    Tap ``i`` reaches ``s*a + r`` from ``g[a + q]`` where ``s*q = r + p - i*d``: the taps with an
    integral ``q``, spaced ``d / gcd(s, d)`` apart in ``g``."""
    taps = sorted(((r + p - i * d) // s, i) for i in range(k) if (r + p - i * d) % s == 0)
    count = -(-(size - r) // s)
    if not taps or count <= 0:
        return None
    first = taps[0][0]
    spacing = d // math.gcd(s, d)
    start, before = (first, 0) if first > 0 else (0, -first)
    after = max(0, count + spacing * (len(taps) - 1) - (g_size - start) - before)
    return [i for _, i in taps], start, before, after, spacing, count


def _strided_grad_input(g: np.ndarray, w: np.ndarray, input_shape: tuple[int, ...], stride,
                        padding, dilation) -> np.ndarray:
    """The input gradient of a strided convolution (one group) as ``stride_h * stride_w``
    stride-1 correlations of ``g``, one per phase of the input's rows and columns, each by the
    kernel taps that reach that phase; each fills its phase's strided slice of the result."""
    gx = np.empty(input_shape, _F32)
    for rh in range(stride[0]):
        rows = _phase(rh, input_shape[2], w.shape[2], stride[0], padding[0], dilation[0],
                      g.shape[2])
        for rw in range(stride[1]):
            cols = _phase(rw, input_shape[3], w.shape[3], stride[1], padding[1], dilation[1],
                          g.shape[3])
            out = gx[:, :, rh::stride[0], rw::stride[1]]
            if rows is None or cols is None:
                out[...] = 0
                continue
            taps = w[:, :, rows[0]][:, :, :, cols[0]].transpose(1, 0, 2, 3)
            y = _convolve(g[:, :, rows[1]:, cols[1]:], taps, None, (1, 1),
                          (rows[2], cols[2], rows[3], cols[3]), (rows[4], cols[4]), 1)
            out[...] = y[:, :, :rows[5], :cols[5]]
    return gx


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul`` on onnxruntime's GEMM (MLAS) for float32, on one thread (the weight
    gradient's batch is split over the backend's threads already).

    ``MatMul`` takes contiguous operands: of ``a`` and ``b``, where one is a transposed view,
    the other is transposed instead (``a @ b = (b^T @ a^T)^T``) when it is the smaller copy."""
    if not _float32(a, b):
        return np.matmul(a, b, out=out)
    at, bt = a.swapaxes(-1, -2), b.swapaxes(-1, -2)
    if (not a.flags.c_contiguous and at.flags.c_contiguous and b.size < a.size):
        y = _run("MatMul", {"a": np.ascontiguousarray(bt), "b": at}, threads=1).swapaxes(-1, -2)
    else:
        y = _run("MatMul", {"a": np.ascontiguousarray(a), "b": np.ascontiguousarray(b)},
                 threads=1)
    if out is None:
        return y
    out[...] = y
    return out


def _float32(*arrays: Any) -> bool:
    return all(a is None or a.dtype == _F32 for a in arrays)


def kernels(fallback: dict[str, Callable]) -> dict[str, Callable]:
    """The convolution kernels (``conv2d``, ``conv2d_bias`` and both gradients) on onnxruntime
    for float32, ``fallback``'s kernels of the same names for other dtypes, empty batches and,
    for the weight gradient, fewer than :data:`MIN_CHANNELS` input channels."""
    numpy_conv2d, numpy_grad_input = fallback["conv2d"], fallback["conv2d_grad_input"]

    def conv2d(x, w, b=None, *, stride, padding, dilation, groups):
        if x.shape[0] == 0 or not _float32(x, w, b):
            return numpy_conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation,
                                groups=groups)
        return _convolve(x, w, None if b is None else b.reshape(-1), stride, padding, dilation,
                         groups)

    def conv2d_grad_input(g, w, *, input_shape, stride, padding, dilation, groups):
        if g.size == 0 or not _float32(g, w):
            return numpy_grad_input(g, w, input_shape=input_shape, stride=stride,
                                    padding=padding, dilation=dilation, groups=groups)
        kh, kw = w.shape[2:]
        # the flipped convolution's padding: d * (k - 1) - p on each side
        flipped_padding = (dilation[0] * (kh - 1) - padding[0],
                           dilation[1] * (kw - 1) - padding[1])
        if (tuple(stride) == (1, 1) and groups == 1 and min(flipped_padding) >= 0
                and input_shape[1] >= MIN_CHANNELS):
            flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
            return _convolve(g, flipped, None, (1, 1), flipped_padding, dilation, 1)
        if tuple(stride) != (1, 1) and _blocked(g.shape[1], groups):
            return _strided_grad_input(g, w, tuple(input_shape), stride, padding, dilation)
        # The transposed convolution, its output padded by the rows and columns the forward's
        # floor dropped (fewer than a stride), so it has the input's shape.
        attributes = _conv_attributes((kh, kw), stride, padding, dilation, groups)
        attributes["output_padding"] = tuple(
            input_shape[2 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1
            - stride[i] * (g.shape[2 + i] - 1) for i in range(2))
        feeds = {"g": np.ascontiguousarray(g), "w": np.ascontiguousarray(w)}
        return _run("ConvTranspose", feeds, **attributes)

    numpy_grad_weight = fallback["conv2d_grad_weight"]
    gemm_grad_weight = split_grad_weight(
        conv.kernels(np, gemm=matmul, block_bytes=GEMM_BLOCK_BYTES)["conv2d_grad_weight"], np)

    def conv2d_grad_weight(g, x, *, weight_shape, stride, padding, dilation, groups):
        mlas = x.shape[1] >= MIN_CHANNELS and _float32(g, x)
        kernel = gemm_grad_weight if mlas else numpy_grad_weight
        return kernel(g, x, weight_shape=weight_shape, stride=stride, padding=padding,
                      dilation=dilation, groups=groups)

    return {"conv2d": conv2d, "conv2d_bias": conv2d, "conv2d_grad_input": conv2d_grad_input,
            "conv2d_grad_weight": conv2d_grad_weight}


def sessions_built(op: str | None = None) -> int:
    """How many sessions this process has built (one per graph: op and attributes), of ``op``'s
    or all: the path's compile count."""
    return _sessions.built[op] if op is not None else sum(_sessions.built.values())


#: Sessions a forked child inherited: kept, since destroying one would join thread-pool threads
#: the child does not have, and hang it.
_inherited: list[_Sessions] = []


def _fresh_sessions_after_fork() -> None:
    global _sessions
    _inherited.append(_sessions)
    _sessions = _Sessions()  # the child builds its own, on threads of its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_sessions_after_fork)
