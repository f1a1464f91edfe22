"""The cupy backend's CUDA sources, checked without a GPU.

Two checks that need no device:

- *Host emulation*: the device code is plain C++ apart from a few CUDA names. Compiled with the
  host C++ compiler and a small prelude (``__umulhi`` in C; for the row kernels a block of 128
  host threads sharing ``__shared__`` memory, with a barrier as ``__syncthreads``), it runs on
  the CPU through ctypes, so the arithmetic is compared with NumPy: Philox against its published
  known-answer vectors, the distributions, dropout against uniform, sigmoid, softmax,
  log-softmax and the softmax cross-entropy with its gradient. What this cannot see: GPU
  memory ordering beyond the barriers, and anything CuPy adds at launch.
- *NVRTC*: where CuPy and NVIDIA's runtime compiler are installed (no driver needed), every
  source is compiled for the GPU with CuPy's headers, per dtype, as CuPy would.
"""
from __future__ import annotations

import ctypes
import importlib.util
import shutil
import subprocess

import numpy as np
import pytest

from plugrad.backends.cupy_backend import fused, random

CXX = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
needs_cxx = pytest.mark.skipif(CXX is None, reason="no host C++ compiler to emulate CUDA code")

# Just enough CUDA for the sources to build and run on the host.
HOST_PRELUDE = r"""
#include <cmath>
#include <cstring>
#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static
static inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
static inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
static inline double __longlong_as_double(long long v) {
    double d;
    std::memcpy(&d, &v, 8);
    return d;
}
static inline float cospif(float x) { return std::cos(3.14159265358979323846 * x); }
static inline double cospi(double x) { return std::cos(3.14159265358979323846 * x); }
using std::exp; using std::log; using std::sqrt;
"""

# Elementwise code runs one element per call: a single host thread is enough.
SERIAL_PRELUDE = r"""
struct plugrad_dim3 { unsigned int x; };
static const plugrad_dim3 threadIdx = {0}, blockIdx = {0}, blockDim = {1}, gridDim = {1};
static inline void __syncthreads() {}
"""

# The row kernels reduce across a block: run one block of 128 host threads. ``__shared__``
# (static) storage is shared by them, as on the GPU, and a barrier stands for __syncthreads.
THREADED_PRELUDE = r"""
#include <barrier>
#include <thread>
#include <vector>
struct plugrad_dim3 { unsigned int x; };
static thread_local plugrad_dim3 threadIdx = {0};
static const plugrad_dim3 blockIdx = {0}, blockDim = {128}, gridDim = {1};
static std::barrier<>* plugrad_block_barrier;
static inline void __syncthreads() { plugrad_block_barrier->arrive_and_wait(); }
template <typename F> void plugrad_launch_block(F body) {
    std::barrier<> barrier(blockDim.x);
    plugrad_block_barrier = &barrier;
    std::vector<std::thread> threads;
    for (unsigned int t = 0; t < blockDim.x; ++t)
        threads.emplace_back([&body, t] { threadIdx.x = t; body(); });
    for (auto& thread : threads) thread.join();
}
"""

ROW_LAUNCHERS = r"""
#define PLUGRAD_HOST_LAUNCHERS(T)                                                           \
extern "C" void host_softmax_##T(const T* x, T* y, long long rows, int cols, int log_out) { \
    plugrad_launch_block([&] { plugrad_softmax_##T(x, y, rows, cols, log_out); });         \
}                                                                                           \
extern "C" void host_xent_##T(const T* x, const int* label, T* loss, long long rows,        \
                              int cols) {                                                   \
    plugrad_launch_block([&] { plugrad_xent_##T(x, label, loss, rows, cols); });            \
}                                                                                           \
extern "C" void host_xent_grad_##T(const T* g, const T* x, const int* label, T* gx,        \
                                   long long rows, int cols) {                              \
    plugrad_launch_block([&] { plugrad_xent_grad_##T(g, x, label, gx, rows, cols); });      \
}
PLUGRAD_HOST_LAUNCHERS(float)
PLUGRAD_HOST_LAUNCHERS(double)
"""

# An elementwise body run over arrays, with the parameters the kernels declare.
ELEMENTWISE_HARNESS = r"""
typedef {ctype} T;
extern "C" void run(const T* xs, T* ys, float p, T scale, unsigned int k0, unsigned int k1,
                    long long n) {{
    for (long long i = 0; i < n; ++i) {{
        const T x = xs[i];
        T& y = ys[i];
        {body};
    }}
}}
"""

_CTYPES = {"float": (np.float32, ctypes.c_float), "double": (np.float64, ctypes.c_double)}


def _build(tmp_path_factory, name: str, source: str, threaded: bool = False) -> ctypes.CDLL:
    folder = tmp_path_factory.mktemp(name)
    cpp, lib = folder / f"{name}.cpp", folder / f"{name}.so"
    prelude = HOST_PRELUDE + (THREADED_PRELUDE if threaded else SERIAL_PRELUDE)
    cpp.write_text(prelude + source)
    done = subprocess.run([CXX, "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-o",
                           str(lib), str(cpp)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return ctypes.CDLL(str(lib))


def _pointer(array: np.ndarray):
    return array.ctypes.data_as(ctypes.c_void_p)


class Elementwise:
    """One elementwise body compiled for one C type, callable on NumPy arrays."""

    def __init__(self, tmp_path_factory, preamble: str, body: str, ctype: str):
        source = preamble + ELEMENTWISE_HARNESS.format(ctype=ctype, body=body)
        self.dtype, self.scalar = _CTYPES[ctype]
        self.lib = _build(tmp_path_factory, f"ew_{ctype}", source)

    def __call__(self, x=None, *, n=None, p=0.0, scale=1.0, seed=0):
        x = np.zeros(n, self.dtype) if x is None else np.ascontiguousarray(x, self.dtype)
        y = np.empty_like(x)
        self.lib.run(_pointer(x), _pointer(y), ctypes.c_float(p), self.scalar(scale),
                     ctypes.c_uint(seed & 0xFFFFFFFF), ctypes.c_uint(seed >> 32),
                     ctypes.c_longlong(x.size))
        return y


# -- Philox and the distributions -------------------------------------------------------------
@needs_cxx
def test_philox_matches_its_known_answer_vectors(tmp_path_factory):
    lib = _build(tmp_path_factory, "kat", random.PHILOX_SOURCE + r"""
extern "C" void kat(const unsigned int* c, unsigned int k0, unsigned int k1, unsigned int* r) {
    plugrad_philox4x32(c, k0, k1, r);
}""")
    # Philox-4x32-10 vectors published with the Random123 library (counter, key -> output).
    vectors = [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
         (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ]
    for counter, key, expected in vectors:
        out = (ctypes.c_uint * 4)()
        lib.kat((ctypes.c_uint * 4)(*counter), ctypes.c_uint(key[0]), ctypes.c_uint(key[1]), out)
        assert tuple(out) == expected


@needs_cxx
@pytest.mark.parametrize("ctype, function", [("float", "plugrad_uniform_f"),
                                             ("double", "plugrad_uniform_d")])
def test_uniform_draws_cover_the_unit_interval_evenly(tmp_path_factory, ctype, function):
    draw = Elementwise(tmp_path_factory, random.PHILOX_SOURCE,
                       random.DRAW_BODY.format(function=function), ctype)
    u = draw(n=200_000, seed=12345)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert counts.min() > 0.95 * 20_000 and counts.max() < 1.05 * 20_000
    np.testing.assert_array_equal(draw(n=1000, seed=12345), u[:1000])  # a seed reproduces
    assert not np.array_equal(draw(n=1000, seed=12346), u[:1000])
    assert not np.array_equal(draw(n=1000, seed=12345 + (1 << 32)), u[:1000])  # high word


@needs_cxx
def test_the_float16_draw_is_exact_in_float16_and_below_one(tmp_path_factory):
    draw = Elementwise(tmp_path_factory, random.PHILOX_SOURCE,
                       random.DRAW_BODY.format(function="plugrad_uniform_h"), "float")
    u = draw(n=200_000, seed=3)
    np.testing.assert_array_equal(u.astype(np.float16).astype(np.float32), u)
    assert u.min() >= 0.0 and u.max() == 2047 / 2048
    assert abs(u.mean() - 0.5) < 0.005 and len(np.unique(u)) == 2048


@needs_cxx
@pytest.mark.parametrize("ctype, function", [("float", "plugrad_normal_f"),
                                             ("double", "plugrad_normal_d")])
def test_normal_draws_are_standard_normal(tmp_path_factory, ctype, function):
    draw = Elementwise(tmp_path_factory, random.PHILOX_SOURCE,
                       random.DRAW_BODY.format(function=function), ctype)
    z = draw(n=200_000, seed=7)
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs((np.abs(z) < 1).mean() - 0.6827) < 0.005


@needs_cxx
@pytest.mark.parametrize("ctype", ["float", "double"])
def test_dropout_keeps_exactly_where_uniform_draws_reach_p(tmp_path_factory, ctype):
    preamble = random.PHILOX_SOURCE
    dropout = Elementwise(tmp_path_factory, preamble, random.DROPOUT_BODY, ctype)
    # The decomposition's draw is always float32 (plugrad_uniform_f), whatever x's dtype.
    uniform = Elementwise(tmp_path_factory, preamble,
                          random.DRAW_BODY.format(function="plugrad_uniform_f"), "float")
    x = np.random.default_rng(0).standard_normal(10_000)
    p, seed = 0.3, 2**40 + 99
    out = dropout(x, p=p, scale=1 / (1 - p), seed=seed)
    keep = uniform(n=x.size, seed=seed) >= np.float32(p)
    expected = np.where(keep, (x.astype(dropout.dtype) * dropout.dtype(1 / (1 - p))), 0)
    np.testing.assert_array_equal(out, expected.astype(dropout.dtype))
    assert abs((out == 0).mean() - p) < 0.02


# -- sigmoid ----------------------------------------------------------------------------------
@needs_cxx
@pytest.mark.parametrize("ctype", ["float", "double"])
def test_sigmoid_matches_numpy_and_never_overflows(tmp_path_factory, ctype):
    sigmoid = Elementwise(tmp_path_factory, fused.SIGMOID_SOURCE, fused.SIGMOID_BODY, ctype)
    x = np.concatenate([np.linspace(-30, 30, 601), [-1e4, -100, 0, 100, 1e4, np.inf, -np.inf]])
    x = x.astype(sigmoid.dtype)
    with np.errstate(over="ignore"):
        expected = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(sigmoid.dtype)
    out = sigmoid(x)
    np.testing.assert_allclose(out, expected, rtol=4 * np.finfo(sigmoid.dtype).eps, atol=0)
    assert np.isnan(sigmoid(np.array([np.nan]))).all()


@needs_cxx
@pytest.mark.parametrize("ctype", ["float", "double"])
def test_relu_grad_selects_like_its_decomposition(tmp_path_factory, ctype):
    dtype, _ = _CTYPES[ctype]
    lib = _build(tmp_path_factory, f"relu_grad_{ctype}", f"""
typedef {ctype} T;
extern "C" void run(const T* gs, const T* outs, T* ys, long long n) {{
    for (long long i = 0; i < n; ++i) {{
        const T g = gs[i];
        const T out = outs[i];
        T& y = ys[i];
        {fused.RELU_GRAD_BODY};
    }}
}}""")
    g = np.array([1.5, -2.0, np.inf, np.nan, 3.0, 4.0], dtype)
    out = np.array([0.5, 0.0, -0.0, 0.0, np.nan, 2.0], dtype)
    y = np.empty_like(g)
    lib.run(_pointer(g), _pointer(out), _pointer(y), ctypes.c_longlong(g.size))
    np.testing.assert_array_equal(y, np.where(out > 0, g, 0).astype(dtype))


# -- softmax rows -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rows_lib(tmp_path_factory):
    if CXX is None:
        pytest.skip("no host C++ compiler to emulate CUDA code")
    return _build(tmp_path_factory, "rows", fused.ROW_SOURCE + ROW_LAUNCHERS, threaded=True)


def _softmax_ref(x: np.ndarray, log: bool) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    total = np.exp(shifted).sum(axis=-1, keepdims=True)
    return shifted - np.log(total) if log else np.exp(shifted) / total


def _ctype(dtype) -> str:
    return "float" if np.dtype(dtype) == np.float32 else "double"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log_out", [0, 1])
def test_softmax_rows_match_numpy(rows_lib, dtype, log_out):
    x = (np.random.default_rng(1).standard_normal((37, 300)) * 20).astype(dtype)
    x[3] = 0  # a constant row
    x[4, 7] = 1e4  # one dominant entry
    y = np.empty_like(x)
    getattr(rows_lib, f"host_softmax_{_ctype(dtype)}")(
        _pointer(x), _pointer(y), ctypes.c_longlong(37), ctypes.c_int(300), ctypes.c_int(log_out))
    expected = _softmax_ref(x.astype(np.float64), bool(log_out))
    np.testing.assert_allclose(y, expected, rtol=50 * np.finfo(dtype).eps,
                               atol=10 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_propagate_nan(rows_lib, dtype):
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]], dtype)
    y = np.empty_like(x)
    getattr(rows_lib, f"host_softmax_{_ctype(dtype)}")(
        _pointer(x), _pointer(y), ctypes.c_longlong(2), ctypes.c_int(3), ctypes.c_int(0))
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


def _xent(rows_lib, x, label):
    loss = np.empty(x.shape[0], x.dtype)
    getattr(rows_lib, f"host_xent_{_ctype(x.dtype)}")(
        _pointer(x), _pointer(label), _pointer(loss), ctypes.c_longlong(x.shape[0]),
        ctypes.c_int(x.shape[1]))
    return loss


def _xent_grad(rows_lib, g, x, label):
    gx = np.empty_like(x)
    getattr(rows_lib, f"host_xent_grad_{_ctype(x.dtype)}")(
        _pointer(g), _pointer(x), _pointer(label), _pointer(gx), ctypes.c_longlong(x.shape[0]),
        ctypes.c_int(x.shape[1]))
    return gx


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [10, 1000])  # fewer and more classes than threads
def test_softmax_cross_entropy_and_gradient_match_numpy(rows_lib, dtype, classes):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((64, classes)) * 5).astype(dtype)
    label = rng.integers(0, classes, 64).astype(np.int32)
    label[:3] = [-1, -classes, classes - 1]  # negative labels count from the end
    g = rng.standard_normal(64).astype(dtype)
    x64 = x.astype(np.float64)
    wrapped = label % classes
    rows = np.arange(64)
    expected_loss = -_softmax_ref(x64, log=True)[rows, wrapped]
    prob = _softmax_ref(x64, log=False)
    prob[rows, wrapped] -= 1
    expected_grad = prob * g[:, None].astype(np.float64)
    tol = dict(rtol=50 * np.finfo(dtype).eps, atol=20 * np.finfo(dtype).eps)
    np.testing.assert_allclose(_xent(rows_lib, x, label), expected_loss, **tol)
    np.testing.assert_allclose(_xent_grad(rows_lib, g, x, label), expected_grad, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_labels_out_of_range_give_nan_not_a_stray_read(rows_lib, dtype):
    x = np.zeros((3, 4), dtype)
    label = np.array([4, -5, 0], np.int32)
    loss = _xent(rows_lib, x, label)
    assert np.isnan(loss[:2]).all() and loss[2] == pytest.approx(np.log(4))
    grad = _xent_grad(rows_lib, np.ones(3, dtype), x, label)
    assert np.isnan(grad[:2]).all() and np.isfinite(grad[2]).all()


# -- NVRTC: the sources compile for the GPU, per dtype ----------------------------------------
def _nvrtc_setup():
    """(nvrtc module, include options) or a skip naming what is missing."""
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("cupy is not installed")
    try:
        import cupy._core.core as cupy_core
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
    except Exception as exc:  # NVRTC is a separate library (e.g. nvidia-cuda-nvrtc-cu12)
        pytest.skip(f"NVIDIA's runtime compiler is not loadable: {exc}")
    options = ["-I" + cupy_core._get_header_dir_path(), *cupy_core._get_cccl_include_options()]
    runtime_headers = None
    try:
        from cuda import pathfinder

        runtime_headers = pathfinder.find_nvidia_header_directory("cudart")
    except Exception:
        pass
    if runtime_headers:
        options.append("-I" + str(runtime_headers))
    return nvrtc, options, runtime_headers is not None


def _nvrtc_compile(source: str) -> str | None:
    """None when ``source`` compiles, else the compiler's log."""
    nvrtc, options, _ = _nvrtc_setup()
    program = nvrtc.createProgram(source, "plugrad_check.cu", [], [])
    try:
        nvrtc.compileProgram(program, [*options, "--std=c++17", "-arch=compute_75"])
    except Exception:
        return nvrtc.getProgramLog(program)
    return None


# CuPy's elementwise kernels start with these headers, and include float16's when used.
_CUPY_HEAD = ("#include <cupy/complex.cuh>\n#include <cupy/carray.cuh>\n"
              "#include <cupy/atomics.cuh>\n#include <cupy/math_constants.h>\n")
_GPU_ELEMENTWISE = r"""
typedef {ctype} T;
extern "C" __global__ void check(const T* xs, const T* gs, const T* outs, T* ys, float p,
                                 T scale, unsigned int k0, unsigned int k1, long long n) {{
    for (ptrdiff_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += blockDim.x * gridDim.x) {{
        const T x = xs[i], g = gs[i], out = outs[i];
        T& y = ys[i];
        {body};
    }}
}}
"""


def _elementwise_source(preamble: str, body: str, ctype: str) -> str:
    half = "#include <cupy/float16.cuh>\n" if ctype == "float16" else ""
    return _CUPY_HEAD + half + preamble + _GPU_ELEMENTWISE.format(ctype=ctype, body=body)


def _skip_half_without_headers(ctype: str) -> None:
    if ctype == "float16" and not _nvrtc_setup()[2]:
        pytest.skip("cuda_fp16.h not found (install nvidia-cuda-runtime-cu12 or a CUDA toolkit)")


def test_nvrtc_check_reports_broken_code():
    broken = _elementwise_source("", "y = plugrad_no_such_function(x)", "float")
    assert "plugrad_no_such_function" in (_nvrtc_compile(broken) or "")


def test_row_kernels_compile_for_the_gpu():
    assert _nvrtc_compile(fused.ROW_SOURCE) is None


@pytest.mark.parametrize("ctype", ["float16", "float", "double"])
def test_sigmoid_relu_grad_and_dropout_compile_for_the_gpu(ctype):
    _skip_half_without_headers(ctype)
    for preamble, body in [(fused.SIGMOID_SOURCE, fused.SIGMOID_BODY), ("", fused.RELU_GRAD_BODY),
                           (random.PHILOX_SOURCE, random.DROPOUT_BODY)]:
        assert _nvrtc_compile(_elementwise_source(preamble, body, ctype)) is None


@pytest.mark.parametrize("ctype", ["float16", "float", "double", "bool", "signed char", "int"])
def test_random_draws_compile_for_every_dtype(ctype):
    _skip_half_without_headers(ctype)
    for function in ("plugrad_uniform_f", "plugrad_uniform_h", "plugrad_uniform_d",
                     "plugrad_normal_f", "plugrad_normal_d"):
        body = random.DRAW_BODY.format(function=function)
        assert _nvrtc_compile(_elementwise_source(random.PHILOX_SOURCE, body, ctype)) is None
