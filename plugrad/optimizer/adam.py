"""Adam, AdamW and Adagrad, with MegEngine's update rules, run as the ops of
``plugrad.ops.optim``."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from plugrad.core.dispatch import update
from plugrad.core.tensor import Parameter, Tensor
from plugrad.functional.tensor import zeros, zeros_like
from plugrad.ops.optim import COUNT_DTYPE
from plugrad.optimizer.optimizer import Optimizer, check_hyperparameter

__all__ = ["Adam", "AdamW", "Adagrad"]


def _check(name: str, lr: float, eps: float, weight_decay: float) -> None:
    for field, value in (("learning rate", lr), ("eps", eps), ("weight_decay", weight_decay)):
        check_hyperparameter(name, field, value)


def _check_betas(name: str, betas: Sequence[float]) -> tuple[float, float]:
    if len(betas) != 2:
        raise ValueError(f"{name}: invalid betas {betas}; expected two values in [0, 1)")
    first, second = (check_hyperparameter(name, "betas entry", b, high=1.0) for b in betas)
    return first, second


def _count(state: dict[str, Any], param: Parameter) -> Tensor:
    """This parameter's update count: a 0-d int32 tensor on its device, which the update op
    increments (so a traced step replays with the current count); a state dict saves it as is.
    """
    count = state.get("step")
    if count is None:
        count = state["step"] = zeros((), dtype=COUNT_DTYPE, device=param.device)
    elif count.dtype != COUNT_DTYPE:  # a checkpoint that saved it in another dtype
        count = state["step"] = count.astype(COUNT_DTYPE)
    return count


class _AdamBase(Optimizer):
    """Adam's moments; ``decoupled`` picks AdamW's weight decay (applied to the parameter,
    not added to the gradient)."""

    decoupled = False

    def __init__(self, params: Iterable[Parameter] | Iterable[dict], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        name = type(self).__name__
        _check(name, lr, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=_check_betas(name, tuple(betas)), eps=eps,
                                      weight_decay=weight_decay))

    def _update_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        attrs = dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                     weight_decay=group["weight_decay"], decoupled=self.decoupled)
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            state = self._state.setdefault(param, {})
            if "exp_avg" not in state:
                state["exp_avg"], state["exp_avg_sq"] = zeros_like(param), zeros_like(param)
            kept = (state["exp_avg"], state["exp_avg_sq"], _count(state, param))
            update("adam_update", (param, grad, *kept), (param, *kept), **attrs)


class Adam(_AdamBase):
    """Adam (Kingma & Ba): ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``; ``weight_decay`` adds
    ``weight_decay * p`` to the gradient (L2).

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: decay rates of the first and second moments.
        eps: added to the denominator for stability.
        weight_decay: L2 penalty.
    """


class AdamW(_AdamBase):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay``
    before the Adam step, instead of an L2 term in the gradient; weight_decay 0.01 by default.
    """

    decoupled = True

    def __init__(self, params: Iterable[Parameter] | Iterable[dict], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): ``s += g^2``; ``p -= lr / (1 + (t - 1) * lr_decay) * g /
    sqrt(s + eps)``; ``weight_decay`` adds ``weight_decay * p`` to the gradient.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        lr_decay: the learning rate decays as ``lr / (1 + (t - 1) * lr_decay)`` at step t.
        eps: added inside the square root for stability.
        weight_decay: L2 penalty.
    """

    def __init__(self, params: Iterable[Parameter] | Iterable[dict], lr: float = 0.01,
                 lr_decay: float = 0.0, eps: float = 1e-10, weight_decay: float = 0.0):
        _check("Adagrad", lr, eps, weight_decay)
        check_hyperparameter("Adagrad", "lr_decay", lr_decay)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay))

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay = group["lr"], group["lr_decay"]
        eps, weight_decay = group["eps"], group["weight_decay"]
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            state = self._state.setdefault(param, {})
            if "square_avg" not in state:
                state["square_avg"] = zeros_like(param)
            accumulated = (state["square_avg"], _count(state, param))
            update("adagrad_update", (param, grad, *accumulated), (param, *accumulated), lr=lr,
                   lr_decay=lr_decay, eps=eps, weight_decay=weight_decay)
