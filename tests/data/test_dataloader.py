"""DataLoader in a single process: batching, validation, streams, preload, fast path."""

import numpy as np
import pytest

import plugrad.data as data
import plugrad.data.transform as T
from plugrad.data.dataset import MNIST, ArrayDataset
from tests.helpers.data import Counter, SquaresDataset, make_mnist


def batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert type(x) is type(y)
        if isinstance(x, tuple):
            batches_equal(list(x), list(y))
        else:
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)


def test_default_sampler_and_len():
    loader = data.DataLoader(SquaresDataset(5))
    assert len(loader) == 5
    batches = list(loader)
    assert len(batches) == 5
    images, labels = batches[3]
    assert images.shape == (1, 4, 4, 1) and labels.tolist() == [3]


def test_positional_signature_and_batches():
    ds = SquaresDataset(10)
    loader = data.DataLoader(ds, data.SequentialSampler(ds, batch_size=4), T.Normalize(0.0, 2.0))
    out = list(loader)
    assert [b[1].tolist() for b in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert out[2][0].dtype == np.float32
    np.testing.assert_array_equal(out[2][0][:, 0, 0, 0], [4.0, 4.5])


def test_validation():
    ds = SquaresDataset(3)
    with pytest.raises(ValueError, match="num_workers"):
        data.DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="timeout should not be negative"):
        data.DataLoader(ds, timeout=-1)
    with pytest.raises(ValueError, match="divide should not be set to True"):
        data.DataLoader(ds, num_workers=1, divide=True)
    with pytest.raises(ValueError, match="types of dataset and sampler do not match"):
        data.DataLoader(ds, data.StreamSampler(2))
    with pytest.raises(ValueError, match="types of dataset and sampler do not match"):
        data.DataLoader(Counter(3), data.SequentialSampler(ds))


def test_stream_dataset():
    loader = data.DataLoader(Counter(7), data.StreamSampler(batch_size=3))
    out = list(loader)
    assert [b[1].tolist() for b in out] == [[0, 1, 2], [3, 4, 5], [6]]
    np.testing.assert_array_equal(out[1][0], [[3, -3], [4, -4], [5, -5]])
    with pytest.raises(TypeError, match="no length"):
        len(loader)


def test_preload_same_batches_and_errors():
    ds = SquaresDataset(20)
    sampler = data.SequentialSampler(ds, batch_size=3)
    batches_equal(
        list(data.DataLoader(ds, sampler, preload=True)), list(data.DataLoader(ds, sampler))
    )
    it = iter(data.DataLoader(ds, sampler, preload=True))
    next(it)
    del it  # abandoned early: the thread must not block forever
    bad = data.DataLoader(
        ds, data.SequentialSampler(ds, batch_size=3, indices=[0, 1, 99]), preload=True
    )
    with pytest.raises(IndexError):
        list(bad)


def test_infinite_sampler():
    ds = SquaresDataset(3)
    it = iter(data.DataLoader(ds, data.Infinite(data.SequentialSampler(ds, batch_size=2))))
    assert [next(it)[1].tolist() for _ in range(4)] == [[0, 1], [2], [0, 1], [2]]


TRANSFORMS = [
    None,
    T.Compose([T.Normalize(0.1307 * 255, 0.3081 * 255), T.Pad(2), T.ToMode("CHW")]),
    T.Compose([T.Resize((20, 17)), T.CenterCrop((15, 11)), T.Normalize([3.0], [7.0])]),
    T.Compose([T.Resize(9, interpolation="nearest"), T.Pad((1, 2, 3, 4), value=5), T.ToMode()]),
    T.Normalize(order=("image", "image_category")),
]


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_fast_path_equals_per_sample_path(tmp_path, transform):
    make_mnist(str(tmp_path), 50, gz=False)
    ds = MNIST(str(tmp_path), download=False)

    class PlainCollator(data.Collator):  # any other collator disables the fast path
        pass

    def loader(collator=None):
        return data.DataLoader(
            ds, data.RandomSampler(ds, batch_size=16, seed=2), transform, collator=collator
        )

    assert iter(loader())._fetch.stacked
    assert not iter(loader(PlainCollator()))._fetch.stacked
    a = list(loader())
    b = list(loader(PlainCollator()))
    batches_equal(a, b)
    assert all(x[0].flags.c_contiguous for x in a)


def test_fast_path_array_dataset_single_array():
    x = np.arange(24, dtype=np.uint8).reshape(6, 2, 2, 1)
    ds = ArrayDataset(x)
    sampler = data.SequentialSampler(ds, batch_size=4)
    for transform in (None, T.Normalize(1.0, 2.0)):
        fast = list(data.DataLoader(ds, sampler, transform))
        slow = list(
            data.DataLoader(ds, sampler, transform, collator=type("C", (data.Collator,), {})())
        )
        batches_equal(fast, slow)


def test_fast_path_respects_overridden_getitem():
    class Doubled(ArrayDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x * 2, y

    ds = Doubled(np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1), np.arange(6))
    images, _ = next(iter(data.DataLoader(ds, data.SequentialSampler(ds, batch_size=6))))
    assert images.ravel().tolist() == [0, 2, 4, 6, 8, 10]
