"""The second benchmark model: a small VGG-style net with batch norm, on CIFAR-shaped inputs.

    conv3x3(3->16) bn relu, conv3x3(16->16) bn relu, maxpool 2      32x32 -> 16x16
    conv3x3(16->32) bn relu, conv3x3(32->32) bn relu, maxpool 2     16x16 -> 8x8
    conv3x3(32->64, stride 2) bn relu, avgpool 4, linear(64->10)     8x8 -> 4x4 -> 1x1

Convolutions have padding 1 and no bias (batch norm follows each), the usual layout of such
nets; one is strided, as a downsampling layer of a ResNet is. The training step is the LeNet
step's (SGD with momentum and weight decay, cross-entropy), built twice: plugrad and PyTorch
CPU, from the same weights and the same batch.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import lenet_step  # noqa: E402  (the same loss, backward and SGD as the LeNet step)
from lenet_step import LR, MOMENTUM, WEIGHT_DECAY  # noqa: E402

import plugrad as P  # noqa: E402
import plugrad.functional as F  # noqa: E402
import plugrad.module as M  # noqa: E402

#: (in, out, stride) of each conv-bn-relu block; "pool" is a 2x2 max pooling.
LAYOUT = ((3, 16, 1), (16, 16, 1), "pool", (16, 32, 1), (32, 32, 1), "pool", (32, 64, 2))


def make_batch(batch: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed CIFAR-shaped batch: (N, 3, 32, 32) float32 images and int32 labels."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 3, 32, 32)).astype(np.float32),
            rng.integers(0, 10, batch).astype(np.int32))


class SmallVGG(M.Module):
    def __init__(self) -> None:
        super().__init__()
        for index, (cin, cout, stride) in enumerate(_blocks()):
            setattr(self, f"conv{index}", M.Conv2d(cin, cout, 3, stride=stride, padding=1,
                                                  bias=False))
            setattr(self, f"bn{index}", M.BatchNorm2d(cout))
        self.classifier = M.Linear(64, 10)

    def forward(self, x: Any) -> Any:
        index = 0
        for entry in LAYOUT:
            if entry == "pool":
                x = F.max_pool2d(x, 2, 2)
                continue
            x = F.relu(getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(x)))
            index += 1
        x = F.avg_pool2d(x, 4, 4)
        return self.classifier(F.flatten(x, 1))


def _blocks() -> list[tuple[int, int, int]]:
    return [entry for entry in LAYOUT if entry != "pool"]


def initial_state(seed: int = 0) -> dict[str, np.ndarray]:
    P.random.seed(seed)
    return SmallVGG().state_dict()


def plugrad_parts(state: dict, images: np.ndarray, labels: np.ndarray) -> tuple:
    """(model, GradManager, SGD, x, y) of the step, for steps built elsewhere."""
    model = SmallVGG()
    model.train()
    return lenet_step.sgd_parts(model, state, images, labels)


def plugrad_step(state: dict, images: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
    """LeNet's step (the same loss, backward and SGD) on SmallVGG."""
    model, gm, opt, x, y = plugrad_parts(state, images, labels)
    step = lenet_step.train_step(model, gm, opt)
    return lambda: step(x, y)


def torch_step(state: dict, images: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
    """The same net in PyTorch (imported here only: never a plugrad dependency)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as TF

    class TorchVGG(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for index, (cin, cout, stride) in enumerate(_blocks()):
                setattr(self, f"conv{index}", nn.Conv2d(cin, cout, 3, stride=stride, padding=1,
                                                        bias=False))
                # MegEngine's momentum 0.9 weighs the running value, PyTorch's 0.1 the batch's.
                setattr(self, f"bn{index}", nn.BatchNorm2d(cout, momentum=0.1))
            self.classifier = nn.Linear(64, 10)

        def forward(self, x):
            index = 0
            for entry in LAYOUT:
                if entry == "pool":
                    x = TF.max_pool2d(x, 2, 2)
                    continue
                x = TF.relu(getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(x)))
                index += 1
            return self.classifier(torch.flatten(TF.avg_pool2d(x, 4, 4), 1))

    model = TorchVGG()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in state:  # batch norm's (1, C, 1, 1) tensors are (C,) here
                tensor.copy_(torch.from_numpy(state[name].reshape(tensor.shape)))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    x, y = torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
    model.train()

    def step() -> Any:
        opt.zero_grad()
        loss = TF.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return step
