"""Linear regression twice, as the d2l chapter builds it: from scratch, then with the high-level API.

The chapter's MXNet/Gluon code written with plugrad. Synthetic data: y = X w + b + noise with
w = [2, -3.4], b = 4.2, 1,000 examples and noise of standard deviation 0.01; mini-batches of
10, learning rate 0.03, 3 epochs. Run it with ``python examples/linear_regression.py``.
"""
from __future__ import annotations

import random

import numpy as np

import plugrad
import plugrad.functional as F
import plugrad.module as M
import plugrad.optimizer as optim
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager
from plugrad.data import ArrayDataset, DataLoader

TRUE_W, TRUE_B = [2, -3.4], 4.2
NUM_EXAMPLES, BATCH_SIZE, LR, NUM_EPOCHS = 1000, 10, 0.03, 3


def synthetic_data() -> tuple[Tensor, Tensor]:
    """Features from N(0, 1) and labels from the true line plus N(0, 0.01**2) noise."""
    features = plugrad.random.normal(0, 1, size=(NUM_EXAMPLES, 2))
    labels = TRUE_W[0] * features[:, 0] + TRUE_W[1] * features[:, 1] + TRUE_B
    return features, labels + plugrad.random.normal(0, 0.01, size=labels.shape)


# -- from scratch ---------------------------------------------------------------------------
def data_iter(batch_size: int, features: Tensor, labels: Tensor):
    """Shuffled mini-batches, picked from the tensors by index."""
    indices = list(range(len(features)))
    random.shuffle(indices)
    for i in range(0, len(indices), batch_size):
        j = Tensor(indices[i:i + batch_size], dtype="int32")
        yield features[j], labels[j]


def linreg(X: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return F.matmul(X, w) + b


def squared_loss(y_hat: Tensor, y: Tensor) -> Tensor:
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params: list[Parameter], lr: float, batch_size: int) -> None:
    """One step down the gradient, then the gradient cleared: GradManager accumulates it."""
    for param in params:
        param -= lr * param.grad / batch_size
        param.grad = None


def from_scratch(features: Tensor, labels: Tensor) -> tuple[np.ndarray, float, float]:
    w = Parameter(plugrad.random.normal(0, 0.01, size=(2, 1)))
    b = Parameter(F.zeros((1,)))
    gm = GradManager().attach([w, b])
    for epoch in range(NUM_EPOCHS):
        for X, y in data_iter(BATCH_SIZE, features, labels):
            with gm:
                gm.backward(squared_loss(linreg(X, w, b), y).sum())
            sgd([w, b], LR, BATCH_SIZE)
        train_l = squared_loss(linreg(features, w, b), labels).mean().item()
        print("epoch %d, loss %f" % (epoch + 1, train_l))
    return w.numpy().reshape(-1), float(b.item()), train_l


# -- with the high-level API ----------------------------------------------------------------
def concise(features: Tensor, labels: Tensor) -> tuple[np.ndarray, float, float]:
    loader = DataLoader(ArrayDataset(features, labels), batch_size=BATCH_SIZE, shuffle=True)
    net = M.Sequential(M.Linear(2, 1))
    M.init.normal_(net[0].weight, std=0.01)
    M.init.zeros_(net[0].bias)

    def loss(y_hat: Tensor, y: Tensor) -> Tensor:
        # Gluon's L2Loss, (y_hat - y)**2 / 2, averaged as Trainer.step(batch_size) does.
        return F.nn.square_loss(y_hat, y.reshape(y_hat.shape)) / 2

    gm = GradManager().attach(net.parameters())
    optimizer = optim.SGD(net.parameters(), lr=LR)
    for epoch in range(1, NUM_EPOCHS + 1):
        for X, y in loader:
            with gm:
                gm.backward(loss(net(Tensor(X)), Tensor(y)))
            optimizer.step().clear_grad()
        train_l = loss(net(features), labels).item()
        print("epoch %d, loss: %f" % (epoch, train_l))
    return net[0].weight.numpy().reshape(-1), float(net[0].bias.item()), train_l


def report(name: str, w: np.ndarray, b: float) -> None:
    print(f"{name}: w = [{w[0]:.4f}, {w[1]:.4f}] (true {TRUE_W}), b = {b:.4f} (true {TRUE_B})")


def main() -> None:
    plugrad.random.seed(0)
    random.seed(0)
    np.random.seed(0)  # the DataLoader's shuffling
    features, labels = synthetic_data()
    print("Linear regression from scratch")
    w, b, _ = from_scratch(features, labels)
    report("from scratch", w, b)
    print("Linear regression with the high-level API")
    w, b, _ = concise(features, labels)
    report("high-level API", w, b)


if __name__ == "__main__":
    main()
