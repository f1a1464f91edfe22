"""Fused CUDA kernels for composite ops whose generic form is a chain of array passes.

- ``sigmoid``: one elementwise kernel (the generic form is five: negate, logaddexp, negate,
  exp, cast), stable for large ``|x|`` the same way.
- ``relu_grad`` (relu's backward, ``g where out > 0 else 0``): one select kernel instead of a
  comparison, a zeros tensor and a ``where``.
- ``softmax``, ``logsoftmax``, ``softmax_cross_entropy`` and its gradient: one kernel each, a
  thread block per row of the softmax axis: the block reduces the row's maximum and its sum of
  ``exp(x - max)`` in shared memory and writes the result; the generic forms take five or more
  passes, each with a temporary as large as the input.

Arithmetic follows the generic kernels step by step (``exp(x - max) / sum``, ``(x - max) -
log(sum)``, ``log(sum) - (x[label] - max)``), so results agree to a few ulps. float16 rows are
computed in float32 and rounded once; other axes than the last are moved last first (a copy).
A label outside ``[-classes, classes)`` gives a NaN loss (and NaN gradient row) rather than
reading out of bounds; negative labels count from the end, as NumPy indexing does.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

import numpy as np

__all__ = ["RELU_GRAD_BODY", "ROW_SOURCE", "SIGMOID_BODY", "SIGMOID_SOURCE", "kernels"]

Kernel = Callable[..., Any]

SIGMOID_SOURCE = r"""
/* float16 and float32 compute in float32, float64 in float64. A template rather than a
   float16 overload: CuPy declares its float16 class only in kernels that use it. */
template <typename T>
__device__ __forceinline__ float plugrad_widen(T v) { return float(v); }
__device__ __forceinline__ double plugrad_widen(double v) { return v; }

/* 1 / (1 + exp(-v)) never overflows for v >= 0, exp(v) / (1 + exp(v)) for v < 0. */
__device__ __forceinline__ float plugrad_sigmoid(float v) {
    if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}
__device__ __forceinline__ double plugrad_sigmoid(double v) {
    if (v >= 0.0) return 1.0 / (1.0 + exp(-v));
    double e = exp(v);
    return e / (1.0 + e);
}
"""
SIGMOID_BODY = "y = (T)plugrad_sigmoid(plugrad_widen(x))"
# A select, as the decomposition's where: an inf or NaN gradient where out <= 0 still gives 0.
RELU_GRAD_BODY = "y = out > 0 ? g : (T)0"

_BLOCK = 128
_MAX_GRID = 1 << 20  # rows beyond this are taken in a grid-stride loop

ROW_SOURCE = r"""
#define PLUGRAD_BLOCK 128

__device__ __forceinline__ float plugrad_exp(float v) { return expf(v); }
__device__ __forceinline__ double plugrad_exp(double v) { return exp(v); }
__device__ __forceinline__ float plugrad_log(float v) { return logf(v); }
__device__ __forceinline__ double plugrad_log(double v) { return log(v); }
__device__ __forceinline__ float plugrad_nan(float) { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ double plugrad_nan(double) {
    return __longlong_as_double(0x7ff8000000000000LL);
}

/* The block's maximum (is_max) or sum of v; every thread gets the result. */
template <typename T>
__device__ T plugrad_block_reduce(T v, T* buf, bool is_max) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            T a = buf[threadIdx.x], b = buf[threadIdx.x + s];
            buf[threadIdx.x] = is_max ? (b > a ? b : a) : a + b;
        }
        __syncthreads();
    }
    T out = buf[0];
    __syncthreads();
    return out;
}

/* Row maximum m and s = sum(exp(x - m)); NaN anywhere in the row makes s NaN. */
template <typename T>
__device__ void plugrad_row_stats(const T* xr, int cols, T* buf, T& m, T& s) {
    T peak = xr[0];
    for (int j = threadIdx.x; j < cols; j += blockDim.x) peak = xr[j] > peak ? xr[j] : peak;
    m = plugrad_block_reduce(peak, buf, true);
    T total = 0;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) total += plugrad_exp(xr[j] - m);
    s = plugrad_block_reduce(total, buf, false);
}

/* The label's column, or -1 when it is outside [-cols, cols). */
__device__ __forceinline__ int plugrad_column(int label, int cols) {
    if (label < 0) label += cols;
    return (label >= 0 && label < cols) ? label : -1;
}

template <typename T>
__device__ void plugrad_softmax(const T* x, T* y, long long rows, int cols, int log_out) {
    __shared__ T buf[PLUGRAD_BLOCK];
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = x + row * cols;
        T* yr = y + row * cols;
        T m, s;
        plugrad_row_stats(xr, cols, buf, m, s);
        if (log_out) {
            T ls = plugrad_log(s);
            for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = (xr[j] - m) - ls;
        } else {
            for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = plugrad_exp(xr[j] - m) / s;
        }
    }
}

template <typename T>
__device__ void plugrad_xent(const T* x, const int* label, T* loss, long long rows, int cols) {
    __shared__ T buf[PLUGRAD_BLOCK];
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = x + row * cols;
        T m, s;
        plugrad_row_stats(xr, cols, buf, m, s);
        if (threadIdx.x == 0) {
            int k = plugrad_column(label[row], cols);
            loss[row] = k < 0 ? plugrad_nan(m) : plugrad_log(s) - (xr[k] - m);
        }
    }
}

template <typename T>
__device__ void plugrad_xent_grad(const T* g, const T* x, const int* label, T* gx,
                                  long long rows, int cols) {
    __shared__ T buf[PLUGRAD_BLOCK];
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = x + row * cols;
        T* gr = gx + row * cols;
        T m, s;
        plugrad_row_stats(xr, cols, buf, m, s);
        int k = plugrad_column(label[row], cols);
        T scale = g[row];
        for (int j = threadIdx.x; j < cols; j += blockDim.x) {
            T p = plugrad_exp(xr[j] - m) / s;
            gr[j] = k < 0 ? plugrad_nan(p) : (j == k ? p - T(1) : p) * scale;
        }
    }
}

#define PLUGRAD_ROW_KERNELS(T)                                                              \
extern "C" __global__ void plugrad_softmax_##T(const T* x, T* y, long long rows, int cols,  \
                                               int log_out) {                              \
    plugrad_softmax<T>(x, y, rows, cols, log_out);                                          \
}                                                                                           \
extern "C" __global__ void plugrad_xent_##T(const T* x, const int* label, T* loss,          \
                                            long long rows, int cols) {                     \
    plugrad_xent<T>(x, label, loss, rows, cols);                                            \
}                                                                                           \
extern "C" __global__ void plugrad_xent_grad_##T(const T* g, const T* x, const int* label, \
                                                 T* gx, long long rows, int cols) {         \
    plugrad_xent_grad<T>(g, x, label, gx, rows, cols);                                      \
}

PLUGRAD_ROW_KERNELS(float)
PLUGRAD_ROW_KERNELS(double)
"""

_C_TYPES = {"float32": "float", "float64": "double"}


def kernels(cupy: ModuleType, generic: dict[str, Kernel]) -> dict[str, Kernel]:
    """The fused kernels for module ``cupy``; ``generic`` handles dtypes they do not cover."""
    sigmoid_kernel = cupy.ElementwiseKernel(
        "T x", "T y", SIGMOID_BODY, "plugrad_sigmoid", preamble=SIGMOID_SOURCE)
    generic_sigmoid = generic["sigmoid"]
    relu_grad_kernel = cupy.ElementwiseKernel("T g, T out", "T y", RELU_GRAD_BODY,
                                              "plugrad_relu_grad")
    # One RawKernel object per (function, C type): CuPy compiles each on first launch, once
    # per device, and caches the binary.
    raw = {(function, c_type): cupy.RawKernel(ROW_SOURCE, f"plugrad_{function}_{c_type}")
           for function in ("softmax", "xent", "xent_grad") for c_type in _C_TYPES.values()}
    float32 = cupy.dtype("float32")
    int32 = cupy.dtype("int32")

    def compute_dtype(dtype):
        return dtype if dtype.name in _C_TYPES else float32

    def launch(function: str, dtype, rows: int, *args: Any) -> None:
        if rows == 0:
            return
        kernel = raw[(function, _C_TYPES[dtype.name])]
        kernel((min(rows, _MAX_GRID),), (_BLOCK,), args)

    def as_rows(x, axis: int):
        """``x`` with ``axis`` last, C-contiguous in the compute dtype: ``(rows, cols)``."""
        rows = cupy.ascontiguousarray(cupy.moveaxis(x, axis, -1), dtype=compute_dtype(x.dtype))
        cols = rows.shape[-1] if rows.ndim else 1
        return rows, rows.size // cols if cols else 0, cols

    def labels(label):
        return cupy.ascontiguousarray(label, dtype=int32)

    def sigmoid(x):
        if x.dtype.kind != "f":
            return generic_sigmoid(x)
        return sigmoid_kernel(x)

    def relu_grad(g, out):
        return relu_grad_kernel(g, out)

    def softmax_family(log_out: int) -> Kernel:
        def kernel(x, *, axis):
            rows, n, cols = as_rows(x, axis)
            out = cupy.empty_like(rows)
            if cols:
                launch("softmax", rows.dtype, n, rows, out, np.int64(n), np.int32(cols),
                       np.int32(log_out))
            out = cupy.moveaxis(out, -1, axis)
            return cupy.ascontiguousarray(out, dtype=x.dtype)

        return kernel

    def softmax_cross_entropy(x, label, *, axis):
        rows, n, cols = as_rows(x, axis)
        loss = cupy.empty(label.shape, dtype=rows.dtype)
        if not cols:  # no class to pick: the loss is undefined
            loss.fill(np.nan)
        launch("xent", rows.dtype, n if cols else 0, rows, labels(label), loss, np.int64(n),
               np.int32(cols))
        return loss.astype(x.dtype, copy=False)

    def softmax_cross_entropy_grad(g, x, label, *, axis):
        rows, n, cols = as_rows(x, axis)
        grad = cupy.empty_like(rows)
        scale = cupy.ascontiguousarray(cupy.broadcast_to(g, label.shape), dtype=rows.dtype)
        launch("xent_grad", rows.dtype, n if cols else 0, scale, rows, labels(label), grad,
               np.int64(n), np.int32(cols))
        return cupy.ascontiguousarray(cupy.moveaxis(grad, -1, axis), dtype=x.dtype)

    return {
        "sigmoid": sigmoid,
        "relu_grad": relu_grad,
        "softmax": softmax_family(0),
        "logsoftmax": softmax_family(1),
        "softmax_cross_entropy": softmax_cross_entropy,
        "softmax_cross_entropy_grad": softmax_cross_entropy_grad,
    }
