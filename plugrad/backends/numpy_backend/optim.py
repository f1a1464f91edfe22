"""Optimizer update kernels that write into the parameter and state arrays (NumPy and CuPy).

The same arithmetic as the decompositions in :mod:`plugrad.ops.optim`, in the order that lets
each step allocate only temporaries: the arrays passed in are updated and returned.
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["kernels"]


def kernels(xp: Any) -> dict[str, Callable]:
    def plus_decay(grad, param, weight_decay):
        if not weight_decay:
            return grad
        step = param * weight_decay  # a temporary of our own: the gradient is kept
        step += grad
        return step

    def sgd_update(param, grad, *buffer, lr, momentum, nesterov, weight_decay):
        step = plus_decay(grad, param, weight_decay)
        if buffer:
            velocity = buffer[0]
            velocity *= momentum
            velocity += step
            step = step + momentum * velocity if nesterov else velocity
        param -= lr * step
        return (param, *buffer)

    def adam_update(param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                    decoupled, step):
        if not decoupled:
            grad = plus_decay(grad, param, weight_decay)
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        denom = xp.sqrt(exp_avg_sq * (1 / (1 - beta2 ** step)))
        denom += eps
        if weight_decay and decoupled:
            param *= 1 - lr * weight_decay
        delta = exp_avg * (lr / (1 - beta1 ** step))
        delta /= denom
        param -= delta
        return param, exp_avg, exp_avg_sq

    def adagrad_update(param, grad, square_avg, *, lr, eps, weight_decay):
        grad = plus_decay(grad, param, weight_decay)
        square_avg += grad * grad
        delta = grad * lr
        delta /= xp.sqrt(square_avg + eps)
        param -= delta
        return param, square_avg

    return {"sgd_update": sgd_update, "adam_update": adam_update,
            "adagrad_update": adagrad_update}
