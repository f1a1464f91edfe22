"""MNIST and Fashion-MNIST, read from the four original IDX files (gzipped or raw)."""

from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .download import DownloadError, download_file, md5sum
from .idx import IMAGES_MAGIC, LABELS_MAGIC, IDXFormatError, read_idx
from .meta_dataset import Dataset

log = logging.getLogger(__name__)

__all__ = ["MNIST", "FashionMNIST", "default_root"]


def default_root(subdir: str) -> str:
    """Per-user cache folder for a dataset.

    ``$PLUGRAD_DATA_DIR/<subdir>`` if that variable is set (it names a folder holding one
    sub-folder per dataset, so MNIST and Fashion-MNIST, whose file names are identical, do
    not collide), else ``$XDG_CACHE_HOME/plugrad/datasets/<subdir>``, falling back to
    ``~/.cache/plugrad/datasets/<subdir>``.
    """
    base = os.environ.get("PLUGRAD_DATA_DIR")
    if base:
        return os.path.join(os.path.expanduser(base), subdir)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "plugrad", "datasets", subdir)


class MNIST(Dataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images of 28x28.

    Items are ``(image, label)`` with ``image`` a uint8 array of shape ``(28, 28, 1)`` (HxWxC)
    and ``label`` an int32 in ``[0, 9]``. The whole split is kept as two arrays in memory
    (``self.arrays``), so indexing is cheap.

    Files are looked for in ``root`` as ``<name>`` (raw) or ``<name>.gz``; missing ones are
    downloaded (``download=True``) from :attr:`mirrors` with MD5 verification. Files that are
    already present are not MD5-checked unless ``check_md5=True`` (it is slow); they are
    always checked structurally. ``timeout`` is the per-request network timeout in seconds.
    """

    name = "MNIST"
    subdir = "mnist"
    mirrors: Sequence[str] = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    )
    split_files: Dict[bool, Tuple[str, str]] = {
        True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    # MD5 of the .gz files the mirrors serve.
    gz_md5: Dict[str, str] = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    # MD5 of the uncompressed IDX bytes (identical however the files were compressed).
    raw_md5: Dict[str, str] = {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    }
    num_classes = 10
    image_size = (28, 28)
    download_retries = 2
    download_backoff = 0.5
    order = ("image", "image_category")
    _stackable = True  # lets the DataLoader gather whole batches via _get_stacked

    def __init__(
        self,
        root: Optional[str] = None,
        train: bool = True,
        download: bool = True,
        timeout: float = 60.0,
        *,
        mirrors: Optional[Sequence[str]] = None,
        check_md5: bool = False,
    ) -> None:
        self.root = os.path.abspath(os.path.expanduser(root or default_root(self.subdir)))
        self.train = bool(train)
        self.timeout = timeout
        if mirrors is not None:
            self.mirrors = tuple(mirrors)
        names = self.split_files[self.train]
        paths = self._locate(names)
        missing = [n for n, p in zip(names, paths) if p is None]
        if missing:
            if not download:
                raise FileNotFoundError(self._missing_message(missing, "download=False"))
            self._download(missing)
            paths = self._locate(names)
        if check_md5:
            for path in paths:
                self._check_md5(path)  # type: ignore[arg-type]
        images, labels = self._parse(paths[0], paths[1])  # type: ignore[arg-type]
        self.arrays: Tuple[np.ndarray, np.ndarray] = (images, labels)
        self.meta = {
            "images": {
                "magic": IMAGES_MAGIC,
                "count": len(images),
                "rows": images.shape[1],
                "cols": images.shape[2],
                "file": paths[0],
            },
            "labels": {"magic": LABELS_MAGIC, "count": len(labels), "file": paths[1]},
        }

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.int32]:
        return self.arrays[0][index], self.arrays[1][index]

    def __len__(self) -> int:
        return len(self.arrays[1])

    def _get_stacked(self, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """A batch gathered with one fancy-index per array (same as stacking items)."""
        idx = np.asarray(indices, dtype=np.intp)
        return self.arrays[0][idx], self.arrays[1][idx]

    # -- files ---------------------------------------------------------------------------
    def _locate(self, names: Sequence[str]) -> List[Optional[str]]:
        """Find each file as raw or .gz; the raw one wins as it is faster to read."""
        found: List[Optional[str]] = []
        for n in names:
            for candidate in (n, n + ".gz"):
                path = os.path.join(self.root, candidate)
                if os.path.isfile(path):
                    found.append(path)
                    break
            else:
                found.append(None)
        return found

    def _missing_message(self, missing: Sequence[str], reason: str) -> str:
        split = "training" if self.train else "test"
        lines = [
            "{}: the {} split is missing {} file(s) in the folder\n    {}".format(
                self.name, split, len(missing), self.root
            ),
            "Put these files into that folder (gzipped as listed, or uncompressed without "
            "the .gz suffix):",
        ]
        lines += ["    {}.gz".format(n) for n in missing]
        lines.append("They could not be downloaded: {}".format(reason))
        if self.mirrors:
            lines.append("They are published at: {}".format(", ".join(self.mirrors)))
        return "\n".join(lines)

    def _download(self, missing: Sequence[str]) -> None:
        os.makedirs(self.root, exist_ok=True)
        failures: List[str] = []
        still_missing: List[str] = []
        for n in missing:
            gz = n + ".gz"
            try:
                download_file(
                    gz,
                    self.mirrors,
                    self.root,
                    md5=self.gz_md5.get(gz),
                    timeout=self.timeout,
                    retries=self.download_retries,
                    backoff=self.download_backoff,
                )
            except DownloadError as exc:
                failures.append(str(exc))
                still_missing.append(n)
        if still_missing:
            reason = "is this machine offline?\n  " + "\n  ".join(failures)
            raise FileNotFoundError(self._missing_message(still_missing, reason))

    def _check_md5(self, path: str) -> None:
        base = os.path.basename(path)
        key = base[:-3] if base.endswith(".gz") else base
        want = self.raw_md5.get(key)
        if want is None:
            log.warning("%s: no known MD5 for the uncompressed %s; skipping verification",
                        self.name, key)
            return
        try:
            got = md5sum(path, decompress=base.endswith(".gz"))
        except (OSError, EOFError) as exc:
            raise IDXFormatError("{}: cannot verify MD5: {}".format(base, exc)) from exc
        if got != want:
            raise IDXFormatError(
                "{}: MD5 of the uncompressed data is {}, expected {}; the file is corrupt or "
                "not the official {} file".format(base, got, want, self.name)
            )

    def _parse(self, image_path: str, label_path: str) -> Tuple[np.ndarray, np.ndarray]:
        rows, cols = self.image_size
        images = read_idx(image_path, IMAGES_MAGIC, (None, rows, cols))
        labels = read_idx(label_path, LABELS_MAGIC)
        img_name, lbl_name = os.path.basename(image_path), os.path.basename(label_path)
        if len(images) != len(labels):
            raise IDXFormatError(
                "{} holds {} images but {} holds {} labels; the counts must match".format(
                    img_name, len(images), lbl_name, len(labels)
                )
            )
        if len(labels) and int(labels.max()) >= self.num_classes:
            raise IDXFormatError(
                "{}: label {} is out of range [0, {}]".format(
                    lbl_name, int(labels.max()), self.num_classes - 1
                )
            )
        return images.reshape(len(images), rows, cols, 1), labels.astype(np.int32)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: same format and split sizes as MNIST, clothing classes."""

    name = "FashionMNIST"
    subdir = "fashion_mnist"
    mirrors = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    )
    gz_md5 = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    raw_md5: Dict[str, str] = {}  # not known here: check_md5 warns and skips
    classes = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
