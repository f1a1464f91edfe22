"""Optimizers (``import plugrad.optimizer as optim``), schedulers and gradient clipping."""
from plugrad.optimizer.adam import Adagrad, Adam, AdamW
from plugrad.optimizer.clip_grad import clip_grad_norm, clip_grad_value
from plugrad.optimizer.lr_scheduler import LRScheduler, MultiStepLR
from plugrad.optimizer.optimizer import Optimizer
from plugrad.optimizer.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "LRScheduler", "MultiStepLR",
           "clip_grad_norm", "clip_grad_value"]
