"""Samplers: batch partitions, epochs, rank splits and MegEngine's validation errors."""

import numpy as np
import pytest

from plugrad.data import (
    Infinite,
    MapSampler,
    RandomSampler,
    ReplacementSampler,
    SequentialSampler,
    StreamSampler,
)


def flat(batches):
    return [i for b in batches for i in b]


def test_sequential_batches_and_len():
    s = SequentialSampler(range(10), batch_size=4)
    assert list(s) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(s) == 3
    s = SequentialSampler(range(10), batch_size=4, drop_last=True)
    assert list(s) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(s) == 2


def test_sequential_with_indices():
    s = SequentialSampler(range(100), batch_size=2, indices=[7, 3, 9])
    assert list(s) == [[7, 3], [9]]
    assert len(s) == 2


def test_random_sampler_new_permutation_each_epoch_reproducible():
    s = RandomSampler(range(50), batch_size=8, seed=5)
    e1, e2 = list(s), list(s)
    assert sorted(flat(e1)) == list(range(50)) and sorted(flat(e2)) == list(range(50))
    assert flat(e1) != flat(e2)
    assert [len(b) for b in e1] == [8] * 6 + [2]
    t = RandomSampler(range(50), batch_size=8, seed=5)
    assert list(t) == e1 and list(t) == e2
    # Independent check of the permutation source: a RandomState with the same seed.
    rng = np.random.RandomState(5)
    assert flat(e1) == rng.permutation(50).tolist()
    assert flat(e2) == rng.permutation(50).tolist()


def test_random_sampler_indices_subset():
    s = RandomSampler(range(100), batch_size=3, indices=[10, 20, 30, 40], seed=0)
    got = flat(list(s))
    assert sorted(got) == [10, 20, 30, 40]
    assert len(s) == 2


@pytest.mark.parametrize("n,world", [(10, 3), (12, 4), (5, 4), (1, 3), (7, 2)])
def test_rank_split_disjoint_equal_padded(n, world):
    shares = [
        flat(SequentialSampler(range(n), batch_size=2, world_size=world, rank=r))
        for r in range(world)
    ]
    per_rank = -(-n // world)
    assert all(len(s) == per_rank for s in shares)
    # Hand-derived: pad the index list by repeating its head, then deal round-robin.
    padded = (list(range(n)) * (world * per_rank))[: world * per_rank]
    for r in range(world):
        assert shares[r] == padded[r::world]
    covered = set().union(*map(set, shares))
    assert covered == set(range(n))
    assert sum(len(s) for s in shares) == world * per_rank


def test_rank_split_random_uses_common_seed():
    # seed=None with world_size > 1 means seed 0 on every rank: shares must be disjoint.
    shares = [flat(RandomSampler(range(20), batch_size=5, world_size=4, rank=r)) for r in range(4)]
    assert sorted(sum(shares, [])) == list(range(20))
    assert len(RandomSampler(range(20), batch_size=2, world_size=4, rank=1)) == 3


def test_replacement_sampler():
    s = ReplacementSampler(range(5), batch_size=4, num_samples=10, seed=1)
    batches = list(s)
    assert [len(b) for b in batches] == [4, 4, 2] and len(s) == 3
    assert flat(batches) == np.random.RandomState(1).randint(5, size=10).tolist()
    w = ReplacementSampler(range(4), batch_size=100, num_samples=1000, weights=[0, 0, 1, 3], seed=0)
    got = np.array(flat(list(w)))
    assert set(got.tolist()) <= {2, 3}
    assert abs((got == 3).mean() - 0.75) < 0.06
    shares = [
        flat(
            ReplacementSampler(range(5), batch_size=3, num_samples=9, world_size=2, rank=r, seed=3)
        )
        for r in range(2)
    ]
    assert len(shares[0]) == len(shares[1]) == 5


def test_infinite_wraps():
    inf = Infinite(SequentialSampler(range(3), batch_size=2))
    it = iter(inf)
    assert [next(it) for _ in range(5)] == [[0, 1], [2], [0, 1], [2], [0, 1]]
    assert len(inf) == np.iinfo(np.int64).max
    assert inf.batch_size == 2


def test_stream_sampler():
    s = StreamSampler(batch_size=3)
    assert list(next(iter(s))) == [0, 1, 2]


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        (dict(batch_size=0), "batch_size should be a positive integer value"),
        (dict(batch_size=2.0), "batch_size should be a positive integer value"),
        (dict(batch_size=True), "batch_size should be a positive integer value"),
        (dict(drop_last=1), "drop_last should be a boolean value"),
        (dict(num_samples=-1), "num_samples should be a positive integer value"),
        (dict(world_size=0), "world_size should be a positive integer value"),
        (dict(world_size=2, rank=2), r"rank should be an integer in \[0, world_size=2\)"),
        (dict(world_size=2, rank=-1), r"rank should be an integer in \[0, world_size=2\)"),
    ],
)
def test_validation_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        MapSampler(range(10), **kwargs)


def test_other_validation_errors():
    with pytest.raises(ValueError, match="indices should be None or a sequence"):
        SequentialSampler(range(3), indices=5)
    with pytest.raises(ValueError, match="weights should be None or a sequence"):
        ReplacementSampler(range(3), weights=3)
    with pytest.raises(ValueError, match=r"len\(dataset\)=3 should be equal to len\(weights\)=2"):
        ReplacementSampler(range(3), weights=[1, 2])
    with pytest.raises(ValueError, match="batch_size should be a positive integer value"):
        StreamSampler(batch_size=0)
    with pytest.raises(NotImplementedError):
        list(MapSampler(range(3)))
