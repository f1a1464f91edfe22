"""MNIST files (the real ones when present, small generated ones otherwise) and the datasets
and transforms the data, CLI, jit and distributed tests share.

Kept in an importable module (not in the test files) so that DataLoader workers started
with the ``spawn`` method can unpickle the datasets and transforms defined here.
"""

from __future__ import annotations

import gzip
import os
import signal
import struct
import time

import numpy as np

from plugrad.data.dataset import MNIST, Dataset, StreamDataset
from plugrad.data.transform import Transform

_BESIDE_CHECKOUT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "datasets",
                                "mnist")


def real_mnist() -> str | None:
    """The folder holding the real MNIST files, or None when this machine has none.

    ``$PLUGRAD_DATA_DIR/mnist`` (where plugrad keeps the files it downloads) is looked at first,
    then ``../shared/datasets/mnist`` beside the checkout.
    """
    candidates = [_BESIDE_CHECKOUT]
    if os.environ.get("PLUGRAD_DATA_DIR"):
        candidates.insert(0, os.path.join(os.environ["PLUGRAD_DATA_DIR"], "mnist"))
    for folder in candidates:
        if all(os.path.exists(os.path.join(folder, name)) or
               os.path.exists(os.path.join(folder, name + ".gz"))
               for name in MNIST.split_files[True] + MNIST.split_files[False]):
            return os.path.abspath(folder)
    return None


NO_MNIST = "the real MNIST files are neither in $PLUGRAD_DATA_DIR/mnist nor beside the checkout"


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """Encode ``array`` (uint8) as an IDX file, written independently of the reader."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_file(path: str, data: bytes, gz: bool) -> str:
    if gz:
        path += ".gz"
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    return path


def make_mnist(root: str, n: int, train: bool = True, gz: bool = True, seed: int = 0):
    """Write a small valid image/label pair of IDX files; return (images, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    stem = "train" if train else "t10k"
    os.makedirs(root, exist_ok=True)
    write_file(os.path.join(root, stem + "-images-idx3-ubyte"), idx_bytes(images, 2051), gz)
    write_file(os.path.join(root, stem + "-labels-idx1-ubyte"), idx_bytes(labels, 2049), gz)
    return images, labels


class SquaresDataset(Dataset):
    """Item i: (a 4x4x1 uint8 image filled with i % 256, label i as int64)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full((4, 4, 1), i % 256, dtype=np.uint8), np.int64(i)

    def __len__(self) -> int:
        return self.n


class FailingDataset(SquaresDataset):
    """Raises ``ValueError('bad sample <i>')`` for index ``bad``."""

    def __init__(self, n: int, bad: int) -> None:
        super().__init__(n)
        self.bad = bad

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"bad sample {i}")
        return super().__getitem__(i)


class TwoArgError(Exception):
    """An exception that cannot be rebuilt from its pickled args."""

    def __init__(self, a, b):
        super().__init__(f"{a}-{b}")


class WeirdFailingDataset(SquaresDataset):
    def __getitem__(self, i):
        raise TwoArgError("x", i)


class SelfKillingDataset(SquaresDataset):
    """Kills its own process with SIGKILL on index ``bad`` (only inside a worker)."""

    def __init__(self, n: int, bad: int, main_pid: int) -> None:
        super().__init__(n)
        self.bad = bad
        self.main_pid = main_pid

    def __getitem__(self, i):
        if i == self.bad and os.getpid() != self.main_pid:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(i)


class SlowDataset(SquaresDataset):
    def __init__(self, n: int, delay: float) -> None:
        super().__init__(n)
        self.delay = delay

    def __getitem__(self, i):
        time.sleep(self.delay)
        return super().__getitem__(i)


class Counter(StreamDataset):
    """Streams (a 2-element float32 vector [i, -i], label i) for i < n."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield np.array([i, -i], dtype=np.float32), i


class LockedCounter(Counter):
    """A stream holding an unpicklable handle: workers must never need the dataset."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        import threading

        self.lock = threading.Lock()


class AddNoise(Transform):
    """A random transform drawing from NumPy's global RNG (per-sample noise)."""

    def apply(self, input):
        image, label = input
        return image.astype(np.int64) + np.random.randint(0, 1000, size=image.shape), label


class PidTransform(Transform):
    """Replaces the label by the pid of the process that ran the transform."""

    def apply(self, input):
        return input[0], os.getpid()
