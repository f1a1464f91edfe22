"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

from typing import Any, Iterable

from plugrad.core.dispatch import update
from plugrad.core.tensor import Parameter
from plugrad.functional.tensor import zeros_like
from plugrad.optimizer.optimizer import Optimizer, check_hyperparameter

__all__ = ["SGD"]


class SGD(Optimizer):
    """``v = momentum * v + (g + weight_decay * p)``; ``p -= lr * v`` (or the Nesterov form).

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        momentum: momentum factor (0 disables the buffer).
        nesterov: use Nesterov momentum (requires momentum > 0).
        weight_decay: L2 penalty added to the gradient.

    Each parameter is updated by the ``sgd_update`` op: in place on backends whose arrays allow
    it (a step allocates only temporaries), with new arrays otherwise; gradients are never
    modified.
    """

    def __init__(self, params: Iterable[Parameter] | Iterable[dict], lr: float,
                 momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        lr = check_hyperparameter("SGD", "learning rate", lr)
        momentum = check_hyperparameter("SGD", "momentum", momentum, high=1.0)
        weight_decay = check_hyperparameter("SGD", "weight_decay", weight_decay)
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov momentum requires a momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def _update_group(self, group: dict[str, Any]) -> None:
        attrs = dict(lr=group["lr"], momentum=group["momentum"], nesterov=group["nesterov"],
                     weight_decay=group["weight_decay"])
        states = self._state
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            if not attrs["momentum"]:
                update("sgd_update", (param, grad), (param,), **attrs)
                continue
            state = states.get(param)
            if state is None:
                state = states[param] = {}
            buffer = state.get("momentum_buffer")
            if buffer is None:
                # A zero buffer makes the first step's velocity the step itself.
                buffer = state["momentum_buffer"] = zeros_like(param)
            update("sgd_update", (param, grad, buffer), (param, buffer), **attrs)
