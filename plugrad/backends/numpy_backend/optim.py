"""Optimizer update kernels that write into the parameter and state arrays (NumPy and CuPy).

The same arithmetic as the decompositions in :mod:`plugrad.ops.optim`, in the order that lets
each step allocate only temporaries: the arrays passed in are updated and returned.

Adam's and Adagrad's step count is a 0-d array the kernel increments. NumPy's lives in host
memory, so its bias corrections are Python floats, exactly what eager code computed before the
count was an array; a device backend computes them on the device, without a host read.
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["kernels"]


def kernels(xp: Any) -> dict[str, Callable]:
    on_host = xp.__name__ == "numpy"

    def count_up(count):
        """Increment the count in place; return it and the step number t for the arithmetic."""
        count += 1
        return count, (int(count) if on_host else count.astype(xp.float64))

    def factor(value, like):
        """A bias-correction factor to scale ``like`` by, in ``like``'s dtype."""
        return value if on_host else value.astype(like.dtype)

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

    def adam_update(param, grad, exp_avg, exp_avg_sq, count, *, lr, beta1, beta2, eps,
                    weight_decay, decoupled):
        count, step = count_up(count)
        if not decoupled:
            grad = plus_decay(grad, param, weight_decay)
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        denom = xp.sqrt(exp_avg_sq * factor(1 / (1 - beta2 ** step), param))
        denom += eps
        if weight_decay and decoupled:
            param *= 1 - lr * weight_decay
        delta = exp_avg * factor(lr / (1 - beta1 ** step), param)
        delta /= denom
        param -= delta
        return param, exp_avg, exp_avg_sq, count

    def adagrad_update(param, grad, square_avg, count, *, lr, lr_decay, eps, weight_decay):
        count, step = count_up(count)
        grad = plus_decay(grad, param, weight_decay)
        square_avg += grad * grad
        delta = grad * (factor(lr / (1 + (step - 1) * lr_decay), param) if lr_decay else lr)
        delta /= xp.sqrt(square_avg + eps)
        param -= delta
        return param, square_avg, count

    return {"sgd_update": sgd_update, "adam_update": adam_update,
            "adagrad_update": adagrad_update}
