"""DataLoader's keyword form (batch_size, shuffle, drop_last), Tensor datasets, and the
arguments it refuses when it is built."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.data as data
from plugrad import Tensor
from plugrad.data import ArrayDataset, DataLoader, RandomSampler


def test_datasets_are_exported_where_megengine_users_look():
    from plugrad.data import dataset

    for name in ("Dataset", "StreamDataset", "ArrayDataset", "ConcatDataset", "MNIST",
                 "FashionMNIST"):
        assert getattr(data, name) is getattr(dataset, name)


def test_tensor_dataset_in_shuffled_batches():
    features = Tensor(np.arange(50, dtype=np.float32).reshape(25, 2))
    labels = Tensor(np.arange(25, dtype=np.float32))
    loader = DataLoader(ArrayDataset(features, labels), batch_size=10, shuffle=True)
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [10, 10, 5]
    seen = np.concatenate([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(25)) and seen.tolist() != list(range(25))
    for x, y in batches:  # rows stay paired with their labels
        assert isinstance(x, np.ndarray) and (x[:, 0] == 2 * y).all()


def test_sequential_batches_and_drop_last():
    ds = ArrayDataset(np.arange(7))
    assert [b[0].tolist() for b in DataLoader(ds, batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(DataLoader(ds, batch_size=3, drop_last=True)) == 2
    assert len(DataLoader(ds)) == 7  # MegEngine's default: batches of one


def test_a_dataset_returning_tensors_is_collated():
    class Squares(data.Dataset):
        def __getitem__(self, i):
            return Tensor([float(i), float(i * i)])

        def __len__(self):
            return 4

    assert next(iter(DataLoader(Squares(), batch_size=4))).tolist() \
        == [[0, 0], [1, 1], [2, 4], [3, 9]]


@pytest.mark.parametrize("call, kind, words", [
    (lambda ds: DataLoader(ds, 10), TypeError,
     ["sampler must be a Sampler", "int 10", "batch_size=10, shuffle=True", "sampler=Random"]),
    (lambda ds: DataLoader(ds, RandomSampler(ds, batch_size=2), shuffle=True), ValueError,
     ["cannot be given with sampler", "batch_size=10"]),
    (lambda ds: DataLoader(ds, batch_size=0), ValueError, ["batch_size", "positive", "0"]),
    (lambda ds: DataLoader(ds, batch_size=2, shuffle="yes"), TypeError, ["shuffle", "bool"]),
    (lambda ds: DataLoader(ds, transform=lambda x: x), TypeError, ["transform", "apply_batch"]),
])
def test_wrong_arguments_are_refused_when_the_loader_is_built(call, kind, words):
    ds = ArrayDataset(np.arange(6))
    with pytest.raises(kind) as info:
        call(ds)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_megengine_1_13_positional_arguments():
    import inspect

    names = list(inspect.signature(DataLoader).parameters)
    assert names[:8] == ["dataset", "sampler", "transform", "collator", "num_workers", "timeout",
                         "preload", "parallel_stream"]
    ds = ArrayDataset(np.arange(4))
    loader = DataLoader(ds, RandomSampler(ds, batch_size=2), None, None, 0, 0, False, True)
    assert loader.parallel_stream and not loader.divide
    assert sorted(np.concatenate([b[0] for b in loader]).tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="divide"):
        DataLoader(ds, divide=True)  # a keyword now, still needing two or more workers
