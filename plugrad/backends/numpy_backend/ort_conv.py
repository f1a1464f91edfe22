"""Convolutions on onnxruntime's CPU kernels, where onnxruntime is installed (``plugrad[onnx]``).

The numpy backend's own convolutions (``conv.py``) are im2col copies and OpenBLAS GEMMs.
onnxruntime's CPU convolution (MLAS: blocked channel layouts and its own AVX-512 GEMM kernels)
ran the float32 forward faster on every layer measured, and the stride-1 input gradient, written
as a forward convolution of ``g`` with the flipped, transposed weight, faster from 16 input
channels. Two runs of ``benchmarks/bench_conv_kernels.py --engines`` (batch 64, 2 threads each
side, interleaved; medians in ms, NumPy -> onnxruntime):

layer                  forward                  input gradient
LeNet conv1 1->6 5x5   0.79 -> 0.22             (the input's: never needed in training)
LeNet conv2 6->16 5x5  0.34-0.36 -> 0.20        0.60 -> 0.60 (6 input channels: kept)
3x3, 3->16 at 32x32    0.77 -> 0.49             (the input's)
3x3, 16->16 at 32x32   2.84-2.89 -> 2.01-2.04   2.95-3.00 -> 2.04
3x3, 16->32 at 16x16   1.40-1.41 -> 0.77        1.35-1.37 -> 1.18-1.19
3x3, 32->32 at 16x16   2.45-2.54 -> 1.49-1.50   2.47-2.49 -> 1.52
3x3, 32->64 stride 2   1.02-1.06 -> 0.59-0.61   1.62-1.67 -> 1.72-1.73 (strided: kept)

The weight gradient stays NumPy's: as a convolution (the batch as channels, ``g`` as a kernel
the size of the output) onnxruntime took 1-5x its time.

Each geometry gets one ``InferenceSession`` of a single node, built on its first call and kept
(the last ``MAX_SESSIONS``): this path's compile time, 1-1.5 ms a geometry, and 58 ms for the
process's first, which imports onnx and onnxruntime. Sessions use the
backend's thread count (``PLUGRAD_NUM_THREADS``) without spinning threads, so a busy machine
costs a wait, not a core. ``PLUGRAD_CONV_ENGINE=numpy`` turns this off; other dtypes, an empty
batch and the geometries above run the NumPy kernels. Results match those to float32 rounding.

Once onnxruntime is imported (1.32 at least), a child made by a bare ``os.fork()`` hangs if it
leaves through Python's normal exit (onnxruntime's exit handlers wait for threads the child
does not have): it must leave with ``os._exit``, as multiprocessing's children (and the
DataLoader's workers) do. A forked child builds sessions of its own.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from plugrad.backends.numpy_backend._threads import num_threads

__all__ = ["ENGINE_VARIABLE", "MIN_GRAD_INPUT_CHANNELS", "available", "kernels",
           "sessions_built", "turned_off"]

ENGINE_VARIABLE = "PLUGRAD_CONV_ENGINE"
#: Input channels from which the stride-1 input gradient runs on onnxruntime (LeNet's 6 lost).
MIN_GRAD_INPUT_CHANNELS = 16
MAX_SESSIONS = 64
_F32 = np.dtype(np.float32)
_OPSET = 17


def turned_off() -> bool:
    """Whether ``PLUGRAD_CONV_ENGINE=numpy`` asks for NumPy's convolutions only."""
    return os.environ.get(ENGINE_VARIABLE, "auto").strip().lower() == "numpy"


def available() -> bool:
    """Whether convolutions run on onnxruntime: installed (with onnx, which builds the graphs)
    and not turned off."""
    return not turned_off() and all(importlib.util.find_spec(name) is not None
                                    for name in ("onnxruntime", "onnx"))


class _Sessions:
    """One InferenceSession per convolution geometry, built once, the newest MAX_SESSIONS kept."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.built = 0  # sessions built so far: the path's compile count

    def run(self, key: tuple, feeds: dict[str, np.ndarray]) -> np.ndarray:
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
                self.built += 1
                while len(self._cache) > MAX_SESSIONS:
                    self._cache.popitem(last=False)
            return session



def _session(inputs: tuple[tuple[str, tuple[int, ...]], ...], kernel: tuple[int, ...],
             stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
             groups: int) -> Any:
    """A session of one Conv node over float32 ``inputs`` (name, shape) with these attributes."""
    import onnxruntime
    from onnx import TensorProto, helper

    node = helper.make_node("Conv", [name for name, _ in inputs], ["y"],
                            kernel_shape=list(kernel), strides=list(stride),
                            pads=[padding[0], padding[1], padding[0], padding[1]],
                            dilations=list(dilation), group=groups)
    graph = helper.make_graph(
        [node], "conv",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
         for name, shape in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


_sessions = _Sessions()


def _key(feeds: dict[str, np.ndarray], kernel, stride, padding, dilation, groups) -> tuple:
    """A convolution's geometry: the arguments of :func:`_session`."""
    return (tuple((name, a.shape) for name, a in feeds.items()), tuple(kernel), tuple(stride),
            tuple(padding), tuple(dilation), groups)


def _float32(*arrays: Any) -> bool:
    return all(a is None or a.dtype == _F32 for a in arrays)


def kernels(fallback: dict[str, Callable]) -> dict[str, Callable]:
    """``conv2d``, ``conv2d_bias`` and ``conv2d_grad_input`` on onnxruntime where it pays,
    ``fallback``'s kernels of the same names elsewhere."""
    numpy_conv2d, numpy_grad_input = fallback["conv2d"], fallback["conv2d_grad_input"]

    def conv2d(x, w, b=None, *, stride, padding, dilation, groups):
        if x.shape[0] == 0 or not _float32(x, w, b):
            return numpy_conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation,
                                groups=groups)
        feeds = {"x": np.ascontiguousarray(x), "w": np.ascontiguousarray(w)}
        if b is not None:
            feeds["b"] = np.ascontiguousarray(b).reshape(-1)
        return _sessions.run(_key(feeds, w.shape[2:], stride, padding, dilation, groups), feeds)

    def conv2d_grad_input(g, w, *, input_shape, stride, padding, dilation, groups):
        kh, kw = w.shape[2:]
        # the flipped convolution's padding: d * (k - 1) - p on each side
        flipped_padding = (dilation[0] * (kh - 1) - padding[0],
                           dilation[1] * (kw - 1) - padding[1])
        if (tuple(stride) != (1, 1) or groups != 1 or g.shape[0] == 0 or not _float32(g, w)
                or input_shape[1] < MIN_GRAD_INPUT_CHANNELS or min(flipped_padding) < 0):
            return numpy_grad_input(g, w, input_shape=input_shape, stride=stride,
                                    padding=padding, dilation=dilation, groups=groups)
        flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        feeds = {"g": np.ascontiguousarray(g), "w": flipped}
        return _sessions.run(_key(feeds, (kh, kw), (1, 1), flipped_padding, dilation, 1), feeds)

    return {"conv2d": conv2d, "conv2d_bias": conv2d, "conv2d_grad_input": conv2d_grad_input}


def sessions_built() -> int:
    """How many convolution sessions this process has built (one per geometry)."""
    return _sessions.built


#: Sessions a forked child inherited: kept, since destroying one would join thread-pool threads
#: the child does not have, and hang it.
_inherited: list[_Sessions] = []


def _fresh_sessions_after_fork() -> None:
    global _sessions
    _inherited.append(_sessions)
    _sessions = _Sessions()  # the child builds its own, on threads of its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_sessions_after_fork)
