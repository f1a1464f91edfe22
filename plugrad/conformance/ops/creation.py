"""Records of the creation primitives: full and arange against NumPy, random ones by properties."""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad import random as R
from plugrad.conformance.table import ALL_DTYPES, OpRecord, Sample, register
from plugrad.core.device import Device
from plugrad.core.dispatch import create


def _out(sample: Sample, dtype: np.dtype) -> str:
    return sample.kwargs["dtype"]


def _fill(dtype: np.dtype):
    return True if dtype == np.bool_ else (3 if dtype.kind in "iu" else 1.5)


def _full_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    value = _fill(dtype)
    return [
        Sample("0d", (), {"shape": (), "value": value, "dtype": dtype.name}, grad=False),
        Sample("matrix", (), {"shape": (2, 3), "value": value, "dtype": dtype.name}, grad=False),
        Sample("zeros", (), {"shape": (4,), "value": 0, "dtype": dtype.name}, grad=False),
        Sample("empty", (), {"shape": (0, 4), "value": value, "dtype": dtype.name}, grad=False),
    ]


def _arange_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = [
        Sample("count", (), {"start": 0, "stop": 5, "step": 1, "dtype": dtype.name}, grad=False),
        Sample("descending", (), {"start": 5, "stop": 0, "step": -2, "dtype": dtype.name},
               grad=False),
        Sample("empty", (), {"start": 3, "stop": 3, "step": 1, "dtype": dtype.name}, grad=False),
    ]
    if dtype.kind == "f":
        made.append(Sample("fractional", (), {"start": 1.5, "stop": 4, "step": 0.5,
                                                "dtype": dtype.name}, grad=False))
    return made


def _arange(start, stop, step, dtype):
    return F.arange(start, stop, step, dtype=dtype)


def _draws(device: Device, op: str, dtype: np.dtype, seed: int, shape: tuple = (4000,)):
    return create(op, device, shape=shape, dtype=dtype, seed=seed)


def _check_random(op: str, device: Device, dtype: np.dtype, mean: float, std: float) -> None:
    """Shape, dtype, determinism per seed, and the first two moments of a large sample."""
    a = _draws(device, op, dtype, 1234)
    b = _draws(device, op, dtype, 1234)
    c = _draws(device, op, dtype, 4321)
    assert a.shape == (4000,), f"{op}: shape {a.shape}; expected (4000,)"
    assert a.dtype == dtype, f"{op}: dtype {np.dtype(a.dtype).name}; expected {dtype.name}"
    host_a, host_b, host_c = a.numpy(), b.numpy(), c.numpy()
    assert np.array_equal(host_a, host_b), f"{op}: the same seed gave different numbers"
    assert not np.array_equal(host_a, host_c), f"{op}: different seeds gave the same numbers"
    values = host_a.astype(np.float64)
    assert np.isfinite(values).all(), f"{op}: non-finite values drawn"
    if op == "uniform":
        assert values.min() >= 0.0 and values.max() < 1.0, (
            f"uniform: values must lie in [0, 1); got min {values.min()}, max {values.max()}")
    assert abs(values.mean() - mean) < 0.03 * (1 + 3 * (op == "normal")), (
        f"{op}: sample mean {values.mean():.4f}; expected about {mean}")
    assert abs(values.std() - std) < 0.03 * (1 + 2 * (op == "normal")), (
        f"{op}: sample standard deviation {values.std():.4f}; expected about {std:.4f}")
    for shape in ((), (0, 3), (2, 3)):
        t = _draws(device, op, dtype, 7, shape)
        assert t.shape == shape, f"{op}: shape {t.shape}; expected {shape}"


def _check_uniform(device: Device, dtype: np.dtype) -> None:
    _check_random("uniform", device, dtype, 0.5, (1 / 12) ** 0.5)
    if dtype == np.float32:  # the public function draws float32 and rescales
        R.seed(3)
        t = R.uniform(-2.0, 3.0, size=(500,), device=device)
        values = t.numpy()
        assert t.dtype == np.float32 and values.min() >= -2.0 and values.max() < 3.0, (
            f"random.uniform(-2, 3): values must lie in [-2, 3); got [{values.min()}, "
            f"{values.max()}] of dtype {np.dtype(t.dtype).name}")


def _check_normal(device: Device, dtype: np.dtype) -> None:
    _check_random("normal", device, dtype, 0.0, 1.0)
    if dtype == np.float32:
        R.seed(3)
        t = R.normal(5.0, 0.5, size=(4000,), device=device)
        values = t.numpy().astype(np.float64)
        assert abs(values.mean() - 5.0) < 0.1 and abs(values.std() - 0.5) < 0.1, (
            f"random.normal(5, 0.5): sample mean {values.mean():.3f}, std {values.std():.3f}")


_RANDOM_DTYPES = ("float16", "float32", "float64")

register(
    OpRecord("full", F.full, None, _full_samples, ALL_DTYPES, grad=False,
             out_dtype=_out),
    OpRecord("arange", _arange, None, _arange_samples,
             ("float16", "float32", "float64", "int32"), grad=False, out_dtype=_out),
    OpRecord("uniform", R.uniform, None, None, _RANDOM_DTYPES, grad=False, check=_check_uniform),
    OpRecord("normal", R.normal, None, None, _RANDOM_DTYPES, grad=False, check=_check_normal),
)
