"""Learning-rate schedulers: LRScheduler and MultiStepLR, MegEngine's interface."""
from __future__ import annotations

from bisect import bisect_right
from typing import Any, Iterable

from plugrad.optimizer.optimizer import Optimizer

__all__ = ["LRScheduler", "MultiStepLR"]


class LRScheduler:
    """Base of schedulers: ``step()`` advances the epoch and sets each group's ``lr`` from
    :meth:`get_lr`. Each group's starting rate is kept as ``initial_lr``.

    Args:
        optimizer: the optimizer whose learning rates to drive.
        current_epoch: the epoch to resume after (-1 starts afresh).
    """

    def __init__(self, optimizer: Optimizer, current_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer; got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if current_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for position, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param group {position} has no "
                                   f"'initial_lr' to resume from epoch {current_epoch}")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.current_epoch = current_epoch
        self.step()

    def get_lr(self) -> list[float]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_lr")

    def step(self, epoch: int | None = None) -> None:
        """Move to ``epoch`` (the next one by default) and update the learning rates."""
        self.current_epoch = self.current_epoch + 1 if epoch is None else int(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (save that with its own state_dict)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        unknown = sorted(set(state_dict) - set(self.state_dict()))
        if unknown:
            raise KeyError(f"{type(self).__name__}.load_state_dict: unknown keys {unknown}")
        self.__dict__.update(state_dict)


class MultiStepLR(LRScheduler):
    """``lr = initial_lr * gamma ** (number of milestones <= epoch)``.

    Example:
        >>> scheduler = MultiStepLR(optimizer, milestones=[30, 80], gamma=0.1)
        >>> for epoch in range(100):
        ...     train_one_epoch()
        ...     scheduler.step()
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 current_epoch: int = -1):
        milestones = [int(m) for m in milestones]
        if milestones != sorted(milestones):
            raise ValueError(f"MultiStepLR: milestones must be increasing; got {milestones}")
        self.milestones = milestones
        self.gamma = gamma
        super().__init__(optimizer, current_epoch)

    def get_lr(self) -> list[float]:
        factor = self.gamma ** bisect_right(self.milestones, self.current_epoch)
        return [base * factor for base in self.base_lrs]
