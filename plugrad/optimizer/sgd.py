"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

from typing import Any, Iterable

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

    Parameters and the momentum buffer are updated in place (the backend arrays' own ``*=``,
    ``+=``, ``-=``), so a step allocates only temporaries; gradients are never modified.
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
        lr, momentum = group["lr"], group["momentum"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        states = self._state
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            value = param._data
            step = grad._data
            if weight_decay:
                step = value * weight_decay  # a temporary of our own: the gradient is kept
                step += grad._data
            if momentum:
                state = states.get(param)
                if state is None:
                    state = states[param] = {}
                buffer = state.get("momentum_buffer")
                if buffer is None:
                    # The first step's buffer is the step itself, in an array of its own.
                    buffer = state["momentum_buffer"] = zeros_like(param)
                else:
                    buffer._data *= momentum
                buffer._data += step
                buffer._mark_written()
                step = step + momentum * buffer._data if nesterov else buffer._data
            value -= lr * step
            param._mark_written()
