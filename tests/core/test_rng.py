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
