"""Fully connected and embedding layers."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from plugrad import functional as F
from plugrad.core.tensor import Parameter, Tensor
from plugrad.nn import init
from plugrad.nn.module import Module

__all__ = ["Linear", "Embedding"]


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last axis.

    Args:
        in_features: size of each input's last axis.
        out_features: size of each output's last axis.
        bias: whether to learn an additive bias.

    ``weight`` is (out_features, in_features), initialised from ``N(0, 1 / in_features)`` and
    ``bias`` (out_features,) from zeros, as MegEngine does.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 compute_mode: str = "default", **kwargs: Any):
        super().__init__(**kwargs)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.compute_mode = compute_mode
        self.weight = Parameter(np.zeros((self.out_features, self.in_features), np.float32))
        self.bias = Parameter(np.zeros((self.out_features,), np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight, 0.0, math.sqrt(1.0 / self.in_features))
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape)
        if not shape or shape[-1] != self.in_features:
            raise ValueError(
                f"{self._label()}: expected an input of shape (..., {self.in_features}) whose "
                f"last axis is in_features; got shape {shape} ({len(shape)}-D)"
                + ("; flatten it first, e.g. F.flatten(x, 1)" if len(shape) > 2 else ""))
        return F.linear(x, self.weight, self.bias)

    def _module_info_string(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: integer indices of any shape pick rows of ``weight``
    (num_embeddings, embedding_dim), initialised from ``N(0, 1)``.

    ``freeze=True`` keeps the table fixed (no gradient flows into it).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float | None = None,
                 initial_weight: Any = None, freeze: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if padding_idx is not None or max_norm is not None or norm_type is not None:
            raise ValueError("Embedding: padding_idx, max_norm and norm_type are not supported; "
                             "leave them None")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.freeze = freeze
        expected = (self.num_embeddings, self.embedding_dim)
        if initial_weight is None:
            self.weight = Parameter(np.zeros(expected, np.float32))
            init.normal_(self.weight)
        else:
            weight = np.asarray(initial_weight.numpy() if isinstance(initial_weight, Tensor)
                                else initial_weight, dtype=np.float32)
            if weight.shape != expected:
                raise ValueError(f"Embedding: initial_weight has shape {weight.shape}; expected "
                                 f"(num_embeddings, embedding_dim) = {expected}")
            self.weight = Parameter(weight)

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, **kwargs: Any) -> Embedding:
        """An Embedding whose table is ``embeddings`` (num_embeddings, embedding_dim)."""
        shape = tuple(embeddings.shape)
        if len(shape) != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D; got shape "
                             f"{shape}")
        return cls(shape[0], shape[1], initial_weight=embeddings, freeze=freeze, **kwargs)

    def forward(self, inp: Tensor) -> Tensor:
        weight = self.weight.detach() if self.freeze else self.weight
        return F.embedding(inp, weight)

    def _module_info_string(self) -> str:
        return f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}"
