"""LeNet-5 for 1x32x32 images, the model of MegEngine's quick-start."""
from __future__ import annotations

from typing import Any

from plugrad import functional as F
from plugrad.core.tensor import Tensor
from plugrad.nn.activation import ReLU
from plugrad.nn.conv import Conv2d
from plugrad.nn.linear import Linear
from plugrad.nn.module import Module
from plugrad.nn.pooling import MaxPool2d

__all__ = ["LeNet"]


class LeNet(Module):
    """conv(1->6, 5) - relu - maxpool(2) - conv(6->16, 5) - relu - maxpool(2) - fc(400->120) -
    relu - fc(120->84) - relu - classifier(84->10), on (N, 1, 32, 32) inputs (MNIST padded by
    2 pixels); returns (N, 10) logits."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.conv1 = Conv2d(1, 6, 5)
        self.conv2 = Conv2d(6, 16, 5)
        self.fc1 = Linear(16 * 5 * 5, 120)
        self.fc2 = Linear(120, 84)
        self.classifier = Linear(84, 10)
        self.relu = ReLU()
        self.pool = MaxPool2d(2, 2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = F.flatten(x, 1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.classifier(x)
