"""The learned router's network: a shared MLP trunk h(x) and one linear head per model.

The paper's form is s_i(x) = w_i . h(x) + b_i (multi-output regression). The heads are stored as one
nn.Linear with one output row per model: row i is exactly (w_i, b_i), and computing them together is
a single matmul instead of m small ones.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ScoreNet(nn.Module):
    """x (n, in_dim) -> raw per-model outputs (n, n_models): logits under BCE, scores under MSE."""

    def __init__(self, in_dim: int, n_models: int, hidden: Sequence[int] = (256, 128), dropout: float = 0.1):
        super().__init__()
        if in_dim < 1 or n_models < 1:
            raise ValueError(f"in_dim and n_models must be >= 1, got {in_dim} and {n_models}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_dim
        for size in hidden:
            if size < 1:
                raise ValueError(f"hidden sizes must be >= 1, got {tuple(hidden)}")
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.trunk = nn.Sequential(*layers)  # empty trunk (hidden=()) = linear model on the embedding
        self.heads = nn.Linear(width, n_models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.trunk(x))
