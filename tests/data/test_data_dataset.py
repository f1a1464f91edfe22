"""Datasets (array, concat, stream), the Collator, and MNIST's IDX reading/validation."""

import gzip
import hashlib
import os
from collections import namedtuple

import numpy as np
import pytest
from data_test_helpers import NO_MNIST, idx_bytes, make_mnist, real_mnist, write_file

from plugrad.data import Collator
from plugrad.data.dataset import (
    MNIST,
    ArrayDataset,
    ConcatDataset,
    FashionMNIST,
    IDXFormatError,
    StreamDataset,
)

REAL_MNIST = real_mnist()


def test_array_dataset():
    x = np.arange(12).reshape(6, 2)
    y = np.arange(6) * 10
    ds = ArrayDataset(x, y)
    assert len(ds) == 6
    a, b = ds[4]
    assert a.tolist() == [8, 9] and b == 40
    with pytest.raises(ValueError, match=r"\[6, 5\]"):
        ArrayDataset(x, y[:5])


def test_concat_dataset():
    ds = ConcatDataset([ArrayDataset(np.arange(3)), ArrayDataset(np.arange(10, 12))])
    assert len(ds) == 5
    assert [ds[i][0] for i in range(5)] == [0, 1, 2, 10, 11]
    assert ds[-1][0] == 11 and ds[-5][0] == 0
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(IndexError):
        ds[-6]


def test_stream_dataset_has_no_index_or_len():
    class S(StreamDataset):
        def __iter__(self):
            yield 1

    with pytest.raises(AssertionError):
        S()[0]
    with pytest.raises(AssertionError):
        len(S())


def test_collator_structures():
    c = Collator()
    imgs = [np.full((2, 3), i, dtype=np.uint8) for i in range(4)]
    out = c.apply([(im, np.int32(i)) for i, im in enumerate(imgs)])
    assert isinstance(out, tuple) and out[0].shape == (4, 2, 3) and out[0].dtype == np.uint8
    assert out[1].tolist() == [0, 1, 2, 3] and out[1].dtype == np.int32
    assert c.apply([1.5, 2.0]).dtype == np.float64
    assert c.apply([1, 2]).tolist() == [1, 2]
    assert c.apply(["a", "b"]) == ["a", "b"]
    d = c.apply([{"x": 1, "y": np.zeros(2)}, {"x": 2, "y": np.ones(2)}])
    assert d["x"].tolist() == [1, 2] and d["y"].shape == (2, 2)
    P = namedtuple("P", "a b")
    p = c.apply([P(1, 2.0), P(3, 4.0)])
    assert isinstance(p, P) and p.a.tolist() == [1, 3]
    lst = c.apply([[1, 2], [3, 4]])
    assert isinstance(lst, list) and lst[0].tolist() == [1, 3]
    with pytest.raises(TypeError, match="Collator: inputs must contain"):
        c.apply([object()])


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_round_trip(tmp_path, gz):
    images, labels = make_mnist(str(tmp_path), 7, train=True, gz=gz)
    ds = MNIST(str(tmp_path), train=True, download=False)
    assert len(ds) == 7
    img, lab = ds[3]
    assert img.shape == (28, 28, 1) and img.dtype == np.uint8
    assert isinstance(lab, np.int32) and lab == labels[3]
    np.testing.assert_array_equal(img[:, :, 0], images[3])
    assert ds.arrays[0].flags.writeable
    assert ds.meta["images"]["count"] == 7


def test_mnist_test_split_and_raw_preferred(tmp_path):
    make_mnist(str(tmp_path), 3, train=False, gz=True, seed=1)
    images, _ = make_mnist(str(tmp_path), 4, train=False, gz=False, seed=2)
    ds = MNIST(str(tmp_path), train=False, download=False)
    assert len(ds) == 4  # the uncompressed pair wins
    np.testing.assert_array_equal(ds[0][0][:, :, 0], images[0])


def _corrupt_cases():
    good_img = np.zeros((3, 28, 28), np.uint8)
    good_lab = np.array([1, 2, 3], np.uint8)
    img = idx_bytes(good_img, 2051)
    return {
        "bad image magic": ("images", idx_bytes(good_img, 2049), "bad magic number 2049"),
        "bad label magic": (
            "labels",
            idx_bytes(good_lab, 2051)[:8] + bytes(3),
            "bad magic number 2051",
        ),
        "not idx": ("images", b"\x12\x34\x56\x78" + img[4:], "not an IDX file"),
        "float type": ("images", b"\x00\x00\x0d\x03" + img[4:], "data type code 0x0d"),
        "truncated data": ("images", img[:-5], "truncated"),
        "trailing bytes": ("images", img + b"xx", "too long"),
        "truncated header": ("images", img[:10], "truncated inside the header"),
        "empty": ("images", b"", "too short"),
        "wrong dims": (
            "images",
            idx_bytes(np.zeros((3, 27, 28), np.uint8), 2051),
            "dimension 1 is 27",
        ),
        "count mismatch": ("labels", idx_bytes(np.array([1, 2], np.uint8), 2049), "3 images but"),
        "label range": ("labels", idx_bytes(np.array([1, 2, 10], np.uint8), 2049), "label 10"),
    }


@pytest.mark.parametrize("case", sorted(_corrupt_cases()))
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_corruption_reports_file_and_problem(tmp_path, case, gz):
    which, data, message = _corrupt_cases()[case]
    root = str(tmp_path)
    write_file(
        os.path.join(root, "train-images-idx3-ubyte"),
        data if which == "images" else idx_bytes(np.zeros((3, 28, 28), np.uint8), 2051),
        gz,
    )
    write_file(
        os.path.join(root, "train-labels-idx1-ubyte"),
        data if which == "labels" else idx_bytes(np.array([1, 2, 3], np.uint8), 2049),
        gz,
    )
    with pytest.raises(IDXFormatError) as info:
        MNIST(root, download=False)
    text = str(info.value)
    assert message in text
    assert "train-{}-idx".format(which) in text


def test_mnist_damaged_gzip(tmp_path):
    root = str(tmp_path)
    make_mnist(root, 5, gz=True)
    path = os.path.join(root, "train-images-idx3-ubyte.gz")
    blob = open(path, "rb").read()
    with open(path, "wb") as f:  # cut the compressed stream short
        f.write(blob[: len(blob) // 2])
    with pytest.raises(IDXFormatError, match="train-images-idx3-ubyte.gz: corrupt gzip"):
        MNIST(root, download=False)
    with open(path, "wb") as f:  # flip a byte of the CRC trailer
        f.write(blob[:-8] + bytes([blob[-8] ^ 0xFF]) + blob[-7:])
    with pytest.raises(IDXFormatError, match="train-images-idx3-ubyte.gz: corrupt gzip"):
        MNIST(root, download=False)


def test_mnist_missing_files_message(tmp_path):
    root = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as info:
        MNIST(root, train=False, download=False)
    text = str(info.value)
    assert root in text
    assert "t10k-images-idx3-ubyte.gz" in text and "t10k-labels-idx1-ubyte.gz" in text
    assert "train-images" not in text and "download=False" in text


def test_mnist_optional_md5_check(tmp_path, caplog):
    root = str(tmp_path)
    images, labels = make_mnist(root, 2, gz=True)
    ds_class = type(
        "TinyMNIST",
        (MNIST,),
        {
            "raw_md5": {
                "train-images-idx3-ubyte": hashlib.md5(idx_bytes(images, 2051)).hexdigest(),
                "train-labels-idx1-ubyte": hashlib.md5(idx_bytes(labels, 2049)).hexdigest(),
            }
        },
    )
    assert len(ds_class(root, download=False, check_md5=True)) == 2
    # The real checksums do not match these files.
    with pytest.raises(IDXFormatError, match="MD5 of the uncompressed data"):
        MNIST(root, download=False, check_md5=True)
    with caplog.at_level("WARNING", logger="plugrad"):
        FashionMNIST(root, download=False, check_md5=True)
    assert "no known MD5" in caplog.text


def test_default_root_env(tmp_path, monkeypatch):
    from plugrad.data.dataset.mnist import default_root

    monkeypatch.setenv("PLUGRAD_DATA_DIR", str(tmp_path / "d"))
    assert default_root("mnist") == str(tmp_path / "d" / "mnist")
    monkeypatch.delenv("PLUGRAD_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert default_root("mnist") == str(tmp_path / "c" / "plugrad" / "datasets" / "mnist")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert default_root("mnist") == str(
        tmp_path / "h" / ".cache" / "plugrad" / "datasets" / "mnist"
    )


@pytest.mark.skipif(REAL_MNIST is None, reason=NO_MNIST)
def test_real_mnist():
    test = MNIST(REAL_MNIST, train=False, download=False)
    assert len(test) == 10000
    img, lab = test[0]
    assert img.shape == (28, 28, 1) and img.dtype == np.uint8 and lab.dtype == np.int32
    assert lab == 7  # the first test digit is a 7
    counts = np.bincount(test.arrays[1], minlength=10)
    assert counts.sum() == 10000 and counts.min() > 800
    # Independent decode of the first image straight from the gzip bytes.
    path = os.path.join(REAL_MNIST, "t10k-images-idx3-ubyte")
    with (gzip.open(path + ".gz", "rb") if os.path.exists(path + ".gz") else open(path, "rb")) as f:
        raw = f.read(16 + 784)
    np.testing.assert_array_equal(img[:, :, 0], np.frombuffer(raw[16:], np.uint8).reshape(28, 28))


def test_an_idx_file_with_zero_images_reads_as_an_empty_array(tmp_path):
    from plugrad.data.dataset.idx import read_idx

    path = write_file(str(tmp_path / "empty-idx3-ubyte"),
                      idx_bytes(np.zeros((0, 28, 28), np.uint8), 2051), gz=False)
    images = read_idx(path, 2051, (None, 28, 28))
    assert images.shape == (0, 28, 28) and images.dtype == np.uint8


@pytest.mark.parametrize("num_workers", [0, 2])
def test_samples_of_different_shapes_name_the_batch_position_and_dataset_index(num_workers):
    from plugrad.data import DataLoader, SequentialSampler

    class Ragged:
        def __getitem__(self, i):
            return (np.zeros((3, 3) if i == 5 else (2, 2), np.float32),)

        def __len__(self):
            return 8

    loader = DataLoader(Ragged(), SequentialSampler(Ragged(), batch_size=4),
                        num_workers=num_workers)
    with pytest.raises(ValueError, match=r"Collator: sample 1 of the batch has shape \(3, 3\) "
                                         r"but sample 0 has shape \(2, 2\).*dataset index 5"):
        list(loader)
