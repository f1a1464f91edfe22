"""Random kernels on the GPU: a counter-based generator (Philox-4x32-10), stateless and seeded.

plugrad draws one 64-bit seed per random call on the host (:mod:`plugrad.random`); the kernel
turns ``(seed, element index)`` into numbers. A CuPy ``Generator`` per call would first set up
curand state for thousands of threads, which costs more than the draw; here every element is
one independent hash, so a call is one kernel launch and the same seed gives the same tensor on
every GPU. The numbers differ from the CPU backend's (NumPy's PCG64): a seed reproduces a run on
one backend, not across backends.

``dropout`` draws exactly what ``uniform`` draws for the same seed and shape (element ``i`` of a
C-ordered array gets counter ``i``), so the fused kernel equals the op's decomposition.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

import numpy as np

__all__ = ["DRAW_BODY", "DROPOUT_BODY", "PHILOX_SOURCE", "kernels"]

# Philox-4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
# SC 2011): counter (index low, index high, 0, 0), key (seed low, seed high).
PHILOX_SOURCE = r"""
__device__ __forceinline__ void plugrad_philox4x32(const unsigned int counter[4],
                                                   unsigned int k0, unsigned int k1,
                                                   unsigned int r[4]) {
    unsigned int c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    for (int round = 0; round < 10; ++round) {
        if (round) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        unsigned int hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        unsigned int hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    r[0] = c0; r[1] = c1; r[2] = c2; r[3] = c3;
}

/* Four random words for element n under key (k0, k1): counter (n low, n high, 0, 0). */
__device__ __forceinline__ void plugrad_philox(unsigned long long n, unsigned int k0,
                                               unsigned int k1, unsigned int r[4]) {
    const unsigned int counter[4] = {(unsigned int)n, (unsigned int)(n >> 32), 0u, 0u};
    plugrad_philox4x32(counter, k0, k1, r);
}

/* [0, 1) with 24 random bits, as float32. */
__device__ __forceinline__ float plugrad_unit_f(unsigned int u) {
    return (float)(u >> 8) * 5.9604644775390625e-08f;
}

/* [0, 1) with 53 random bits, as float64. */
__device__ __forceinline__ double plugrad_unit_d(unsigned int a, unsigned int b) {
    return (double)((unsigned long long)(a >> 5) * 67108864ull + (b >> 6))
        * 1.1102230246251565e-16;
}

__device__ __forceinline__ float plugrad_uniform_f(unsigned long long n, unsigned int k0,
                                                   unsigned int k1) {
    unsigned int r[4];
    plugrad_philox(n, k0, k1, r);
    return plugrad_unit_f(r[0]);
}

/* [0, 1) in multiples of 2**-11, exact in float16: a float32 draw near 1 would round up to 1. */
__device__ __forceinline__ float plugrad_uniform_h(unsigned long long n, unsigned int k0,
                                                   unsigned int k1) {
    unsigned int r[4];
    plugrad_philox(n, k0, k1, r);
    return (float)(r[0] >> 21) * 4.8828125e-04f;
}

__device__ __forceinline__ double plugrad_uniform_d(unsigned long long n, unsigned int k0,
                                                    unsigned int k1) {
    unsigned int r[4];
    plugrad_philox(n, k0, k1, r);
    return plugrad_unit_d(r[0], r[1]);
}

/* Box-Muller; the radius uses (0, 1] so log never sees 0. */
__device__ __forceinline__ float plugrad_normal_f(unsigned long long n, unsigned int k0,
                                                  unsigned int k1) {
    unsigned int r[4];
    plugrad_philox(n, k0, k1, r);
    float u1 = (float)((r[0] >> 8) + 1u) * 5.9604644775390625e-08f;
    return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * plugrad_unit_f(r[1]));
}

__device__ __forceinline__ double plugrad_normal_d(unsigned long long n, unsigned int k0,
                                                   unsigned int k1) {
    unsigned int r[4];
    plugrad_philox(n, k0, k1, r);
    double u1 = plugrad_unit_d(r[0], r[1]) + 1.1102230246251565e-16;
    return sqrt(-2.0 * log(u1)) * cospi(2.0 * plugrad_unit_d(r[2], r[3]));
}
"""

#: Elementwise bodies over ``PHILOX_SOURCE``; ``i`` is the element's C-order index.
DRAW_BODY = "y = (T){function}((unsigned long long)i, k0, k1)"
DROPOUT_BODY = ("y = plugrad_uniform_f((unsigned long long)i, k0, k1) >= p "
                "? (T)(x * scale) : (T)0")


def _key(seed: int) -> tuple[np.uint32, np.uint32]:
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    return np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32)


def kernels(cupy: ModuleType) -> dict[str, Callable[..., Any]]:
    """``uniform``, ``normal`` and ``dropout`` for module ``cupy``."""

    def draw(function: str) -> Any:
        """An elementwise kernel filling its output ``y`` with ``function(i, k0, k1)``."""
        return cupy.ElementwiseKernel("uint32 k0, uint32 k1", "T y",
                                      DRAW_BODY.format(function=function), function,
                                      preamble=PHILOX_SOURCE)

    uniform_f, uniform_d = draw("plugrad_uniform_f"), draw("plugrad_uniform_d")
    uniform_h = draw("plugrad_uniform_h")
    normal_f, normal_d = draw("plugrad_normal_f"), draw("plugrad_normal_d")
    dropout_kernel = cupy.ElementwiseKernel(
        "T x, float32 p, T scale, uint32 k0, uint32 k1", "T y", DROPOUT_BODY,
        "plugrad_dropout", preamble=PHILOX_SOURCE)
    float64, float16 = cupy.dtype("float64"), cupy.dtype("float16")

    def uniform(*, shape, dtype, seed):
        # float64 draws 53 bits, float16 11 (so it stays below 1), others a float32 draw cast.
        out = cupy.empty(shape, dtype=dtype)
        kernel = uniform_d if out.dtype == float64 else \
            uniform_h if out.dtype == float16 else uniform_f
        kernel(*_key(seed), out)
        return out

    def normal(*, shape, dtype, seed):
        out = cupy.empty(shape, dtype=dtype)
        (normal_d if out.dtype == float64 else normal_f)(*_key(seed), out)
        return out

    def dropout(x, *, drop_prob, seed):
        # Element i of the C-ordered input meets uniform's element i: one layout for both.
        x = cupy.ascontiguousarray(x)
        out = cupy.empty(x.shape, dtype=x.dtype)
        scale = x.dtype.type(1.0 / (1.0 - drop_prob))
        dropout_kernel(x, np.float32(drop_prob), scale, *_key(seed), out)
        return out

    return {"uniform": uniform, "normal": normal, "dropout": dropout}
