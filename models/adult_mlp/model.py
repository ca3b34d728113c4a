"""The Adult income MLP: one logit for the positive class ">50K"."""

from __future__ import annotations

import torch
from torch import nn


class AdultMLP(nn.Module):
    """Linear(d, 64) - ReLU - Linear(64, 32) - ReLU - Linear(32, 1).

    The input is the encoded feature tensor described by ``preprocessing.yaml`` (float32,
    shape ``(N, d)``); the output is a logit of shape ``(N, 1)`` for ``income == ">50K"``.
    """

    def __init__(self, in_features: int, hidden: tuple[int, int] = (64, 32)) -> None:
        super().__init__()
        self.in_features = in_features
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden[0]),
            nn.ReLU(),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(),
            nn.Linear(hidden[1], 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
