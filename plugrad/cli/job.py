"""The quick-start job's parts shared by ``train``, ``eval`` and ``predict``: data and scoring."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MEAN", "STD", "Evaluation", "evaluate", "lenet", "loaders", "transform"]

#: The quick start's normalisation of MNIST pixels (0-255).
MEAN, STD = 0.1307 * 255, 0.3081 * 255


def transform(pad: int = 2) -> Any:
    """The quick start's preprocessing: normalise, pad 28x28 digits to 32x32, HWC to CHW."""
    import plugrad.data.transform as T

    steps = [T.Normalize(MEAN, STD)] + ([T.Pad(pad)] if pad else []) + [T.ToMode("CHW")]
    return T.Compose(steps)


def loaders(data: str | None, batch_size: int, seed: int, workers: int,
            train: bool = True) -> tuple[Any, Any]:
    """(train loader or None, test loader) over MNIST in ``data`` (downloaded when None)."""
    import plugrad.data as pdata
    from plugrad.data.dataset import MNIST

    download = data is None
    test_set = MNIST(data, train=False, download=download)
    # Scored by one process (rank 0 when data-parallel): the whole test set, unsplit.
    whole = pdata.SequentialSampler(test_set, batch_size=500, world_size=1, rank=0)
    test = pdata.DataLoader(test_set, whole, transform(), num_workers=workers)
    if not train:
        return None, test
    train_set = MNIST(data, train=True, download=download)
    sampler = pdata.RandomSampler(train_set, batch_size=batch_size, seed=seed)
    return pdata.DataLoader(train_set, sampler, transform(), num_workers=workers), test


def lenet(state: dict[str, Any] | None = None) -> Any:
    """The quick start's LeNet, with ``state`` loaded when given."""
    from plugrad.nn import LeNet

    model = LeNet()
    if state is not None:
        model.load_state_dict(state)
    return model


@dataclass
class Evaluation:
    """Test loss (mean cross-entropy), and ``confusion[true, predicted]`` counts."""

    loss: float
    confusion: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.confusion.sum(), 1))


def evaluate(model: Any, loader: Any, device: Any, classes: int = 10) -> Evaluation:
    """Score ``model`` on every batch of ``loader``; the model is left in training mode."""
    import plugrad
    import plugrad.functional as F

    model.eval()
    confusion = np.zeros((classes, classes), dtype=np.int64)
    total_loss = 0.0
    for images, labels in loader:
        logits = model(plugrad.Tensor(images, device=device))
        total_loss += F.nn.cross_entropy(logits, plugrad.Tensor(labels, device=device)).item() \
            * len(labels)
        predicted = F.argmax(logits, axis=1).numpy()
        np.add.at(confusion, (np.asarray(labels), predicted), 1)
    model.train()
    return Evaluation(total_loss / max(int(confusion.sum()), 1), confusion)
