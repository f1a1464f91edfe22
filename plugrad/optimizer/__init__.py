"""Optimizers (``import plugrad.optimizer as optim``)."""
from plugrad.optimizer.optimizer import Optimizer
from plugrad.optimizer.sgd import SGD

__all__ = ["Optimizer", "SGD"]
