"""plugrad.nn (also ``import plugrad.module as M``): Module, layers, initialisers and LeNet."""
from plugrad.nn import init
from plugrad.nn.activation import GELU, LeakyReLU, PReLU, ReLU, Sigmoid, Softmax
from plugrad.nn.basic import Dropout, Flatten, Identity
from plugrad.nn.conv import Conv1d, Conv2d, ConvTranspose2d
from plugrad.nn.lenet import LeNet
from plugrad.nn.linear import Embedding, Linear
from plugrad.nn.module import HookHandler, Module
from plugrad.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from plugrad.nn.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from plugrad.nn.sequential import Sequential

__all__ = [
    "init", "Module", "HookHandler", "Sequential", "Linear", "Embedding", "Conv1d", "Conv2d",
    "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout", "Identity", "Flatten",
    "ReLU", "LeakyReLU", "PReLU", "Sigmoid", "GELU", "Softmax", "LeNet",
]
