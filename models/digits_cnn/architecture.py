"""The digits CNN: 8x8 greyscale images in [0, 1], shape (N, 1, 8, 8) -> 10 logits.

``weights.safetensors`` holds the state_dict of ``build()`` with the default arguments.
"""

from __future__ import annotations

from torch import nn


def build(*, channels: tuple[int, int] = (8, 16), hidden: int = 32, num_classes: int = 10) -> nn.Module:
    """Conv(1,8,3) - ReLU - Conv(8,16,3) - ReLU - MaxPool(2) - Flatten - Linear(256,32) - ReLU - Linear(32,10)."""
    first, second = channels
    return nn.Sequential(
        nn.Conv2d(1, first, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(first, second, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(second * 4 * 4, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
