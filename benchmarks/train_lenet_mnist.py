"""Train the quick-start's LeNet on real MNIST with plugrad's numpy backend; report test
accuracy and time per epoch.

The model code follows MegEngine's quick-start: ``M.LeNet`` (the same architecture), a
GradManager, ``SGD(lr=0.01, momentum=0.9, weight_decay=5e-4)``, ``F.nn.cross_entropy`` and
``F.argmax``. Data: the IDX files read directly with NumPy, normalised by mean 0.1307*255 and
std 0.3081*255, padded by 2 to 32x32, CHW; batch 64 in a new random order every epoch (the last,
smaller batch included).

    python benchmarks/train_lenet_mnist.py --epochs 1
    nohup python benchmarks/train_lenet_mnist.py --epochs 10 > lenet10.log 2>&1 &
"""
from __future__ import annotations

import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np

import plugrad as P
import plugrad.functional as F
import plugrad.module as M
import plugrad.optimizer as optim
from plugrad.autodiff import GradManager

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                            "datasets", "mnist")


def read_idx(path: str) -> np.ndarray:
    """An IDX file (gzip or plain) as a uint8 array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (header {data[:4]!r})")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {shape} values, found {array.size} (truncated?)")
    return array.reshape(shape)


def load_split(root: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))
    # The seed's transform: Normalize(0.1307*255, 0.3081*255), Pad(2), ToMode("CHW").
    x = (images.astype(np.float32) - 0.1307 * 255) / (0.3081 * 255)
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]
    return np.ascontiguousarray(x, dtype=np.float32), labels.astype(np.int32)


def evaluate(model: M.Module, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(x), batch):
        logits = model(P.Tensor(x[start:start + batch]))
        pred = F.argmax(logits, axis=1)
        correct += (pred == P.Tensor(y[start:start + batch])).sum().item()
    model.train()
    return correct / len(x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--save", default=None, help="save the state_dict here after each epoch")
    args = parser.parse_args(argv)

    P.random.seed(args.seed)
    order_rng = np.random.default_rng(args.seed)
    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")
    print(f"train {train_x.shape} test {test_x.shape} batch {args.batch_size}", flush=True)

    model = M.LeNet()
    gm = GradManager().attach(model.parameters())
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    model.train()
    for epoch in range(args.epochs):
        start = time.perf_counter()
        order = order_rng.permutation(len(train_x))
        total_loss = 0.0
        for first in range(0, len(order), args.batch_size):
            index = order[first:first + args.batch_size]
            batch_data = P.Tensor(train_x[index])
            batch_label = P.Tensor(train_y[index])
            with gm:
                logits = model(batch_data)
                loss = F.nn.cross_entropy(logits, batch_label)
                gm.backward(loss)
                optimizer.step().clear_grad()
            total_loss += loss.item() * len(index)
        train_time = time.perf_counter() - start
        accuracy = evaluate(model, test_x, test_y)
        print(f"epoch {epoch + 1}: train loss {total_loss / len(train_x):.4f}, "
              f"test accuracy {accuracy:.4f}, epoch time {train_time:.1f} s "
              f"({train_time / -(-len(train_x) // args.batch_size) * 1e3:.2f} ms/step)",
              flush=True)
        if args.save:
            P.save(model.state_dict(), args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
