"""Conv / pool kernels against deliberately naive float64 references.

The references loop over output positions in Python and share no code with the
kernels.  Gradients are also checked by adjoint identities (the convolution is
bilinear) and by float64 finite differences on tiny inputs.
"""

import itertools

import numpy as np
import pytest

from plugrad.backends.numpy_backend import conv as conv_mod
from plugrad.backends.numpy_backend import pool as pool_mod
from plugrad.conformance.checks import numeric_gradient
from tests.helpers.numerics import conv_geom, ref_conv2d, ref_conv_grads

CONV = conv_mod.kernels(np)
POOL = pool_mod.kernels(np)


# --------------------------------------------------------------------------
# naive references
# --------------------------------------------------------------------------
def pool_geom(shape, k, s, p):
    _, _, h, w = shape
    return (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1


def real_positions(i, j, shape, k, s, p):
    """Row-major list of the in-bounds input positions of window (i, j)."""
    _, _, h, w = shape
    out = []
    for a in range(k[0]):
        for b in range(k[1]):
            r, q = i * s[0] - p[0] + a, j * s[1] - p[1] + b
            if 0 <= r < h and 0 <= q < w:
                out.append((r, q))
    return out


def ref_max_pool(x, k, s, p):
    """Max and first (row-major) argmax over the real elements of every window."""
    x = x.astype(np.float64)
    oh, ow = pool_geom(x.shape, k, s, p)
    n_, c = x.shape[:2]
    y = np.zeros((n_, c, oh, ow))
    arg = {}
    for n, ch, i, j in itertools.product(range(n_), range(c), range(oh), range(ow)):
        best, where = -np.inf, None
        for r, q in real_positions(i, j, x.shape, k, s, p):
            if where is None or x[n, ch, r, q] > best:
                best, where = x[n, ch, r, q], (r, q)
        y[n, ch, i, j] = best
        arg[n, ch, i, j] = where
    return y, arg


def ref_max_pool_grad(g, x, k, s, p):
    _, arg = ref_max_pool(x, k, s, p)
    gx = np.zeros(x.shape)
    for (n, ch, i, j), (r, q) in arg.items():
        gx[n, ch, r, q] += g[n, ch, i, j]
    return gx


def ref_avg_pool(x, k, s, p, include_pad):
    x = x.astype(np.float64)
    oh, ow = pool_geom(x.shape, k, s, p)
    n_, c = x.shape[:2]
    y = np.zeros((n_, c, oh, ow))
    for n, ch, i, j in itertools.product(range(n_), range(c), range(oh), range(ow)):
        pos = real_positions(i, j, x.shape, k, s, p)
        div = k[0] * k[1] if include_pad else len(pos)
        y[n, ch, i, j] = sum(x[n, ch, r, q] for r, q in pos) / div
    return y


def ref_avg_pool_grad(g, shape, k, s, p, include_pad):
    gx = np.zeros(shape)
    for n, ch, i, j in np.ndindex(*g.shape):
        pos = real_positions(i, j, shape, k, s, p)
        div = k[0] * k[1] if include_pad else len(pos)
        for r, q in pos:
            gx[n, ch, r, q] += g[n, ch, i, j] / div
    return gx


# --------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------
# (N, C, H, W, O, KH, KW, stride, padding, dilation, groups)
CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (3, 2, 7, 6, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (3, 3, 8, 9, 6, 3, 2, (2, 2), (1, 0), (1, 1), 3),
    (2, 4, 9, 7, 4, 2, 3, (2, 1), (2, 1), (1, 1), 2),
    (1, 2, 9, 9, 4, 3, 3, (1, 1), (2, 2), (2, 2), 2),
    (3, 6, 6, 5, 6, 1, 1, (1, 1), (0, 0), (1, 1), 3),
    (3, 4, 7, 7, 5, 1, 1, (2, 2), (0, 0), (1, 1), 1),
    (2, 3, 4, 4, 2, 1, 1, (1, 1), (1, 1), (1, 1), 1),
    (2, 3, 11, 10, 2, 5, 4, (2, 2), (2, 1), (2, 1), 1),
    (3, 1, 12, 12, 6, 5, 5, (1, 1), (0, 0), (1, 1), 1),
    (1, 4, 5, 5, 2, 5, 5, (1, 1), (0, 0), (1, 1), 2),
    (2, 2, 6, 8, 3, 3, 3, (3, 2), (1, 1), (1, 2), 1),
    (3, 6, 7, 7, 6, 3, 3, (1, 2), (1, 1), (1, 1), 3),
    (2, 2, 8, 8, 2, 2, 2, (3, 3), (0, 0), (1, 1), 1),
    (3, 4, 6, 7, 4, 3, 3, (1, 1), (1, 2), (1, 1), 2),
]


def conv_ids(case):
    n, c, h, w, o, kh, kw, s, p, d, g = case
    return f"n{n}c{c}_{h}x{w}_o{o}k{kh}x{kw}_s{s[0]}{s[1]}p{p[0]}{p[1]}d{d[0]}{d[1]}g{g}"


def conv_data(case, dtype=np.float64, seed=0):
    n, c, h, w, o, kh, kw, s, p, d, g = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c // g, kh, kw)).astype(dtype)
    oh, ow = conv_geom(x.shape, wt.shape, s, p, d)
    gy = rng.standard_normal((n, o, oh, ow)).astype(dtype)
    return x, wt, gy, dict(stride=s, padding=p, dilation=d, groups=g)


# Kernel sets: the default CPU tuning, no batch blocking (one GEMM per group), blocks of one /
# two samples, and each im2col layout wherever it applies, so every layout branch is exercised.
CONV_SETS = {
    "default": CONV,
    "unblocked": conv_mod._make_kernels(np, {}, half_in_float32=True),
    "nb1": conv_mod._make_kernels(np, dict.fromkeys(("fwd", "grad_weight", "grad_input"), 1),
                                  half_in_float32=True),
    "wcols_last": conv_mod._make_kernels(np, {}, half_in_float32=True, gw_cols_first=False),
    "channels_first": conv_mod._make_kernels(np, conv_mod.CPU_BLOCK_BYTES, half_in_float32=True,
                                             layout="channels_first"),
    "channels_last": conv_mod._make_kernels(np, conv_mod.CPU_BLOCK_BYTES, half_in_float32=True,
                                            layout="channels_last"),
    "channels_last_nb1": conv_mod._make_kernels(
        np, dict.fromkeys(("fwd", "grad_weight", "grad_input", "pass"), 1),
        half_in_float32=True, layout="channels_last"),
}


@pytest.mark.parametrize("kset", sorted(CONV_SETS))
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_ids)
def test_conv_against_reference(case, kset):
    k = CONV_SETS[kset]
    x, w, gy, geo = conv_data(case)
    y = k["conv2d"](x, w, **geo)
    np.testing.assert_allclose(y, ref_conv2d(x, w, **geo), rtol=1e-10, atol=1e-10)
    gx_ref, gw_ref = ref_conv_grads(gy, x, w, **geo)
    gx = k["conv2d_grad_input"](gy, w, input_shape=x.shape, **geo)
    gw = k["conv2d_grad_weight"](gy, x, weight_shape=w.shape, **geo)
    assert gx.shape == x.shape and gw.shape == w.shape
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kset", sorted(CONV_SETS))
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_ids)
def test_conv_bias_is_added_per_output_channel(case, kset):
    """The fused bias: every layout branch adds b[o] to output channel o."""
    k = CONV_SETS[kset]
    x, w, _, geo = conv_data(case)
    b = np.random.default_rng(3).standard_normal((1, w.shape[0], 1, 1))
    y = k["conv2d_bias"](x, w, b, **geo)
    np.testing.assert_allclose(y, ref_conv2d(x, w, **geo) + b, rtol=1e-10, atol=1e-10)
    out = np.full(y.shape, np.nan)  # the ``out`` form a batch-splitting caller uses
    assert k["conv2d_bias"](x, w, b, out=out, **geo) is out
    np.testing.assert_array_equal(out, y)


def test_conv_bias_in_float16():
    """float16 input and bias: a float16 result within float16 rounding of the reference."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float16)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    b = rng.standard_normal((1, 4, 1, 1)).astype(np.float16)
    geo = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    y = CONV["conv2d_bias"](x, w, b, **geo)
    assert y.dtype == np.float16
    expected = (ref_conv2d(x, w, **geo) + b.astype(np.float64)).astype(np.float16)
    np.testing.assert_allclose(y.astype(np.float64), expected.astype(np.float64),
                               rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("case", CONV_CASES, ids=conv_ids)
def test_conv_grads_are_adjoints(case):
    """<g, conv(x, w)> == <grad_input(g, w), x> == <grad_weight(g, x), w>."""
    x, w, gy, geo = conv_data(case, seed=1)
    lhs = np.vdot(gy, CONV["conv2d"](x, w, **geo))
    gx = CONV["conv2d_grad_input"](gy, w, input_shape=x.shape, **geo)
    gw = CONV["conv2d_grad_weight"](gy, x, weight_shape=w.shape, **geo)
    np.testing.assert_allclose(np.vdot(gx, x), lhs, rtol=1e-11)
    np.testing.assert_allclose(np.vdot(gw, w), lhs, rtol=1e-11)


def test_conv_blocked_batch():
    """Batch split into blocks of two samples (N=6 -> 3 GEMM blocks), all paths."""
    for case in [(6, 4, 7, 7, 4, 3, 3, (1, 1), (1, 1), (1, 1), 2),
                 (6, 3, 9, 8, 2, 3, 2, (2, 1), (1, 0), (1, 2), 1)]:
        x, w, gy, geo = conv_data(case)
        per_sample = x.shape[1] * w.shape[2] * w.shape[3] * 8 * 9 * 9  # generous
        k = conv_mod._make_kernels(
            np, dict.fromkeys(("fwd", "grad_weight", "grad_input"), 2 * per_sample),
            half_in_float32=True)
        assert conv_mod._pick_block(6, per_sample, 2 * per_sample) == 2
        np.testing.assert_allclose(k["conv2d"](x, w, **geo), ref_conv2d(x, w, **geo), atol=1e-10)
        gx_ref, gw_ref = ref_conv_grads(gy, x, w, **geo)
        gx = k["conv2d_grad_input"](gy, w, input_shape=x.shape, **geo)
        gw = k["conv2d_grad_weight"](gy, x, weight_shape=w.shape, **geo)
        np.testing.assert_allclose(gx, gx_ref, atol=1e-10)
        np.testing.assert_allclose(gw, gw_ref, atol=1e-10)


def test_pick_block():
    assert conv_mod._pick_block(64, 100, None) == 64
    assert conv_mod._pick_block(64, 100, 6400) == 64
    assert conv_mod._pick_block(64, 100, 1000) == 8
    assert conv_mod._pick_block(64, 100, 50) == 1
    assert conv_mod._pick_block(7, 100, 600) == 1  # prime batch


def test_conv_grad_input_larger_input_shape():
    """conv_transpose2d use: input rows/cols never touched by a window get zero."""
    case = (2, 2, 8, 9, 3, 3, 3, (2, 2), (1, 1), (1, 1), 1)  # row 7 / col 8 uncovered
    x, w, gy, geo = conv_data(case)
    for k in CONV_SETS.values():
        gx = k["conv2d_grad_input"](gy, w, input_shape=x.shape, **geo)
        np.testing.assert_allclose(gx, ref_conv_grads(gy, x, w, **geo)[0], atol=1e-12)


def test_conv_finite_differences():
    case = (2, 2, 5, 4, 2, 3, 2, (2, 1), (1, 1), (1, 1), 2)
    x, w, gy, geo = conv_data(case, seed=3)
    gx = CONV["conv2d_grad_input"](gy, w, input_shape=x.shape, **geo)
    gw = CONV["conv2d_grad_weight"](gy, x, weight_shape=w.shape, **geo)
    num_x, num_w = numeric_gradient(CONV["conv2d"], [x, w], geo, gy, [0, 1])
    np.testing.assert_allclose(gx, num_x, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gw, num_w, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("case", [CONV_CASES[2], CONV_CASES[5], CONV_CASES[9], CONV_CASES[12]],
                         ids=conv_ids)
def test_conv_dtype_preserved(case, dtype):
    x, w, gy, geo = conv_data(case, dtype=dtype)
    y = CONV["conv2d"](x, w, **geo)
    gx = CONV["conv2d_grad_input"](gy, w, input_shape=x.shape, **geo)
    gw = CONV["conv2d_grad_weight"](gy, x, weight_shape=w.shape, **geo)
    for out in (y, gx, gw):
        assert out.dtype == dtype and out.flags.c_contiguous
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=2e-2, atol=5e-2)
    np.testing.assert_allclose(y, ref_conv2d(x, w, **geo), **tol)
    gx_ref, gw_ref = ref_conv_grads(gy, x, w, **geo)
    np.testing.assert_allclose(gx, gx_ref, **tol)
    np.testing.assert_allclose(gw, gw_ref, **{k: 4 * v for k, v in tol.items()})


def test_conv_non_contiguous_inputs_and_fresh_outputs():
    case = (3, 6, 6, 5, 6, 1, 1, (1, 1), (0, 0), (1, 1), 3)  # 1x1: no im2col copy
    x, w, gy, geo = conv_data(case)
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # F-ish strides
    gyt = np.ascontiguousarray(gy.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    y = CONV["conv2d"](xt, w, **geo)
    np.testing.assert_allclose(y, ref_conv2d(x, w, **geo), atol=1e-12)
    assert not np.shares_memory(y, xt)
    gx = CONV["conv2d_grad_input"](gyt, w, input_shape=x.shape, **geo)
    gw = CONV["conv2d_grad_weight"](gyt, xt, weight_shape=w.shape, **geo)
    gx_ref, gw_ref = ref_conv_grads(gy, x, w, **geo)
    np.testing.assert_allclose(gx, gx_ref, atol=1e-12)
    np.testing.assert_allclose(gw, gw_ref, atol=1e-12)
    assert not np.shares_memory(gx, gyt)


# --------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------
# (N, C, H, W, kernel, stride, padding)
POOL_CASES = [
    (2, 3, 8, 8, (2, 2), (2, 2), (0, 0)),  # tiled, LeNet style
    (1, 2, 7, 9, (2, 2), (2, 2), (0, 0)),  # floor drops the last row / column
    (3, 2, 7, 7, (3, 3), (2, 2), (1, 1)),  # overlapping, padded
    (2, 2, 6, 7, (3, 2), (1, 2), (1, 1)),  # non-square
    (1, 1, 5, 5, (1, 1), (1, 1), (0, 0)),  # identity
    (2, 3, 9, 8, (2, 3), (3, 3), (1, 1)),  # stride > kernel, padded
    (1, 2, 4, 4, (2, 2), (2, 2), (1, 1)),  # tiled including the padding
    (3, 2, 5, 6, (2, 2), (1, 1), (0, 0)),  # stride 1
    (1, 1, 9, 9, (3, 3), (3, 3), (0, 0)),
]


def pool_ids(case):
    n, c, h, w, k, s, p = case
    return f"n{n}c{c}_{h}x{w}_k{k[0]}{k[1]}s{s[0]}{s[1]}p{p[0]}{p[1]}"


def pool_data(case, ties, dtype=np.float64, seed=0):
    n, c, h, w, k, s, p = case
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: most windows hold several maxima
        x = rng.integers(-1, 2, size=(n, c, h, w)).astype(dtype)
    else:
        x = rng.permutation(n * c * h * w).reshape(n, c, h, w).astype(dtype) / 7
    oh, ow = pool_geom(x.shape, k, s, p)
    gy = rng.standard_normal((n, c, oh, ow)).astype(dtype)
    return x, gy, dict(kernel_size=k, stride=s, padding=p)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("case", POOL_CASES, ids=pool_ids)
def test_max_pool_against_reference(case, ties):
    x, gy, geo = pool_data(case, ties)
    y = POOL["max_pool2d"](x, **geo)
    y_ref, _ = ref_max_pool(x, **{"k": geo["kernel_size"], "s": geo["stride"], "p": geo["padding"]})
    np.testing.assert_array_equal(y, y_ref)
    gx = POOL["max_pool2d_grad"](gy, x, y, **geo)
    gx_ref = ref_max_pool_grad(gy, x, geo["kernel_size"], geo["stride"], geo["padding"])
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=0)
    assert gx.shape == x.shape


def test_max_pool_ties_route_to_first_maximum():
    x = np.ones((1, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 0, 3] = 2.0  # second window of row 0: max at (0,3) only
    gy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    geo = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
    gx = POOL["max_pool2d_grad"](gy, x, POOL["max_pool2d"](x, **geo), **geo)
    expect = np.zeros((4, 4))
    expect[1, 1], expect[0, 3], expect[2, 0], expect[2, 2] = 1.0, 2.0, 3.0, 4.0
    np.testing.assert_array_equal(gx[0, 0], expect)
    # overlapping windows, all equal: each window routes to its top-left element
    x = np.zeros((1, 1, 3, 3))
    geo = dict(kernel_size=(2, 2), stride=(1, 1), padding=(0, 0))
    gy = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    gx = POOL["max_pool2d_grad"](gy, x, POOL["max_pool2d"](x, **geo), **geo)
    np.testing.assert_array_equal(gx[0, 0], [[1, 2, 0], [3, 4, 0], [0, 0, 0]])


def test_max_pool_padding_never_wins():
    """Windows whose real elements are all -inf route to the first real element."""
    x = np.full((1, 1, 3, 3), -np.inf)
    geo = dict(kernel_size=(2, 2), stride=(2, 2), padding=(1, 1))
    y = POOL["max_pool2d"](x, **geo)
    assert np.all(y == -np.inf)
    gy = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    gx = POOL["max_pool2d_grad"](gy, x, y, **geo)
    np.testing.assert_array_equal(gx, ref_max_pool_grad(gy, x, (2, 2), (2, 2), (1, 1)))
    np.testing.assert_array_equal(gx[0, 0], [[1, 2, 0], [3, 4, 0], [0, 0, 0]])


@pytest.mark.parametrize("include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("case", POOL_CASES, ids=pool_ids)
def test_avg_pool_against_reference(case, include_pad):
    x, gy, geo = pool_data(case, ties=False)
    k, s, p = geo["kernel_size"], geo["stride"], geo["padding"]
    y = POOL["avg_pool2d"](x, count_include_pad=include_pad, **geo)
    np.testing.assert_allclose(y, ref_avg_pool(x, k, s, p, include_pad), rtol=1e-12, atol=1e-12)
    gx = POOL["avg_pool2d_grad"](gy, input_shape=x.shape, count_include_pad=include_pad, **geo)
    np.testing.assert_allclose(gx, ref_avg_pool_grad(gy, x.shape, k, s, p, include_pad),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [POOL_CASES[2], POOL_CASES[3], POOL_CASES[5]], ids=pool_ids)
def test_pool_finite_differences(case):
    x, gy, geo = pool_data(case, ties=False, seed=5)  # distinct values: max is smooth
    gx = POOL["max_pool2d_grad"](gy, x, POOL["max_pool2d"](x, **geo), **geo)
    [num] = numeric_gradient(POOL["max_pool2d"], [x], geo, gy, [0])
    np.testing.assert_allclose(gx, num, rtol=1e-5, atol=1e-6)
    for inc in (True, False):
        gx = POOL["avg_pool2d_grad"](gy, input_shape=x.shape, count_include_pad=inc, **geo)
        [num] = numeric_gradient(POOL["avg_pool2d"], [x], dict(geo, count_include_pad=inc), gy,
                                 [0])
        np.testing.assert_allclose(gx, num, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("case", [POOL_CASES[0], POOL_CASES[2], POOL_CASES[5]], ids=pool_ids)
def test_pool_dtype_preserved(case, dtype):
    x, gy, geo = pool_data(case, ties=True, dtype=dtype)
    k, s, p = geo["kernel_size"], geo["stride"], geo["padding"]
    y = POOL["max_pool2d"](x, **geo)
    gx = POOL["max_pool2d_grad"](gy, x, y, **geo)
    ya = POOL["avg_pool2d"](x, count_include_pad=False, **geo)
    gxa = POOL["avg_pool2d_grad"](gy, input_shape=x.shape, count_include_pad=False, **geo)
    for out in (y, gx, ya, gxa):
        assert out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_array_equal(y, ref_max_pool(x, k, s, p)[0].astype(dtype))
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=2e-3, atol=2e-3)
    # overlapping windows add two contributions in the input precision
    np.testing.assert_allclose(gx, ref_max_pool_grad(gy, x, k, s, p), **tol)
    np.testing.assert_allclose(ya, ref_avg_pool(x, k, s, p, False), **tol)
    np.testing.assert_allclose(gxa, ref_avg_pool_grad(gy, x.shape, k, s, p, False), **tol)


def test_pool_outputs_are_fresh():
    x, gy, geo = pool_data(POOL_CASES[4], ties=False)  # 1x1 identity pooling
    y = POOL["max_pool2d"](x, **geo)
    assert not np.shares_memory(y, x)
    assert not np.shares_memory(POOL["avg_pool2d"](x, count_include_pad=True, **geo), x)
    gx = POOL["max_pool2d_grad"](gy, x, y, **geo)
    assert not np.shares_memory(gx, gy)
    np.testing.assert_array_equal(gx, gy)


# --------------------------------------------------------------------------
# array-module genericity: the kernels must run on the API NumPy and CuPy share
# --------------------------------------------------------------------------
class SharedAPI:
    """NumPy behind a whitelist of names that CuPy also provides.

    Its ``__name__`` is not "numpy", so the kernels take their GPU-style
    configuration (no CPU batch blocking, float16 GEMMs in float16).
    """

    __name__ = "shared_api"
    ALLOWED = {"ascontiguousarray", "zeros", "empty", "full", "matmul", "maximum", "minimum",
               "multiply", "arange", "dtype", "float16", "float32", "float64", "inf", "nan"}

    class lib:  # noqa: N801
        class stride_tricks:  # noqa: N801
            as_strided = staticmethod(np.lib.stride_tricks.as_strided)

    def __getattr__(self, name):
        if name not in self.ALLOWED:
            raise AttributeError(f"{name} is not in the API shared with CuPy")
        return getattr(np, name)


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[2], CONV_CASES[5], CONV_CASES[8]],
                         ids=conv_ids)
def test_conv_on_shared_api(case):
    k = conv_mod.kernels(SharedAPI())
    x, w, gy, geo = conv_data(case)
    np.testing.assert_allclose(k["conv2d"](x, w, **geo), ref_conv2d(x, w, **geo), atol=1e-10)
    gx_ref, gw_ref = ref_conv_grads(gy, x, w, **geo)
    np.testing.assert_allclose(k["conv2d_grad_input"](gy, w, input_shape=x.shape, **geo),
                               gx_ref, atol=1e-10)
    np.testing.assert_allclose(k["conv2d_grad_weight"](gy, x, weight_shape=w.shape, **geo),
                               gw_ref, atol=1e-10)
    x16, w16, gy16, _ = conv_data(case, dtype=np.float16)
    assert k["conv2d"](x16, w16, **geo).dtype == np.float16
    assert k["conv2d_grad_input"](gy16, w16, input_shape=x.shape, **geo).dtype == np.float16
    assert k["conv2d_grad_weight"](gy16, x16, weight_shape=w.shape, **geo).dtype == np.float16


@pytest.mark.parametrize("case", [POOL_CASES[0], POOL_CASES[2], POOL_CASES[5]], ids=pool_ids)
def test_pool_on_shared_api(case):
    k = pool_mod.kernels(SharedAPI())
    x, gy, geo = pool_data(case, ties=True)
    kk, s, p = geo["kernel_size"], geo["stride"], geo["padding"]
    y = k["max_pool2d"](x, **geo)
    np.testing.assert_array_equal(y, ref_max_pool(x, kk, s, p)[0])
    np.testing.assert_allclose(k["max_pool2d_grad"](gy, x, y, **geo),
                               ref_max_pool_grad(gy, x, kk, s, p), rtol=1e-15)
    for inc in (True, False):
        np.testing.assert_allclose(k["avg_pool2d"](x, count_include_pad=inc, **geo),
                                   ref_avg_pool(x, kk, s, p, inc), atol=1e-12)
        np.testing.assert_allclose(
            k["avg_pool2d_grad"](gy, input_shape=x.shape, count_include_pad=inc, **geo),
            ref_avg_pool_grad(gy, x.shape, kk, s, p, inc), atol=1e-12)


def test_float32_conv_agrees_with_its_decomposition_at_lenet_shapes():
    """The fused conv kernel at LeNet's second-layer shapes in float32 (the conformance suite's
    fused checks use small float64 samples)."""
    import plugrad as P
    from plugrad.core.dispatch import apply
    from plugrad.core.registry import OPS

    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    fused = apply("conv2d", P.Tensor(x), P.Tensor(w), **attrs).numpy()
    reference = OPS["conv2d"].decomposition(P.Tensor(x), P.Tensor(w), **attrs).numpy()
    np.testing.assert_allclose(fused, reference, rtol=1e-4, atol=1e-4)
