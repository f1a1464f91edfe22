"""plugrad.random.RNG: its own reproducible stream, independent of the global seed."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad
from plugrad import Tensor
from plugrad.random import RNG


def test_same_seed_same_numbers_and_other_calls_do_not_disturb_it():
    a, b = RNG(5), RNG(5)
    first = a.uniform(-1.0, 1.0, size=(4,)).numpy()
    plugrad.random.normal(size=(10,))  # the global stream moves; b's must not
    assert np.array_equal(first, b.uniform(-1.0, 1.0, size=(4,)).numpy())
    assert first.min() >= -1.0 and first.max() < 1.0 and first.dtype == np.float32
    assert not np.array_equal(first, RNG(6).uniform(-1.0, 1.0, size=(4,)).numpy())


def test_normal_moments_permutation_and_shuffle():
    rng = RNG(0)
    draws = rng.normal(3.0, 0.5, size=(20000,)).numpy().astype(np.float64)
    assert abs(draws.mean() - 3.0) < 0.02 and abs(draws.std() - 0.5) < 0.02
    order = rng.permutation(10)
    assert order.dtype == np.int32 and sorted(order.numpy().tolist()) == list(range(10))
    t = Tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
    assert rng.shuffle(t) is None
    rows = t.numpy()
    assert sorted(rows[:, 0].tolist()) == [1.0, 2.0, 3.0, 4.0] and (rows[:, 0] == rows[:, 1]).all()


def test_global_functions_follow_seed():
    plugrad.random.seed(3)
    a = plugrad.random.uniform(size=(3,)).numpy()
    plugrad.random.seed(3)
    assert np.array_equal(a, plugrad.random.uniform(size=(3,)).numpy())


@pytest.mark.parametrize("call, kind, words", [
    (lambda: RNG("x"), TypeError, ["RNG", "seed", "int"]),
    (lambda: RNG(1).uniform(2.0, 1.0), ValueError, ["uniform", "high"]),
    (lambda: RNG(1).normal(0.0, -1.0), ValueError, ["normal", "std"]),
    (lambda: RNG(1).permutation(-2), ValueError, ["permutation", "non-negative"]),
    (lambda: RNG(1).permutation(2.5), TypeError, ["permutation", "int"]),
    (lambda: RNG(1).shuffle([1, 2]), TypeError, ["shuffle", "Tensor"]),
])
def test_bad_arguments(call, kind, words):
    with pytest.raises(kind) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)


def test_size_none_draws_one_number_of_shape_1_as_megengine():
    rng = RNG(0)
    assert rng.uniform().shape == (1,) and rng.normal().shape == (1,)
    assert plugrad.random.uniform(size=(2, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match="low must be below high"):
        rng.uniform(1.0, 1.0)


def test_gamma_beta_poisson_shapes_follow_size_then_the_broadcast_parameters():
    rng = RNG(1)
    assert rng.gamma(2.0).shape == () and rng.gamma(2.0, size=(2, 2)).shape == (2, 2)
    shape, scale = Tensor([[1.0], [10.0]]), Tensor([1.0, 5.0])
    assert rng.gamma(shape, scale).shape == (2, 2)
    assert rng.gamma(shape, scale, size=2).shape == (2, 2, 2)
    assert rng.beta(Tensor([[0.5], [3.0]]), Tensor([0.5, 5.0]), size=(3,)).shape == (3, 2, 2)
    lam = Tensor([[1.0, 1.0], [10.0, 10.0]])
    assert rng.poisson(lam).shape == (2, 2) and rng.poisson(lam, size=(1, 3)).shape == (1, 3, 2, 2)
    assert rng.poisson(2.0, size=(0,)).shape == (0,)
    for draw in (rng.gamma(2.0, size=(3,)), rng.beta(2.0, 1.0, size=(3,)), rng.poisson(2.0, (3,))):
        assert draw.dtype == np.float32


def test_gamma_beta_poisson_are_reproducible_from_the_seed():
    for method, args in (("gamma", (0.5, 2.0)), ("beta", (2.0, 3.0)), ("poisson", (30.0,))):
        a = getattr(RNG(9), method)(*args, size=(50,)).numpy()
        b = getattr(RNG(9), method)(*args, size=(50,)).numpy()
        assert np.array_equal(a, b), method


def _ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest gap between the two samples' empirical CDFs (two-sample Kolmogorov-Smirnov)."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, points, "right") / a.size
                               - np.searchsorted(b, points, "right") / b.size)))


@pytest.mark.parametrize("k, theta", [(0.3, 1.0), (1.0, 2.0), (4.5, 0.5), (60.0, 1.0)])
def test_gamma_matches_numpys_gamma_sampler(k, theta):
    n = 20000
    ours = RNG(11).gamma(k, theta, size=(n,)).numpy().astype(np.float64)
    reference = np.random.default_rng(12).gamma(k, theta, size=n)
    # 1.95 * sqrt(2 / n) is the 0.1% critical distance of the two-sample test
    assert _ks_distance(ours, reference) < 1.95 * np.sqrt(2 / n)
    assert abs(ours.mean() - k * theta) < 5 * np.sqrt(k) * theta / np.sqrt(n)
    assert ours.min() > 0


def test_beta_matches_numpys_beta_sampler_and_its_moments():
    n = 20000
    ours = RNG(3).beta(0.5, 3.0, size=(n,)).numpy().astype(np.float64)
    assert _ks_distance(ours, np.random.default_rng(4).beta(0.5, 3.0, size=n)) \
        < 1.95 * np.sqrt(2 / n)
    mean, var = 0.5 / 3.5, 0.5 * 3.0 / (3.5 ** 2 * 4.5)
    assert abs(ours.mean() - mean) < 5 * np.sqrt(var / n) and 0 < ours.min() <= ours.max() < 1


@pytest.mark.parametrize("lam", [0.7, 6.0, 37.5, 900.0])
def test_poisson_counts_follow_the_poisson_probabilities(lam):
    import math

    n = 20000
    counts = RNG(5).poisson(lam, size=(n,)).numpy().astype(np.float64)
    assert (counts == np.round(counts)).all() and counts.min() >= 0
    # float64 reference probabilities, cells merged until each expects at least 20 draws
    ks = np.arange(int(lam + 12 * math.sqrt(lam) + 12))
    pmf = np.exp(ks * math.log(lam) - lam - np.array([math.lgamma(k + 1) for k in ks]))
    observed = np.bincount(counts.astype(int), minlength=ks.size)[:ks.size]
    expected, got, acc_e, acc_o = [], [], 0.0, 0
    for e, o in zip(pmf * n, observed):
        acc_e, acc_o = acc_e + e, acc_o + o
        if acc_e >= 20:
            expected.append(acc_e), got.append(acc_o)
            acc_e, acc_o = 0.0, 0
    expected[-1] += acc_e + n * (1 - pmf.sum())
    got[-1] += acc_o + int((counts >= ks.size).sum())
    chi2 = sum((o - e) ** 2 / e for o, e in zip(got, expected))
    dof = len(expected) - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof), (chi2, dof)  # far above the 99.9% point


@pytest.mark.parametrize("call, kind, words", [
    (lambda: RNG(1).gamma(0.0), ValueError, ["gamma", "shape", "positive", "0.0"]),
    (lambda: RNG(1).gamma(Tensor([1.0, -2.0])), ValueError, ["gamma", "shape", "-2.0"]),
    (lambda: RNG(1).gamma(1.0, scale="big"), TypeError, ["gamma", "scale", "str"]),
    (lambda: RNG(1).beta(Tensor([1.0, 2.0]), Tensor([1.0, 2.0, 3.0])), ValueError,
     ["beta", "broadcast", "alpha (2,)", "beta (3,)"]),
    (lambda: RNG(1).poisson(-1.0), ValueError, ["poisson", "lam", "positive"]),
])
def test_distribution_parameters_are_checked(call, kind, words):
    with pytest.raises(kind) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)
