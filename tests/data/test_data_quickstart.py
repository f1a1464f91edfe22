"""The data part of the MegEngine quick-start, with ``megengine`` replaced by ``plugrad``."""

import numpy as np
import pytest
from data_test_helpers import NO_MNIST, make_mnist, real_mnist

REAL_MNIST = real_mnist()


def _run_quickstart(MNIST_DATA_PATH):
    # --- verbatim from the quick-start (imports and names), megengine -> plugrad ---
    from plugrad.data.dataset import MNIST

    train_dataset = MNIST(MNIST_DATA_PATH, train=True)
    test_dataset = MNIST(MNIST_DATA_PATH, train=False)

    import plugrad.data as data
    import plugrad.data.transform as T

    train_sampler = data.RandomSampler(train_dataset, batch_size=64)
    test_sampler = data.SequentialSampler(test_dataset, batch_size=4)

    transform = T.Compose([
        T.Normalize(0.1307*255, 0.3081*255),
        T.Pad(2),
        T.ToMode("CHW"),
    ])

    train_dataloader = data.DataLoader(train_dataset, train_sampler, transform)
    test_dataloader = data.DataLoader(test_dataset, test_sampler, transform)
    # --- end of quick-start code ---
    return train_dataset, test_dataset, train_dataloader, test_dataloader


def _check(train_dataset, test_dataset, train_dataloader, test_dataloader):
    batch_data, batch_label = next(iter(train_dataloader))
    assert batch_data.shape == (min(64, len(train_dataset)), 1, 32, 32)
    assert batch_data.dtype == np.float32 and batch_label.dtype == np.int32
    assert len(train_dataloader) == -(-len(train_dataset) // 64)
    total = 0
    for _batch_data, batch_label in test_dataloader:
        total += len(batch_label)
    assert total == len(test_dataset)
    # The first test image, normalised by hand in float64 and padded with zeros.
    first, _ = next(iter(test_dataloader))
    ref = np.zeros((32, 32))
    ref[2:30, 2:30] = (test_dataset[0][0][:, :, 0] - 0.1307 * 255) / (0.3081 * 255)
    np.testing.assert_allclose(first[0, 0], ref, rtol=1e-5, atol=1e-5)


def test_quickstart_on_small_files(tmp_path):
    make_mnist(str(tmp_path), 130, train=True)
    make_mnist(str(tmp_path), 10, train=False, seed=1)
    _check(*_run_quickstart(str(tmp_path)))


@pytest.mark.skipif(REAL_MNIST is None, reason=NO_MNIST)
def test_quickstart_on_real_mnist():
    loaders = _run_quickstart(REAL_MNIST)
    assert len(loaders[0]) == 60000 and len(loaders[2]) == 938
    _check(*loaders)
