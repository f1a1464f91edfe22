"""plugrad.random: reproducible from a seed, with the right statistics."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.random as R


def test_same_seed_same_numbers():
    R.seed(7)
    first = [R.uniform(size=(3,)).numpy(), R.normal(size=(2, 2)).numpy(), R.permutation(5).numpy()]
    R.seed(7)
    second = [R.uniform(size=(3,)).numpy(), R.normal(size=(2, 2)).numpy(), R.permutation(5).numpy()]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    R.seed(8)
    assert not np.array_equal(R.uniform(size=(3,)).numpy(), first[0])


def test_distributions():
    R.seed(0)
    u = R.uniform(-2, 4, size=(20000,)).numpy()
    n = R.normal(1.0, 3.0, size=(20000,)).numpy()
    assert u.dtype == np.float32 and u.min() >= -2 and u.max() < 4
    assert abs(u.mean() - 1.0) < 0.05
    assert abs(n.mean() - 1.0) < 0.1 and abs(n.std() - 3.0) < 0.1
    p = R.permutation(10)
    assert p.dtype == np.int32 and sorted(p.tolist()) == list(range(10))
    with pytest.raises(ValueError):
        R.normal(std=-1)


def test_get_state_and_set_state_replay_the_default_generator():
    R.seed(11)
    R.uniform(size=(3,))
    state = R.get_state()
    first = R.normal(size=(4,)).numpy()
    assert not np.array_equal(R.normal(size=(4,)).numpy(), first)
    R.set_state(state)
    np.testing.assert_array_equal(R.normal(size=(4,)).numpy(), first)
