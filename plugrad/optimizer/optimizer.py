"""The Optimizer base: parameter groups, step/clear_grad, and state dicts."""
from __future__ import annotations

import copy
import math
from typing import Any, Iterable, cast

from plugrad.core import dispatch
from plugrad.core.tensor import Parameter, Tensor

__all__ = ["Optimizer", "check_hyperparameter"]


def check_hyperparameter(owner: str, name: str, value: Any, low: float = 0.0,
                         high: float = math.inf) -> float:
    """``value`` as a float in ``[low, high)`` (``[low, inf)`` by default), else a clear error.

    NaN fails every comparison, so it is refused here too instead of poisoning every weight.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{owner}: {name} must be a real number; got "
                            f"{type(value).__name__} {value!r}") from None
    if not low <= value < high:  # also true of NaN
        allowed = f">= {low}" if high == math.inf else f"in [{low}, {high})"
        raise ValueError(f"{owner}: invalid {name} {value!r}; it must be finite and {allowed}")
    return float(value)


class Optimizer:
    """Base class of optimizers; subclasses implement :meth:`_update_group`.

    Args:
        params: Parameters, or dicts ``{"params": [...], "lr": ...}`` (parameter groups).
        defaults: hyper-parameters each group inherits unless it sets its own.
    """

    def __init__(self, params: Parameter | dict | Iterable[Parameter | dict],
                 defaults: dict[str, Any]):
        self._defaults = dict(defaults)
        self._state: dict[Parameter, dict[str, Tensor]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, (Parameter, dict)):
            params = [params]
        elif isinstance(params, Tensor) or not isinstance(params, Iterable):
            raise TypeError(f"params given to {type(self).__name__} must be a Parameter, a dict "
                            f"or an iterable of them; got {type(params).__name__}")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = cast("list[dict[str, Any]]", params) if isinstance(params[0], dict) \
            else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("param group needs a 'params' entry")
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for param in group["params"]:
            if not isinstance(param, Parameter):
                raise TypeError("optimizer can only optimize Parameters, but one of the params is "
                                + str(type(param)))
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for name, default in self._defaults.items():
            group.setdefault(name, default)
        self.param_groups.append(group)

    def _parameters(self) -> list[Parameter]:
        return [p for group in self.param_groups for p in group["params"]]

    def step(self) -> Optimizer:
        """Update every parameter that has a gradient; returns self for ``step().clear_grad()``.

        Updates are ops (``sgd_update``, ``adam_update``...), whose kernels a backend such as
        CuPy runs on its *current* device: parameters on a device with a ``device_scope`` are
        updated inside it. Ops all the way down, step counts included: a trace records the
        update kernels and its replay runs them, never this Python. The hyper-parameters are
        attributes of those kernels: a replay that finds them changed (a learning-rate
        scheduler) traces the step again.
        """
        tracer = dispatch.tracer
        if tracer is not None:
            tracer.expect(self._hyperparameters)
        for group in self.param_groups:
            params = group["params"]
            if all(p._device.type.device_scope is None for p in params):  # CPU: no scope
                self._update_group(group)
                continue
            for device, on_device in _by_device(params).items():
                scope = device.type.device_scope
                subgroup = {**group, "params": on_device}
                if scope is None:
                    self._update_group(subgroup)
                else:
                    with scope(device.index):
                        self._update_group(subgroup)
        return self

    def _hyperparameters(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in group.items() if k != "params"} for group in self.param_groups]

    def _update_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update_group")

    def clear_grad(self) -> Optimizer:
        """Set every parameter's ``.grad`` to None."""
        for param in self._parameters():
            param.grad = None
        return self

    # -- state dicts -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters and per-parameter state, parameters referred to by position."""
        index = {id(p): i for i, p in enumerate(self._parameters())}
        groups = []
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = [index[id(p)] for p in group["params"]]
            groups.append(saved)
        state = {index[id(p)]: {k: Tensor(v) for k, v in s.items()}
                 for p, s in self._state.items() if id(p) in index}
        return {"param_groups": groups, "state": state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, for the same parameters in the same order."""
        groups = state.get("param_groups") if isinstance(state, dict) else None
        if groups is None or "state" not in state:
            raise ValueError("load_state_dict: expected a dict with 'param_groups' and 'state'")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: the state has {len(groups)} parameter groups, "
                             f"this optimizer {len(self.param_groups)}")
        params = self._parameters()
        for i, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"load_state_dict: group {i} has {len(saved['params'])} "
                                 f"parameters in the state but {len(group['params'])} here")
        for saved, group in zip(groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = copy.deepcopy(value)
        self._state = {}
        for position, values in state["state"].items():
            param = params[int(position)]
            restored = {}
            for key, value in values.items():
                value = value if isinstance(value, Tensor) else Tensor(value)
                if value.ndim and tuple(value.shape) != tuple(param.shape):  # 0-d: counters
                    raise ValueError(f"load_state_dict: state {key!r} of parameter {position} has "
                                     f"shape {tuple(value.shape)}, the parameter "
                                     f"{tuple(param.shape)}")
                restored[key] = Tensor(value, device=param.device)
            self._state[param] = restored


def _by_device(params: list[Parameter]) -> dict[Any, list[Parameter]]:
    """``params`` split by the physical device they live on, in order."""
    groups: dict[str, tuple[Any, list[Parameter]]] = {}
    for param in params:
        device = param._device
        groups.setdefault(device.physical, (device, []))[1].append(param)
    return {device: members for device, members in groups.values()}
