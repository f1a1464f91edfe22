"""Records of the functions written with existing ops: tile, repeat, eye, normalize, prelu,
hinge_loss, layer_norm, group_norm, conv1d, interpolate, pad's copying modes, and the gamma,
beta and Poisson samplers (by their properties, as the other random ops).

They declare no op of their own, so each record names the op it must reach; the references are
written independently in float64 NumPy (loops and formulas, not the decompositions), and the
gradients are checked against central differences like every other record.
"""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad import random as R
from plugrad.conformance import samples as S
from plugrad.conformance.ops.conv import small
from plugrad.conformance.table import ALL_DTYPES, Arg, OpRecord, Sample, register
from plugrad.random import RNG

_F32_64 = ("float32", "float64")
_FLOATS = ("float16", "float32", "float64")


def _arg(rng, shape, dtype, layout="c", domain=S.values):
    return Arg(domain(rng, shape, dtype), layout)


# -- tile and repeat ------------------------------------------------------------------------
def _tile_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample("matrix", (_arg(rng, (2, 3), dtype),), {"reps": (2, 1)}),
        Sample("0d", (_arg(rng, (), dtype),), {"reps": (3,)}),
        Sample("new-axes", (_arg(rng, (3,), dtype),), {"reps": (2, 2)}),
        Sample("empty", (_arg(rng, (0, 3), dtype),), {"reps": (2, 2)}),
        Sample("transposed", (_arg(rng, (3, 2), dtype, "t"),), {"reps": (1, 2)}),
        Sample("strided", (_arg(rng, (2, 3), dtype, "s"),), {"reps": (2, 3)}),
    ]


def _tile_reference(x: np.ndarray, reps) -> np.ndarray:
    return np.tile(x, reps)


def _repeat_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample("flat", (_arg(rng, (2, 3), dtype),), {"repeats": 2, "axis": None}),
        Sample("axis0", (_arg(rng, (2, 3), dtype),), {"repeats": 3, "axis": 0}),
        Sample("axis-1", (_arg(rng, (2, 2, 3), dtype),), {"repeats": 2, "axis": -1}),
        Sample("0d", (_arg(rng, (), dtype),), {"repeats": 4, "axis": None}),
        Sample("zero-repeats", (_arg(rng, (3,), dtype),), {"repeats": 0, "axis": 0}),
        Sample("transposed", (_arg(rng, (3, 2), dtype, "t"),), {"repeats": 2, "axis": 1}),
        Sample("strided", (_arg(rng, (2, 3), dtype, "s"),), {"repeats": 2, "axis": 0}),
    ]


def _repeat_reference(x: np.ndarray, repeats: int, axis) -> np.ndarray:
    return np.repeat(x, repeats, axis=axis)


# -- pad's reflect and replicate modes -------------------------------------------------------
def _pad_copy_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample("reflect-both", (_arg(rng, (3, 4), dtype),),
               {"pad_width": ((1, 2), (3, 1)), "mode": "reflect"}),
        Sample("reflect-leading", (_arg(rng, (3, 2, 2), dtype, "t"),),
               {"pad_width": ((2, 0),), "mode": "reflect"}),
        Sample("replicate", (_arg(rng, (3, 2), dtype, "s"),),
               {"pad_width": ((0, 2), (2, 3)), "mode": "replicate"}),
        Sample("edge-1d", (_arg(rng, (1,), dtype),), {"pad_width": ((2, 2),), "mode": "edge"}),
        Sample("empty-rows", (_arg(rng, (0, 3), dtype),),
               {"pad_width": ((0, 0), (1, 1)), "mode": "replicate"}),
    ]


def _pad_copy(x, pad_width, mode):
    return F.pad(x, pad_width, mode=mode)


def _pad_copy_reference(x: np.ndarray, pad_width, mode: str) -> np.ndarray:
    width = tuple(pad_width) + ((0, 0),) * (x.ndim - len(pad_width))
    return np.pad(x, width, mode="reflect" if mode == "reflect" else "edge")


# -- eye ------------------------------------------------------------------------------------
def _eye_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample(label, (), {"N": n, "M": m, "dtype": dtype.name}, grad=False)
            for label, n, m in (("square", 3, None), ("wide", 2, 4), ("tall", 4, 1),
                                ("empty", 0, 3))]


def _eye_reference(N: int, M, dtype: str) -> np.ndarray:
    return np.eye(N, M)


def _eye_dtype(sample: Sample, dtype: np.dtype) -> str:
    return sample.kwargs["dtype"]


# -- normalize, prelu and hinge_loss ----------------------------------------------------------
def _normalize_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    away = S.away_from_zero
    made = [
        Sample("vector", (_arg(rng, (6,), dtype, domain=away),), {"ord": None, "axis": None}),
        Sample("max-rows", (_arg(rng, (4, 3), dtype, domain=away),),
               {"ord": float("inf"), "axis": 1}),
        Sample("rows", (_arg(rng, (3, 4), dtype, domain=away),), {"ord": 2, "axis": 1}),
        Sample("l1-columns", (_arg(rng, (3, 4), dtype, domain=away),), {"ord": 1, "axis": 0}),
        Sample("ord3", (_arg(rng, (5,), dtype, domain=away),), {"ord": 3, "axis": 0}),
        Sample("transposed", (_arg(rng, (3, 4), dtype, "t", away),), {"ord": 2, "axis": -1}),
    ]
    if dtype.itemsize > 2:  # eps = 1e-12 is 0 in float16, where a zero row gives 0 / 0
        made.append(Sample("zeros", (Arg(np.zeros((2, 2), dtype)),), {"ord": 2, "axis": 1},
                           grad=False))
    return made


def _normalize(x, ord, axis):
    return F.normalize(x, ord, axis)


def _normalize_reference(x: np.ndarray, ord, axis) -> np.ndarray:
    p = 2.0 if ord is None else float(ord)
    if p == np.inf:
        length = np.max(np.abs(x), axis=axis, keepdims=True)
    else:
        length = np.sum(np.abs(x) ** p, axis=axis, keepdims=True) ** (1.0 / p)
    return x / np.maximum(length, 1e-12)


def _prelu_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    away = S.away_from_zero
    return [
        Sample("shared", (_arg(rng, (4, 3), dtype, domain=away), _arg(rng, (1,), dtype))),
        Sample("channels", (_arg(rng, (2, 3, 2, 2), dtype, domain=away),
                            _arg(rng, (1, 3, 1, 1), dtype))),
        Sample("0d", (_arg(rng, (), dtype, domain=away), _arg(rng, (1,), dtype))),
        Sample("transposed", (_arg(rng, (4, 3), dtype, "t", away), _arg(rng, (3,), dtype))),
    ]


def _prelu_reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, w * x)  # w broadcasts like any elementwise operand


def _hinge_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for norm in ("L1", "L2"):
        for reduction, shape in (("mean", (4, 3)), ("sum", (2, 5)), ("none", (3, 2))):
            sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dtype)
            made.append(Sample(f"{norm}-{reduction}", (_arg(rng, shape, dtype),
                                                      Arg(sign, grad=False)),
                               {"norm": norm, "reduction": reduction}))
    return made


def _hinge(pred, label, norm, reduction):
    return F.nn.hinge_loss(pred, label, norm, reduction)


def _hinge_reference(pred: np.ndarray, label: np.ndarray, norm: str,
                     reduction: str) -> np.ndarray:
    margin = np.maximum(1.0 - pred * label, 0.0)
    per_sample = np.sum(margin if norm == "L1" else margin ** 2, axis=1)
    if reduction == "mean":
        return np.mean(per_sample)
    if reduction == "sum":
        return np.sum(per_sample)
    return per_sample  # "none"


# -- layer_norm and group_norm --------------------------------------------------------------
def _layer_norm_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def sample(label, shape, normalized, affine, layout="c"):
        params = (_arg(rng, normalized, dtype), _arg(rng, normalized, dtype)) if affine \
            else (None, None)
        return Sample(label, (_arg(rng, shape, dtype, layout),) + params,
                      {"normalized_shape": normalized, "affine": affine})

    return [sample("last", (3, 4), (4,), True), sample("two-axes", (2, 3, 4), (3, 4), True),
            sample("plain", (2, 5), (5,), False),
            sample("transposed", (4, 3), (3,), True, "t")]


def _layer_norm(x, weight, bias, normalized_shape, affine):
    return F.nn.layer_norm(x, normalized_shape, affine, weight, bias)


def _standardized(x: np.ndarray, axes: tuple) -> np.ndarray:
    centered = x - x.mean(axis=axes, keepdims=True)
    return centered / np.sqrt((centered ** 2).mean(axis=axes, keepdims=True) + 1e-5)


def _layer_norm_reference(x, weight, bias, normalized_shape, affine) -> np.ndarray:
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    out = _standardized(x, axes)
    return out * weight + bias if affine else out


def _group_norm_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def sample(label, shape, groups, affine, layout="c"):
        c = shape[1]
        params = (_arg(rng, (c,), dtype), _arg(rng, (c,), dtype)) if affine else (None, None)
        return Sample(label, (_arg(rng, shape, dtype, layout),) + params,
                      {"num_groups": groups, "affine": affine})

    return [sample("images", (2, 4, 2, 3), 2, True), sample("sequence", (3, 6, 2), 3, True),
            sample("one-group", (2, 3, 4), 1, False),
            sample("per-channel", (2, 4, 3), 4, True, "s")]


def _group_norm(x, weight, bias, num_groups, affine):
    return F.nn.group_norm(x, num_groups, affine, weight, bias)


def _group_norm_reference(x, weight, bias, num_groups, affine) -> np.ndarray:
    n, c = x.shape[:2]
    grouped = x.reshape(n, num_groups, -1)
    out = _standardized(grouped, (2,)).reshape(x.shape)
    if not affine:
        return out
    shape = (1, c) + (1,) * (x.ndim - 2)
    return out * weight.reshape(shape) + bias.reshape(shape)


# -- conv1d ---------------------------------------------------------------------------------
def _conv1d_samples(bias: bool):
    def generate(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        made = []
        for label, xs, ws, attrs in (
                ("plain", (2, 3, 7), (4, 3, 3), {}),
                ("strided-padded", (1, 2, 8), (3, 2, 2), {"stride": 2, "padding": 1}),
                ("dilated", (2, 2, 9), (2, 2, 3), {"dilation": 2}),
                ("grouped", (1, 4, 6), (2, 2, 2, 3), {"groups": 2, "padding": 1})):
            args: tuple[Arg, ...] = (Arg(small(rng, xs, dtype)), Arg(small(rng, ws, dtype)))
            out_channels = ws[0] * ws[1] if len(ws) == 4 else ws[0]
            if bias:
                args += (Arg(small(rng, (out_channels,), dtype)),)
            made.append(Sample(label, args, attrs))
        return made

    return generate


def _conv1d_reference(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    if w.ndim == 4:
        w = w.reshape((-1,) + w.shape[2:])
    n, c, length = x.shape
    out_channels, group_in, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    out_len = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((n, out_channels, out_len))
    per_group = out_channels // groups
    for o in range(out_channels):
        g = o // per_group
        for t in range(out_len):
            for ci in range(group_in):
                for j in range(k):
                    out[:, o, t] += w[o, ci, j] * xp[:, g * group_in + ci,
                                                     t * stride + j * dilation]
    if b is not None:
        out += b.reshape(1, -1, 1)
    return out


# -- interpolate ----------------------------------------------------------------------------
def _interp_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample("bilinear-up", (_arg(rng, (1, 2, 3, 4), dtype),),
               {"size": (5, 7), "mode": "bilinear", "align_corners": None}),
        Sample("bilinear-down-corners", (_arg(rng, (2, 1, 5, 6), dtype),),
               {"size": (3, 4), "mode": "bilinear", "align_corners": True}),
        Sample("bilinear-scale", (_arg(rng, (1, 1, 2, 3), dtype, "s"),),
               {"scale_factor": 2.0, "mode": "bilinear", "align_corners": False}),
        Sample("linear", (_arg(rng, (2, 3, 4), dtype),),
               {"size": 6, "mode": "linear", "align_corners": False}),
        Sample("linear-corners", (_arg(rng, (1, 2, 5), dtype),),
               {"size": 3, "mode": "linear", "align_corners": True}),
        Sample("one-row", (_arg(rng, (1, 1, 1, 3), dtype),),
               {"size": (2, 5), "mode": "bilinear", "align_corners": True}),
        Sample("trilinear", (_arg(rng, (1, 2, 2, 3, 2), dtype),),
               {"size": (3, 2, 4), "mode": "trilinear", "align_corners": False}),
        Sample("trilinear-corners", (_arg(rng, (1, 1, 3, 2, 2), dtype),),
               {"scale_factor": 1.5, "mode": "trilinear", "align_corners": True}),
        Sample("bicubic-up", (_arg(rng, (1, 2, 3, 4), dtype),),
               {"size": (5, 7), "mode": "bicubic"}),
        Sample("bicubic-down", (_arg(rng, (2, 1, 6, 5), dtype, "s"),),
               {"size": (3, 2), "mode": "bicubic"}),
    ]


def _nearest_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample("up", (_arg(rng, (1, 2, 2, 3), dtype),), {"size": (4, 5), "mode": "nearest"}),
        Sample("down", (_arg(rng, (2, 1, 5, 4), dtype),), {"size": (2, 3), "mode": "nearest"}),
        Sample("scale", (_arg(rng, (1, 1, 3, 2), dtype, "s"),),
               {"scale_factor": 2, "mode": "nearest"}),
        Sample("uneven", (_arg(rng, (1, 1, 2, 14), dtype),), {"size": (3, 2), "mode": "nearest"}),
    ]


def _interpolate(x, size=None, scale_factor=None, mode="bilinear", align_corners=None):
    return F.nn.interpolate(x, size, scale_factor, mode, align_corners)


def _keys(d: float) -> float:
    """Keys' cubic convolution kernel with a = -0.75."""
    a, d = -0.75, abs(d)
    if d <= 1:
        return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
    return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a if d < 2 else 0.0


def _sample_1d(src: int, dst: int, align_corners: bool, mode: str):
    """(input position, weight) pairs per output position, by the formulas in the docstring."""
    picks = []
    for d in range(dst):
        if mode == "nearest":  # MegEngine's float32 arithmetic: d / float32(dst / src)
            scale = np.float32(dst) / np.float32(src)
            picks.append([(min(int(np.float32(d) / scale), src - 1), 1.0)])
            continue
        if mode == "bicubic":
            pos = (d + 0.5) * src / dst - 0.5
            base = int(np.floor(pos))
            picks.append([(min(max(j, 0), src - 1), _keys(pos - j))
                          for j in range(base - 1, base + 3)])
            continue
        if align_corners:
            pos = d * (src - 1) / (dst - 1) if dst > 1 else 0.0
        else:
            pos = max((d + 0.5) * src / dst - 0.5, 0.0)
        low = min(int(np.floor(pos)), src - 1)
        picks.append([(low, 1 - (pos - low)), (min(low + 1, src - 1), pos - low)])
    return picks


def _interpolate_reference(x, size=None, scale_factor=None, mode="bilinear",
                           align_corners=None) -> np.ndarray:
    spatial = x.ndim - 2
    if size is None:
        size = tuple(int(np.floor(np.float32(n * scale_factor))) for n in x.shape[2:])
    elif isinstance(size, int):
        size = (size,) * spatial
    out = x
    for axis, dst in zip(range(2, x.ndim), size):
        picks = _sample_1d(out.shape[axis], dst, bool(align_corners), mode)
        slices = [sum(w * np.take(out, i, axis=axis) for i, w in taps) for taps in picks]
        out = np.stack(slices, axis=axis)
    return out


# -- gamma, beta and Poisson: properties of large samples ------------------------------------
def _check_sampler(name: str, draw, mean: float, std: float, integral: bool = False) -> None:
    """Shape, dtype, reproducibility per seed and the first two moments of 4000 draws."""
    a, b, c = draw(1234), draw(1234), draw(4321)
    assert a.shape == (4000,) and a.dtype == np.float32, (
        f"random.{name}: shape {a.shape} dtype {np.dtype(a.dtype).name}; expected (4000,) "
        f"float32")
    host = a.numpy().astype(np.float64)
    assert np.array_equal(host, b.numpy()), f"random.{name}: the same seed gave other numbers"
    assert not np.array_equal(host, c.numpy()), f"random.{name}: two seeds gave the same numbers"
    assert np.isfinite(host).all() and host.min() >= 0, f"random.{name}: values out of range"
    if integral:
        assert (host == np.round(host)).all(), f"random.{name}: non-integer counts"
    # 5 standard errors of the mean; the spread within 10% of its expectation
    assert abs(host.mean() - mean) < 5 * std / np.sqrt(host.size), (
        f"random.{name}: sample mean {host.mean():.4f}; expected about {mean:.4f}")
    assert abs(host.std() - std) < 0.1 * std, (
        f"random.{name}: sample standard deviation {host.std():.4f}; expected about {std:.4f}")


def _check_gamma(device, dtype: np.dtype) -> None:
    for k, theta in ((0.5, 2.0), (3.0, 1.0)):
        _check_sampler(f"gamma({k}, {theta})",
                       lambda seed, k=k, theta=theta:
                       RNG(seed, device=device).gamma(k, theta, size=(4000,)),
                       k * theta, np.sqrt(k) * theta)


def _check_beta(device, dtype: np.dtype) -> None:
    a, b = 2.0, 5.0
    _check_sampler("beta(2, 5)", lambda seed: RNG(seed, device=device).beta(a, b, size=(4000,)),
                   a / (a + b), np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))))


def _check_poisson(device, dtype: np.dtype) -> None:
    for lam in (3.0, 250.0):  # counted one by one, and with gamma jumps
        _check_sampler(f"poisson({lam})",
                       lambda seed, lam=lam: RNG(seed, device=device).poisson(lam, size=(4000,)),
                       lam, np.sqrt(lam), integral=True)


register(
    OpRecord("broadcast_to", F.tile, _tile_reference, _tile_samples, ALL_DTYPES, name="tile"),
    OpRecord("broadcast_to", F.repeat, _repeat_reference, _repeat_samples, ALL_DTYPES,
             name="repeat"),
    OpRecord("eq", F.eye, _eye_reference, _eye_samples, ALL_DTYPES, name="eye", grad=False,
             out_dtype=_eye_dtype),
    OpRecord("maximum", _normalize, _normalize_reference, _normalize_samples, _FLOATS,
             name="normalize", tol={"float16": (2e-2, 2e-2)}),
    OpRecord("maximum", F.nn.prelu, _prelu_reference, _prelu_samples, _FLOATS, name="prelu"),
    OpRecord("maximum", _hinge, _hinge_reference, _hinge_samples, _FLOATS, name="hinge_loss",
             tol={"float16": (2e-2, 5e-2)}),
    OpRecord("mean", _layer_norm, _layer_norm_reference, _layer_norm_samples, _F32_64,
             name="layer_norm", tol={"float32": (1e-4, 1e-5)}),
    OpRecord("mean", _group_norm, _group_norm_reference, _group_norm_samples, _F32_64,
             name="group_norm", tol={"float32": (1e-4, 1e-5)}),
    OpRecord("conv2d", F.conv1d, _conv1d_reference, _conv1d_samples(False), _F32_64,
             name="conv1d", tol={"float32": (1e-4, 1e-5)}),
    OpRecord("conv2d_bias", F.conv1d, _conv1d_reference, _conv1d_samples(True), _F32_64,
             name="conv1d_bias", tol={"float32": (1e-4, 1e-5)}),
    OpRecord("matmul", _interpolate, _interpolate_reference, _interp_samples, _FLOATS,
             name="interpolate", tol={"float16": (2e-2, 2e-2), "float32": (1e-5, 1e-6)}),
    OpRecord("getitem", _interpolate, _interpolate_reference, _nearest_samples, _FLOATS,
             name="interpolate_nearest"),
    OpRecord("getitem", _pad_copy, _pad_copy_reference, _pad_copy_samples, ALL_DTYPES,
             name="pad_copy"),
    OpRecord("normal", R.gamma, None, None, ("float32",), name="gamma", grad=False,
             check=_check_gamma),
    OpRecord("normal", R.beta, None, None, ("float32",), name="beta", grad=False,
             check=_check_beta),
    OpRecord("normal", R.poisson, None, None, ("float32",), name="poisson", grad=False,
             check=_check_poisson),
)
